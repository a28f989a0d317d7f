# fifo mode when something is missing or goes away: no queue configured,
# raceqd not running, the emulator stopped and back, a request that outlives
# RaceQTimeout, a graceful restart of httpd while requests wait.
#
# raceqd applies each write in 1.5 s here, so that requests wait long
# enough for RaceQTimeout 1 and for a restart to find them waiting.
#
# Extra block sections:
#   --- action: NAME          before the block: emulator_stop,
#                             emulator_restart, or "graceful N" (N POSTs for
#                             one user sent in the background, then SIGUSR1
#                             to httpd once they are queued)
#   --- idle_depth: N         messages in the queue no daemon reads
#   --- eventually            "USER writes=N" lines, polled (bounded) until true
#   --- graceful_done         the background requests all ended with a 200 or
#                             the module's JSON 504; the old child exited; no
#                             child died on a signal; nothing at error level

use Test::RaceQ;
use Test::RaceQ::Raceqd;

use IO::Socket::UNIX;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my $svc = Test::RaceQ::Raceqd->setup(args => ['--apply-delay', '1500 1500'],
                                     idle_queue => 1, env_queue => 0);
my $TMP = tmp_dir();
my ($GraceKid, $GraceLogAt, $GraceN, @OldKids);

# A socket file nobody listens on, as a crashed daemon leaves it.
{
    my $s = IO::Socket::UNIX->new(Local => "$TMP/stale.sock", Listen => 1)
        or die "stale socket: $!";
    close $s;
    chmod 0777, "$TMP/stale.sock";
}

add_block_preprocessor(\&run_action);
add_block_check(sub {}, 'action');
add_block_check(\&check_idle_depth, 'idle_depth');
add_block_check(\&check_eventually, 'eventually');
add_block_check(\&check_graceful, 'graceful_done');

run_tests();

sub run_action {
    my ($block) = @_;
    return unless defined $block->action;
    chomp(my $a = $block->action);
    if ($a eq 'emulator_stop') {
        $svc->emulator_stop;
    }
    elsif ($a eq 'emulator_restart') {
        $svc->emulator_restart;
    }
    elsif ($a =~ /^graceful (\d+)$/) {
        graceful_start($1);
    }
    else {
        die "unknown action '$a'\n";
    }
}

sub post_spec {
    my ($body) = @_;
    my $port = server_port();
    return { method => 'POST', path => '/t', body => $body, headers => [
        ['Host', "127.0.0.1:$port"], ['Connection', 'close'],
        ['Content-Type', 'application/json'], ['Content-Length', length $body]] };
}

# Sends N requests from a child process, and restarts httpd gracefully once
# their messages are in the queue, that is while they wait for raceqd.
sub graceful_start {
    my ($n) = @_;
    my $pid = Test::RaceQ::httpd_pid() or die "httpd is not running\n";
    $GraceN = $n;
    $GraceLogAt = -s "$TMP/error_log" || 0;
    my @specs = map { post_spec(qq({"req_id":"grace-$_","user_id":"grace"})) } 1 .. $n;
    my $kid = fork // die "fork: $!";
    if ($kid == 0) {
        my @res = Test::RaceQ::HTTP::exchange(port => server_port(), timeout => 60,
                                              requests => \@specs);
        open my $fh, '>', "$TMP/graceful.json" or POSIX::_exit(1);
        print $fh encode_json([map { { status => $_->{status}, body => $_->{body} } } @res]);
        close $fh;
        POSIX::_exit(0);
    }
    $GraceKid = $kid;
    Test::RaceQ::Raceqd::poll_until(sub { $svc->queue_depth > 0 }, 20)
        or die "the requests before the restart were not queued\n";
    @OldKids = children_of($pid);
    kill 'USR1', $pid;
}

sub check_idle_depth {
    my ($block) = @_;
    return unless defined $block->idle_depth;
    chomp(my $n = $block->idle_depth);
    is($svc->queue_depth('idle'), $n, $block->name . " - $n messages in the idle queue");
}

sub user_writes {
    my ($user) = @_;
    my $st = user_state($user);
    return ref $st ? $st->{writes} : -1;
}

sub check_eventually {
    my ($block) = @_;
    return unless defined $block->eventually;
    for my $line (grep { /\S/ } split /\n/, $block->eventually) {
        my ($user, $n) = $line =~ /^(\S+)\s+writes=(\d+)$/ or die "eventually: $line\n";
        my $got = Test::RaceQ::Raceqd::poll_until(sub { user_writes($user) == $n }, 30);
        ok($got, $block->name . " - $user reaches writes=$n")
            or diag("$user has writes=" . user_writes($user));
    }
}

sub children_of {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // '';
        push @kids, $1 if $line =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $ppid;
    }
    return @kids;
}

sub check_graceful {
    my ($block) = @_;
    return unless defined $block->graceful_done;
    my $name = $block->name;

    my $done = Test::RaceQ::Raceqd::poll_until(sub { waitpid($GraceKid, WNOHANG) == $GraceKid },
                                               70);
    ok($done, "$name - the requests sent before the restart ended");
    my $res = eval {
        open my $fh, '<', "$TMP/graceful.json" or die;
        local $/;
        decode_json(<$fh>);
    } || [];
    is(scalar @$res, $GraceN, "$name - every request sent before the restart answered");
    for my $r (@$res) {
        my $o = eval { decode_json($r->{body}) } || {};
        if ($r->{status} == 200) {
            like($o->{req_id} // '', qr/^grace-\d+$/, "$name - a waiting request got its 200");
        }
        else {
            is_deeply([$r->{status}, $o->{status}, defined $o->{req_id}], [504, 504, 1],
                      "$name - a waiting request ended with the JSON 504");
        }
    }

    ok(scalar @OldKids, "$name - children were running before the restart");
    my $gone = Test::RaceQ::Raceqd::poll_until(sub { !grep { kill 0, $_ } @OldKids }, 30);
    ok($gone, "$name - the old generation's children exited");
    my $log = Test::RaceQ::read_log_from($GraceLogAt);
    unlike($log, qr/exit signal|Segmentation|AH00052/, "$name - no child died on a signal");
    unlike($log, qr/\[[\w:]*(error|crit|alert|emerg)\]/, "$name - nothing at error level")
        or diag($log);
}

__DATA__

=== fifo mode without a queue URL anywhere: httpd refuses to start, naming it
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
--- must_die
--- error_log eval
qr/RQ11013: RaceQMode fifo in <Location \/t> cannot work: no SQS queue URL is set/

=== a queue URL in an enclosing Location is enough
--- main_config
<Location />
    RaceQQueueURL $TEST_RACEQ_QUEUE_URL
</Location>
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
--- request
POST /t
{"req_id":"outer-1","user_id":"outer"}
--- timeout: 30
--- error_code: 200
--- store
outer writes=1 history=outer-1

=== raceqd not running (no socket): 503 at once, nothing sent
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQDaemonSocket $TEST_RACEQ_TMP/none.sock
--- request
POST /t
{"req_id":"down-1","user_id":"down"}
--- error_code: 503
--- error_field: null
--- error_message_like: not reachable; nothing was sent
--- response_headers
Retry-After: 1
X-RaceQ-Req-Id: down-1
--- error_log eval
qr/\[raceq:error\].*RQ08501: req_id down-1: raceqd is not reachable on \S+none\.sock/
--- store_unchanged: down
--- idle_depth: 0

=== raceqd gone, its socket left behind: 503 at once, nothing sent
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQDaemonSocket $TEST_RACEQ_TMP/stale.sock
--- request
POST /t
{"req_id":"down-2","user_id":"down"}
--- error_code: 503
--- error_field: null
--- error_log eval
qr/RQ08501: req_id down-2: raceqd is not reachable on \S+stale\.sock/
--- store_unchanged: down
--- idle_depth: 0

=== longer than RaceQTimeout: 504 with the req_id; the write is still applied
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_QUEUE_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 1
--- request
POST /t
{"req_id":"late-1","user_id":"late"}
--- error_code: 504
--- error_field: null
--- error_message_like: RaceQTimeout.*the write is queued and will still be applied
--- response_body_like: "req_id":"late-1"
--- error_log
RQ08503: req_id late-1
--- eventually
late writes=1

=== the emulator stopped: 503, the cause in the log
--- main_config
# room for a gracefully stopping child next to the new one
ServerLimit 4
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_QUEUE_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
--- action: emulator_stop
--- request
POST /t
{"req_id":"out-1","user_id":"outage"}
--- timeout: 40
--- error_code: 503
--- error_field: null
--- error_message_like: may not have been queued, and a retry with the same req_id is safe
--- error_log eval
qr/\[raceq:error\].*RQ08501: req_id out-1: sending to the queue failed/
--- store_unchanged: outage

=== the emulator back: requests succeed again, raceqd applies them
--- main_config
# room for a gracefully stopping child next to the new one
ServerLimit 4
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_QUEUE_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
--- action: emulator_restart
--- request
POST /t
{"req_id":"out-2","user_id":"outage"}
--- timeout: 40
--- error_code: 200
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- store
outage writes=1 history=out-2

=== a graceful restart while requests wait: they end cleanly, new ones work
--- main_config
# room for a gracefully stopping child next to the new one
ServerLimit 4
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_QUEUE_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
--- action: graceful 3
--- request
POST /t
{"req_id":"after-1","user_id":"after"}
--- timeout: 40
--- error_code: 200
--- graceful_done
--- eventually
grace writes=3
after writes=1
