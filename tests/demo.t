# make demo in its quick form (scripts/demo.sh QUICK=1, what make demo runs
# after building): both modes fired, the tables and log excerpts printed,
# fifo mode judged, and nothing left behind: no process of the run, no
# temporary directory. Also JSON=1, KEEP=1 stopped with Ctrl-C, a .env that
# names the queue to use, refused settings, and the judgement on its own.
#
# Each run is started in a session of its own, so that every process it
# started, whatever became of the script, can be found by session id.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use POSIX qw(WNOHANG setsid);
use Test::More;
use Time::HiRes qw(sleep time);

use Test::RaceQ::Fauxqs;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $LIMIT = 180;    # seconds before a hung run is killed

for my $f ("$ROOT/bin/raceq-fire", "$ROOT/bin/raceqd", "$ROOT/.libs/mod_raceq.so") {
    plan skip_all => "$f is not built (run make)" unless -e $f;
}

# Starts scripts/demo.sh in a new session; output goes to files.
sub start_demo {
    my (%env) = @_;
    my $dir = tempdir('raceq-demo-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        setsid();
        $SIG{INT} = $SIG{TERM} = 'DEFAULT';
        $ENV{ENV_FILE} = '';    # never a developer's own .env
        delete $ENV{$_} for qw(USERS PER_USER DELAY KEEP JSON QUICK);
        $ENV{$_} = $env{$_} for keys %env;
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', "$dir/out");
        open(STDERR, '>', "$dir/err");
        chdir $ROOT;
        exec("$ROOT/scripts/demo.sh") or die "exec: $!";
    }
    return { pid => $pid, dir => $dir };
}

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return '';
    local $/;
    return scalar <$fh>;
}

# Waits for the run to end (killing its session past the limit).
sub finish {
    my ($run) = @_;
    my $until = time + $LIMIT;
    while (waitpid($run->{pid}, WNOHANG) == 0) {
        if (time > $until) {
            kill 'KILL', -$run->{pid};
            waitpid($run->{pid}, 0);
            fail("the demo ended within $LIMIT s");
            last;
        }
        sleep 0.1;
    }
    $run->{status} = $? >> 8;
    $run->{out} = slurp("$run->{dir}/out");
    $run->{err} = slurp("$run->{dir}/err");
    return $run;
}

sub run_demo { return finish(start_demo(@_)) }

sub session_procs {
    my ($sid) = @_;
    my @left;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $text = slurp($stat) or next;
        my ($pid, $comm, $rest) = $text =~ /^(\d+) \((.*)\) (.*)$/s or next;
        my @f = split ' ', $rest;
        push @left, "$pid $comm" if $f[3] == $sid;
    }
    return @left;
}

sub procs_mentioning {
    my ($path) = @_;
    my @left;
    for my $cmd (glob '/proc/[0-9]*/cmdline') {
        my $text = slurp($cmd);
        next unless index($text, $path) >= 0;
        (my $pid = $cmd) =~ s{/proc/(\d+)/cmdline}{$1};
        next if $pid == $$;
        $text =~ s/\0/ /g;
        push @left, "$pid $text";
    }
    return @left;
}

# Nothing of the run is left: no process of its session or naming its
# directory, no directory.
sub left_nothing {
    my ($run, $name) = @_;
    my ($tmp) = $run->{out} =~ m{^store:\s+(\S+)/toy\.db$}m;
    ($tmp) = $run->{err} =~ m{^store:\s+(\S+)/toy\.db$}m unless $tmp;
    ok($tmp, "$name: the run names its directory") or return;
    my @left;
    for (1 .. 50) {    # children reaped by init may linger a moment
        @left = (session_procs($run->{pid}), procs_mentioning($tmp));
        last unless @left;
        sleep 0.1;
    }
    is_deeply(\@left, [], "$name: no process of the run is left")
        or kill 'KILL', map { /^(\d+)/ } @left;
    ok(!-e $tmp, "$name: $tmp is removed");
}

sub section {
    my ($out, $mode) = @_;
    my ($text) = $out =~ /^(\Q$mode\E mode:.*?)(?=^\S|\z)/ms;
    return $text // '';
}

# ---------------------------------------------------------------------------
# The quick form, as the README shows it.

my $run = run_demo(QUICK => 1);
is($run->{status}, 0, 'quick demo exits 0') or diag("stdout:\n$run->{out}\nstderr:\n$run->{err}");
like($run->{out}, qr/^queue:\s+local SQS emulator \(fauxqs\) at http:\/\/127\.0\.0\.1:\d+/m,
     'says it uses the local emulator');
like($run->{out}, qr{^httpd:\s+http://127\.0\.0\.1:(\d+)/race and http://127\.0\.0\.1:\1/fifo}m,
     'one port, two locations');

my $race = section($run->{out}, 'race');
my $fifo = section($run->{out}, 'fifo');
like($race, qr/^\s+all\s+15\s+15\s+\d+\s+\d+\s+0$/m, 'race: 15 sent, 15 answered 200');
like($fifo, qr/^\s+all\s+15\s+15\s+15\s+0\s+0$/m, 'fifo: 15 writes, none lost, order kept');
is(scalar(() = $fifo =~ /^\s+\S+-u\d\s+5\s+5\s+5\s+0\s+0$/mg), 3, 'fifo: 5 writes for each user');

# The race table's totals agree with its own rows: lost = answered - writes.
my ($sent, $ok, $writes, $lost) = $race =~ /^\s+all\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m;
is($lost, $ok - $writes, 'race: lost updates = answered 200 - writes') if defined $lost;

my @race_lines = $race =~ /^\s+[\d:.]+\s+((?:finding|writing)-\S+)/mg;
is(scalar(grep { /^finding-/ } @race_lines), 5, 'race: the five reads of one user');
is(scalar(grep { /^writing-/ } @race_lines), 5, 'race: and its five writes');

# fifo: read and write of each request in turn, sequence numbers rising.
my @fifo_lines = $fifo =~ /^\s+[\d:.]+\s+((?:finding|writing)-\S+(?:\s+seq \d+)?)/mg;
is(scalar @fifo_lines, 10, 'fifo: ten log lines of one user');
my ($alternate, $prev_seq, $rising) = (1, undef, 1);
for my $i (0 .. $#fifo_lines) {
    my ($what, $req) = $fifo_lines[$i] =~ /^(finding|writing)-(\S+?)___/ or next;
    $alternate = 0 if $what ne ($i % 2 ? 'writing' : 'finding');
    if ($i % 2) {
        my ($prev_req) = $fifo_lines[$i - 1] =~ /^finding-(\S+?)___/;
        $alternate = 0 unless defined $prev_req && $prev_req eq $req;
    } else {
        my ($seq) = $fifo_lines[$i] =~ /seq (\d+)/;
        $rising = 0 unless defined $seq && (!defined $prev_seq || $seq > $prev_seq);
        $prev_seq = $seq;
    }
}
ok($alternate, 'fifo: each write finishes before the next read');
ok($rising, 'fifo: applied in SQS sequence order');
like($fifo, qr/^\s+0 of 5 reads came while another write/m, 'fifo: no overlapping read');

like($run->{out}, qr/^side by side/m, 'the side-by-side table');
like($run->{out}, qr/^\s+lost updates\s+\d+\s+0$/m, 'side by side: fifo lost none');
like($run->{out}, qr/^demo OK: /m, 'the verdict');
left_nothing($run, 'quick demo');

# ---------------------------------------------------------------------------
# JSON=1: stdout is one JSON document; a second run works the same.

$run = run_demo(QUICK => 1, JSON => 1, USERS => 2, PER_USER => 3);
is($run->{status}, 0, 'JSON demo exits 0') or diag($run->{err});
my $doc = eval { decode_json($run->{out}) };
ok($doc, 'stdout is one JSON document') or diag($@ . $run->{out});
$doc //= {};
is($doc->{queue}, 'emulator', 'json: queue');
ok($doc->{ok}, 'json: ok');
is_deeply($doc->{apply_delay_ms}, [1, 20], 'json: the quick delay');
is($doc->{race}{requests}, 6, 'json: race requests');
is($doc->{race}{answers}{200}, 6, 'json: race all answered 200');
is($doc->{fifo}{writes}, 6, 'json: fifo writes');
is($doc->{fifo}{lost_updates}, 0, 'json: fifo lost none');
is($doc->{fifo}{order_violations}, 0, 'json: fifo order kept');
is(scalar @{ $doc->{fifo}{by_user} // [] }, 2, 'json: per user');
like($run->{err}, qr/^firing 6 requests at .*\/fifo/m, 'json: progress on stderr');
left_nothing($run, 'JSON demo');

# ---------------------------------------------------------------------------
# make demo JSON=1: through make too, stdout is the JSON document alone.

{
    my $dir = tempdir('raceq-demo-make-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    local $ENV{ENV_FILE} = '';
    # As typed in a shell: not a sub-make of `make test`, which would print
    # its directory on stdout.
    local $ENV{MAKELEVEL};
    local $ENV{MAKEFLAGS};
    local $ENV{MFLAGS};
    delete @ENV{qw(MAKELEVEL MAKEFLAGS MFLAGS)};
    my $out = `cd $ROOT && make demo JSON=1 QUICK=1 USERS=1 PER_USER=2 2>$dir/err`;
    is($? >> 8, 0, 'make demo JSON=1 exits 0') or diag(slurp("$dir/err"));
    my $doc = eval { decode_json($out) };
    ok($doc && $doc->{ok}, 'make demo JSON=1 > file gives valid JSON') or diag($@ . $out);
}

# ---------------------------------------------------------------------------
# KEEP=1: the stack answers until Ctrl-C, which ends the run with 0.

$run = start_demo(QUICK => 1, KEEP => 1, USERS => 1, PER_USER => 2);
my $ready;
for (1 .. $LIMIT * 10) {
    last if ($ready = slurp("$run->{dir}/out") =~ /Ctrl-C stops it/);
    last if waitpid($run->{pid}, WNOHANG) != 0;
    sleep 0.1;
}
ok($ready, 'KEEP: the stack is kept running');
my ($base) = slurp("$run->{dir}/out") =~ m{^httpd:\s+(http://127\.0\.0\.1:\d+)/race}m;
if ($ready && $base) {
    my $res = HTTP::Tiny->new(timeout => 30)->post("$base/fifo", {
        headers => { 'Content-Type' => 'application/json' },
        content => '{"req_id":"keep-1","user_id":"keep-user"}',
    });
    is($res->{status}, 200, 'KEEP: a fifo write is answered');
    $res = HTTP::Tiny->new(timeout => 10)->get("$base/fifo/users/keep-user");
    like($res->{content}, qr/"writes":1\b/, 'KEEP: and stored');

    # The printed load-test commands, run as printed: every request writes.
    my @hints = slurp("$run->{dir}/out") =~ /^\s+((?:ab|wrk) .*\S)\s*$/mg;
    my @ab = grep { /^ab / } @hints;
    my ($wrk) = grep { /^wrk / } @hints;
    is(scalar @ab, 2, 'KEEP: ab commands printed for /fifo and /race');
    for my $cmd (@ab) {
        my ($n) = $cmd =~ /-n (\d+)/;
        my ($where) = $cmd =~ m{/(fifo|race)$};
        my $out = `$cmd 2>&1`;
        like($out, qr/^Complete requests:\s+$n$/m, "KEEP: ab on /$where: $n requests done");
        like($out, qr/^Failed requests:\s+0$/m, "KEEP: ab on /$where: none failed");
        unlike($out, qr/Non-2xx responses/, "KEEP: ab on /$where: every answer 200")
            or diag($out);
        if ($where eq 'fifo') {
            $res = HTTP::Tiny->new(timeout => 10)->get("$base/fifo/users/ab-user");
            like($res->{content}, qr/"writes":$n\b/, "KEEP: ab on /fifo: $n writes stored");
        }
    }
    ok($wrk, 'KEEP: a wrk command printed');
    if ($wrk) {
        my $out = `$wrk 2>&1`;
        my ($fig) = $out =~ /^RACEQ-WRK (\{.*\})$/m;
        my $w = eval { decode_json($fig) } || {};
        cmp_ok($w->{requests} // 0, '>', 0, 'KEEP: wrk on /fifo sent requests');
        is($w->{non2xx}, 0, 'KEEP: wrk on /fifo: every answer 200') or diag($out);
    }
}
kill 'INT', -$run->{pid};
finish($run);
is($run->{status}, 0, 'KEEP: Ctrl-C ends the run with 0') or diag($run->{err});
left_nothing($run, 'KEEP demo');

# ---------------------------------------------------------------------------
# Ctrl-C while firing: everything stops, the status says interrupted.

$run = start_demo(DELAY => '400 600');
for (1 .. $LIMIT * 10) {
    last if slurp("$run->{dir}/out") =~ /^firing/m;
    last if waitpid($run->{pid}, WNOHANG) != 0;
    sleep 0.05;
}
kill 'INT', -$run->{pid};
finish($run);
is($run->{status}, 130, 'Ctrl-C while firing: status 130');
like($run->{err}, qr/interrupted; stopping what it started/, 'Ctrl-C: says so');
left_nothing($run, 'interrupted demo');

# ---------------------------------------------------------------------------
# A .env that names a queue: the demo uses it (here an emulator of the
# test's own, standing for a real queue) and says so.

my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceq-demo-env.fifo');
my $envdir = tempdir('raceq-demo-env-XXXXXX', TMPDIR => 1, CLEANUP => 1);
open(my $fh, '>', "$envdir/.env") or die;
my $e = $fq->env;
print $fh "export AWS_FIFO_URL='$e->{AWS_FIFO_URL}'  # the queue\n";
print $fh "$_=$e->{$_}\n" for grep { $_ ne 'AWS_FIFO_URL' } sort keys %$e;
close $fh;
$run = run_demo(QUICK => 1, USERS => 2, PER_USER => 2, ENV_FILE => "$envdir/.env");
is($run->{status}, 0, '.env queue: exits 0') or diag("$run->{out}\n$run->{err}");
like($run->{out}, qr/^queue:.*\Q$envdir\/.env\E.*\Q$e->{AWS_FIFO_URL}\E/m,
     '.env queue: names the file and the queue');
unlike($run->{out}, qr/local SQS emulator/, '.env queue: no emulator of its own');
like(section($run->{out}, 'fifo'), qr/^\s+all\s+4\s+4\s+4\s+0\s+0$/m, '.env queue: fifo works');
left_nothing($run, '.env demo');
$fq->stop;

# ---------------------------------------------------------------------------
# Refused settings: status 2, a sentence naming the setting, nothing started.

my $private_tmp = tempdir('raceq-demo-tmp-XXXXXX', TMPDIR => 1, CLEANUP => 1);
for my $case (['USERS', 'x'], ['USERS', '0'], ['PER_USER', '-1'], ['DELAY', '5 1'],
              ['DELAY', '1'], ['DELAY', '1 2 3']) {
    my ($name, $value) = @$case;
    my $r = run_demo($name => $value, TMPDIR => $private_tmp);
    is($r->{status}, 2, "$name='$value' is refused with 2");
    like($r->{err}, qr/^demo: \Q$name\E must be/m, "$name='$value': the message names it");
    is($r->{out}, '', "$name='$value': nothing on stdout");
}
is_deeply([glob "$private_tmp/*"], [], 'refused settings: no temporary directory made');

# ---------------------------------------------------------------------------
# The judgement on raceq-fire figures: fifo must lose nothing and keep order;
# race mode losing updates is fine; a request not answered 200 is a failure.

sub fire_json {
    my (%o) = @_;
    my $n = $o{requests} // 15;
    return encode_json({
        url => 'http://127.0.0.1:1/x', run => 'r', users => 3, per_user => 5,
        concurrency => 15, requests => $n, answers => $o{answers} // { 200 => $n },
        no_answer => 0, bad_echo => 0, writes => $o{writes} // $n,
        lost_updates => $o{lost} // 0, order_violations => $o{order} // 0,
        critical_path_us => 1000, wall_us => 1200,
        latency_us => { p50 => 1, p90 => 1, p99 => 1, max => 1 }, by_user => [],
    });
}

sub judge {
    my ($race, $fifo) = @_;
    my $dir = tempdir('raceq-judge-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    for (['race', $race], ['fifo', $fifo]) {
        open(my $out, '>', "$dir/$_->[0].json") or die;
        print $out $_->[1];
        close $out;
    }
    my $text = `perl $ROOT/scripts/demo-report.pl --dir $dir --base http://127.0.0.1:1 summary`;
    return ($? >> 8, $text);
}

my ($rc, $text) = judge(fire_json(writes => 3, lost => 12), fire_json());
is($rc, 0, 'judge: race losing updates passes');
like($text, qr/^demo OK: race mode lost 12 of 15/m, 'judge: and says what race lost');

($rc, $text) = judge(fire_json(writes => 3, lost => 12), fire_json(writes => 13, lost => 2));
is($rc, 1, 'judge: fifo losing updates fails');
like($text, qr/^\s+fifo: 2 updates were lost$/m, 'judge: and says so');

($rc, $text) = judge(fire_json(), fire_json(order => 1));
is($rc, 1, 'judge: fifo out of order fails');
like($text, qr/fifo: 1 writes were applied out of queue order/, 'judge: and says so');

($rc, $text) = judge(fire_json(), fire_json(answers => { 501 => 15 }, writes => 0));
is($rc, 1, 'judge: fifo answering 501 fails, though nothing counts as lost');
like($text, qr/fifo: 15 of 15 requests were not answered 200 \(501: 15\)/, 'judge: and says so');

($rc, $text) = judge(fire_json(answers => { 200 => 14, 500 => 1 }, writes => 2), fire_json());
is($rc, 1, 'judge: race answering 500 fails');
like($text, qr/race: 1 of 15 requests were not answered 200/, 'judge: and says so');

done_testing();
