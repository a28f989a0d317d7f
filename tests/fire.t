# raceq-fire against a real httpd: it sees the lost updates of race mode,
# counts exactly when nothing is lost, and refuses bad options and servers
# it cannot use with a clear message and without sending anything.
#
# Extra block sections:
#   --- fire: ARGS           run bin/raceq-fire with ARGS ($TEST_RACEQ_* expanded)
#   --- fire_exit: N         its exit status (default 0)
#   --- fire_json            lines "PATH OP NUMBER" on its JSON output; PATH is
#                            dotted keys, "*" stands for every element
#   --- fire_stdout          lines of regular expressions stdout must match
#   --- fire_stderr          the same for stderr
# A run that exits 1 must print nothing on stdout and fire no POST.

use Test::RaceQ;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $FIRE = "$ROOT/bin/raceq-fire";
my $RUN_LIMIT = 120;    # seconds before a hung raceq-fire is killed

config_var(TEST_RACEQ_URL => 'http://127.0.0.1:' . server_port() . '/t');
config_var(TEST_RACEQ_CLOSED => free_port());    # nothing listens there

add_block_check(\&check_fire, qw(fire fire_exit fire_json fire_stdout fire_stderr));

run_tests();

sub expand_vars {
    my ($text) = @_;

    $text =~ s/\$(TEST_RACEQ_\w+)/config_var($1) \/\/ "\$$1"/ge;
    return $text;
}

sub slurp {
    my ($file) = @_;

    return slurp_from($file, 0);
}

sub slurp_from {
    my ($file, $offset) = @_;

    open my $fh, '<:raw', $file or return '';
    seek $fh, $offset, 0;
    local $/;
    my $text = <$fh> // '';
    close $fh;
    return $text;
}

# Runs raceq-fire, killing it if it outlives $RUN_LIMIT; returns
# (exit status or undef when killed, stdout, stderr).
sub run_fire {
    my (@args) = @_;

    my ($out, $err) = (tmp_dir() . '/fire.out', tmp_dir() . '/fire.err');
    my $pid = fork;
    die "fork: $!\n" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        exec($FIRE, @args) or POSIX::_exit(127);
    }

    my $until = time + $RUN_LIMIT;
    my $status;
    while (time < $until) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? & 127 ? undef : $? >> 8;
            last;
        }
        sleep 0.05;
    }
    if (!defined $status && kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
    return ($status, slurp($out), slurp($err));
}

sub json_values {
    my ($node, @path) = @_;

    return ($node) unless @path;
    my $key = shift @path;
    my @kids;
    if ($key eq '*') {
        @kids = ref $node eq 'ARRAY' ? @$node
            : ref $node eq 'HASH' ? @{$node}{ sort keys %$node } : ();
    }
    elsif (ref $node eq 'HASH' && exists $node->{$key}) {
        @kids = ($node->{$key});
    }
    return map { json_values($_, @path) } @kids;
}

sub compare {
    my ($got, $op, $want) = @_;

    return 0 unless defined $got && !ref $got && $got =~ /^-?\d+(?:\.\d+)?$/;
    return $got == $want if $op eq '==';
    return $got != $want if $op eq '!=';
    return $got < $want if $op eq '<';
    return $got <= $want if $op eq '<=';
    return $got > $want if $op eq '>';
    return $got >= $want if $op eq '>=';
    die "unknown comparison $op\n";
}

sub check_json {
    my ($name, $block, $stdout) = @_;

    my $report = eval { JSON::PP->new->decode($stdout) };
    ok(ref $report eq 'HASH', "$name - fire: stdout is one JSON object")
        or return diag($stdout);

    for my $line (grep { /\S/ } split /\n/, $block->fire_json) {
        my ($path, $op, $want) = $line =~ /^\s*(\S+)\s+(==|!=|<=|>=|<|>)\s+(-?\d+)\s*$/
            or die "bad fire_json line: $line\n";
        my @got = json_values($report, split /\./, $path);
        my @bad = grep { !compare($_, $op, $want) } @got;
        ok(@got && !@bad, "$name - fire: $line")
            or diag("got: " . join(', ', map { $_ // 'null' } @got) || 'nothing');
    }
    Test::More::note("$name - raceq-fire reported: lost_updates $report->{lost_updates}, "
        . "writes $report->{writes}, wall_us $report->{wall_us}, "
        . "critical_path_us $report->{critical_path_us}")
        if defined $report->{lost_updates};
}

sub check_patterns {
    my ($name, $what, $text, $patterns) = @_;

    for my $re (grep { /\S/ } split /\n/, $patterns // '') {
        ok($text =~ /$re/m, "$name - fire: $what like /$re/") or diag("$what:\n$text");
    }
}

sub error_lines {
    my $log = slurp(tmp_dir() . '/error_log');

    return grep { /^\[[^\]]*\] \[(?:[^\]:]*:)?(?:emerg|alert|crit|error)\]/ } split /\n/, $log;
}

sub check_fire {
    my ($block) = @_;

    return unless defined $block->fire;
    my $name = sprintf 'TEST %d: %s', $block->seq_num, $block->name;
    my @args = split ' ', expand_vars($block->fire);
    my ($want) = ($block->fire_exit // '0') =~ /(\d+)/;
    my $access = tmp_dir() . '/access_log';
    my $access_at = -s $access // 0;

    my ($status, $stdout, $stderr) = run_fire(@args);
    ok(defined $status, "$name - fire: finished within ${RUN_LIMIT}s")
        or return diag("stderr:\n$stderr");
    is($status, $want, "$name - fire: exit status $want") or diag("stderr:\n$stderr");

    if ($want == 1) {
        is($stdout, '', "$name - fire: nothing on stdout");
        my @posts = grep { /"POST / } split /\n/, slurp_from($access, $access_at);
        ok(!@posts, "$name - fire: no POST reached httpd") or diag(join "\n", @posts);
    }
    check_json($name, $block, $stdout) if defined $block->fire_json;
    check_patterns($name, 'stdout', $stdout, $block->fire_stdout);
    check_patterns($name, 'stderr', $stderr, $block->fire_stderr);
    my @errors = error_lines();
    ok(!@errors, "$name - fire: no error lines in error_log") or diag(join "\n", @errors);
}

__DATA__

=== race mode loses updates in the demo's scenario (3 users x 5 at once)
--- config
RaceQMode race
RaceQApplyDelay 50 150
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --json
--- fire_json
requests == 15
concurrency == 15
answers.200 == 15
no_answer == 0
bad_echo == 0
lost_updates > 0
writes < 15
by_user.*.sent == 5
by_user.*.answered_200 == 5
by_user.*.writes >= 1
order_violations == 0
critical_path_us > 0
wall_us > 0
latency_us.max > 0

=== --expect-no-loss turns lost updates into exit status 3, table on stdout
--- config
RaceQMode race
RaceQApplyDelay 50 150
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --expect-no-loss
--- fire_exit: 3
--- fire_stdout
^15 requests to http://127\.0\.0\.1:\d+/t \(3 users x 5, concurrency 15, run [0-9a-f]{8}\)$
^user\s+sent\s+200\s+writes\s+lost\s+order\s+apply ms$
^[0-9a-f]{8}-u1\s+5\s+5\s+\d+\s+\d+\s+0\s+\d+\.\d$
^answers\s+200: 15$
^lost updates\s+[1-9]\d*$
^order violations\s+0$
^critical path\s+\d+\.\d ms$
^wall time\s+\d+\.\d ms$
^latency\s+p50 \d+\.\d ms, p90 \d+\.\d ms, p99 \d+\.\d ms, max \d+\.\d ms$
--- fire_stderr
lost updates

=== one request at a time loses nothing: every user gets exactly its writes
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --concurrency 1 --json --expect-no-loss
--- fire_json
requests == 15
concurrency == 1
answers.200 == 15
lost_updates == 0
writes == 15
by_user.*.writes == 5
by_user.*.lost_updates == 0
order_violations == 0

=== a fixed prefix: first run
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL/ --prefix again --users 2 --per-user 3 --concurrency 1 --json
--- fire_json
by_user.*.writes == 3
lost_updates == 0
--- fire_stdout
"run":"again"

=== a fixed prefix again: the store refuses the repeated req_ids, nothing counts as lost
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --prefix again --users 2 --per-user 3 --concurrency 1
--- fire_stdout
^again-u1\s+3\s+0\s+0\s+0\s+0\s+0\.0$
^again-u2\s+3\s+0\s+0\s+0\s+0\s+0\.0$
^answers\s+409: 6$
^first error\s+HTTP 409: req_id has already been applied \(field req_id\)$
^writes\s+0$
^lost updates\s+0$
^critical path\s+0\.0 ms$

=== --help
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --help
--- fire_stdout
^Usage: raceq-fire --url URL
--expect-no-loss

=== usage: --url is required
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --users 3
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --url is required
^Try 'raceq-fire --help'\.$

=== usage: --users must be a whole number from 1
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --users 0
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --users must be from 1 to 10000, not 0$

=== usage: --per-user is not a number
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --per-user five
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --per-user needs a whole number from 1 to 10000, not "five"$

=== usage: a negative --concurrency
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --concurrency -2
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --concurrency needs a whole number

=== usage: --timeout 0
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --timeout 0
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --timeout needs seconds above 0

=== usage: a --prefix with a slash
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --prefix a/b
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --prefix needs 1 to 64 letters

=== usage: an unknown option
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --users-count 3
--- fire_exit: 1
--- fire_stderr
^raceq-fire: invalid option: --users-count$

=== usage: not an http URL
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url ftp://127.0.0.1/t
--- fire_exit: 1
--- fire_stderr
^raceq-fire: --url needs an http:// or https:// URL with a host, not "ftp://127.0.0.1/t"$

=== usage: a stray argument
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL 15
--- fire_exit: 1
--- fire_stderr
^raceq-fire: unexpected argument "15"$

=== a closed port: a clear error, exit 1, no hang
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url http://127.0.0.1:$TEST_RACEQ_CLOSED/t --timeout 5
--- fire_exit: 1
--- fire_stderr
^raceq-fire: cannot reach http://127\.0\.0\.1:\d+/t: .*[Cc]ould(?:n't| not) connect

=== a location without mod_raceq: refused before firing
--- config
RaceQMode race
RaceQApplyDelay 0 0
--- request
GET /t/users/fire-probe
--- fire: --url http://127.0.0.1:$TEST_RACEQ_PORT/elsewhere
--- fire_exit: 1
--- fire_stderr
^raceq-fire: GET http://127\.0\.0\.1:\d+/elsewhere/users/[0-9a-f]{8}-u1 answered HTTP 404;
 is this a mod_raceq location\?$
