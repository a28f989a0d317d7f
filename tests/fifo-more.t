# More of fifo mode's answers through a real httpd, the fauxqs emulator and
# bin/raceqd: a duplicate after raceqd restarted, raceqd stopped (SIGTERM)
# while a request waits, SQS refusing the message (a queue that does not
# exist), and a daemon socket that answers garbage.
#
# raceqd applies each write in 2.5 s here, so that a request is still
# waiting for its turn when raceqd is stopped.
#
# Extra block sections:
#   --- action: NAME       before the block: "restart_daemon" (SIGTERM, exit 0
#                          checked, start again) or "term_while_waiting": one
#                          POST for user tw; once raceqd applies it, a second
#                          POST for tw; once both are queued, SIGTERM to
#                          raceqd; then raceqd is started again
#   --- term_answers       the first POST got its 200, the second the JSON 504
#                          saying the write is queued; raceqd exited with 0;
#                          httpd logged why (RQ08501, the wait channel closed)
#   --- eventually         "USER history=ID,..." lines, polled (bounded)
#   --- idle_depth: N      messages in the queue no daemon reads
# Every block also checks that a req_id answered 200 twice in this file got
# the same X-RaceQ-Seq both times.

use Test::RaceQ;
use Test::RaceQ::Raceqd;

use IO::Socket::UNIX;
use JSON::PP;
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);

my $svc = Test::RaceQ::Raceqd->setup(args => ['--apply-delay', '2500 2500'],
                                     idle_queue => 1, env_queue => 0);
my $TMP = tmp_dir();
my (%SEQ_OF, %Term, $FakePid);

add_service(name => 'fake raceqd', start => \&fake_start, stop => \&fake_stop);

add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(config => <<'EOF') unless defined $block->config;
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_QUEUE_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
EOF
    run_action($block);
});
add_block_check(sub {}, 'action');
add_block_check(\&check_seq_consistent);
add_block_check(\&check_term, 'term_answers');
add_block_check(\&check_eventually, 'eventually');
add_block_check(\&check_idle_depth, 'idle_depth');

run_tests();

# A queue URL on the emulator that names no queue; and a Unix socket whose
# server answers every connection with bytes that are not a frame.
sub fake_start {
    my ($ctx) = @_;
    (my $nope = $svc->queue_url) =~ s{[^/]+$}{raceq-missing.fifo};
    config_var(TEST_RACEQ_MISSING_URL => $nope);
    my $path = "$ctx->{tmp}/fake.sock";
    my $srv = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => $path, Listen => 16)
        or die "fake socket: $!";
    chmod 0666, $path;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        while (my $c = $srv->accept) {
            sysread($c, my $buf, 8192);
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            close $c;
        }
        POSIX::_exit(0);
    }
    close $srv;
    $FakePid = $pid;
}

sub fake_stop {
    return unless $FakePid;
    kill 'TERM', $FakePid;
    waitpid($FakePid, 0);
}

sub post_spec {
    my ($body) = @_;
    my $port = server_port();
    return { method => 'POST', path => '/t', body => $body, headers => [
        ['Host', "127.0.0.1:$port"], ['Connection', 'close'],
        ['Content-Type', 'application/json'], ['Content-Length', length $body]] };
}

# Sends one POST from a child process; its answer goes to FILE as JSON.
sub post_in_background {
    my ($body, $file) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my ($res) = Test::RaceQ::HTTP::exchange(port => server_port(), timeout => 60,
                                            requests => [post_spec($body)]);
    open my $fh, '>', $file or POSIX::_exit(1);
    print $fh encode_json({ status => $res->{status}, body => $res->{body} });
    close $fh;
    POSIX::_exit(0);
}

sub run_action {
    my ($block) = @_;
    return unless defined $block->action;
    chomp(my $a = $block->action);
    if ($a eq 'restart_daemon') {
        my $st = $svc->daemon->stop('TERM');
        die "raceqd exited with status $st\n" if $st;
        $svc->daemon->restart;
    }
    elsif ($a eq 'term_while_waiting') {
        term_while_waiting();
    }
    else {
        die "unknown action '$a'\n";
    }
}

sub term_while_waiting {
    my $d = $svc->daemon;
    Test::RaceQ::httpd_pid() or die "httpd is not running\n";
    $Term{log_at} = -s "$TMP/error_log" || 0;
    my $first = post_in_background('{"req_id":"tw-1","user_id":"tw"}', "$TMP/tw-1.json");
    Test::RaceQ::Raceqd::poll_until(sub { $d->log_text =~ /finding-tw-1___tw/ }, 30)
        or die "raceqd did not start applying tw-1\n";
    my $second = post_in_background('{"req_id":"tw-2","user_id":"tw"}', "$TMP/tw-2.json");
    Test::RaceQ::Raceqd::poll_until(sub { $svc->queue_depth == 2 }, 30)
        or die "tw-2 was not queued\n";
    $Term{status} = $d->stop('TERM');
    for my $pid ($first, $second) {
        Test::RaceQ::Raceqd::poll_until(sub { waitpid($pid, WNOHANG) == $pid }, 60);
    }
    $Term{log} = Test::RaceQ::read_log_from($Term{log_at});
    $d->restart;
}

sub answer_of {
    my ($file) = @_;
    open my $fh, '<', $file or return {};
    local $/;
    my $r = eval { decode_json(<$fh>) } || {};
    $r->{json} = eval { decode_json($r->{body}) } || {};
    return $r;
}

sub check_term {
    my ($block) = @_;
    return unless defined $block->term_answers;
    my $name = $block->name;
    is($Term{status}, 0, "$name - raceqd exited with 0");
    my $a = answer_of("$TMP/tw-1.json");
    is($a->{status}, 200, "$name - the request being applied at the signal got its 200");
    my $b = answer_of("$TMP/tw-2.json");
    is($b->{status}, 504, "$name - the request still queued got a 504");
    is($b->{json}{status}, 504, "$name - as the module's JSON error");
    is($b->{json}{req_id}, 'tw-2', "$name - naming its req_id");
    like($b->{json}{error} // '',
         qr/stopped before answering; the write is queued and will still be applied/,
         "$name - saying the write is queued and will still be applied");
    like($Term{log}, qr/RQ08501: req_id tw-2: raceqd closed the wait channel/,
         "$name - httpd logged the cause");
}

sub history_ids {
    my ($user) = @_;
    my $st = user_state($user);
    return ref $st ? join(',', map { $_->{req_id} } @{ $st->{history} }) : '';
}

sub check_eventually {
    my ($block) = @_;
    return unless defined $block->eventually;
    for my $line (grep { /\S/ } split /\n/, $block->eventually) {
        my ($user, $ids) = $line =~ /^(\S+)\s+history=(\S+)$/ or die "eventually: $line\n";
        my $got = Test::RaceQ::Raceqd::poll_until(sub { history_ids($user) eq $ids }, 30);
        ok($got, $block->name . " - $user reaches history=$ids")
            or diag("$user has history=" . history_ids($user));
    }
}

sub check_idle_depth {
    my ($block) = @_;
    return unless defined $block->idle_depth;
    chomp(my $n = $block->idle_depth);
    is($svc->queue_depth('idle'), $n, $block->name . " - $n messages in the idle queue");
}

sub check_seq_consistent {
    my ($block, $responses) = @_;
    for my $res (@$responses) {
        next unless $res->{status} == 200 && defined $res->{header}{'x-raceq-seq'};
        my $o = eval { decode_json($res->{body}) } || {};
        my $seq = $res->{header}{'x-raceq-seq'};
        if (exists $SEQ_OF{ $o->{req_id} }) {
            is($seq, $SEQ_OF{ $o->{req_id} },
               $block->name . " - $o->{req_id} answered with its first seq");
        }
        $SEQ_OF{ $o->{req_id} } //= $seq;
    }
}

__DATA__

=== a write applied before raceqd restarts
--- request
POST /t
{"req_id":"rs-1","user_id":"rs"}
--- timeout: 30
--- error_code: 200
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- store
rs writes=1 history=rs-1

=== after a restart of raceqd, the same req_id and body: 200, the same seq, applied once
--- action: restart_daemon
--- request
POST /t
{"req_id":"rs-1","user_id":"rs"}
--- timeout: 30
--- error_code: 200
--- response_json
{"req_id":"rs-1","user_id":"rs"}
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- store
rs writes=1 history=rs-1

=== after a restart of raceqd, the same req_id with another body: 409, nothing applied
--- request
POST /t
{"req_id":"rs-1","user_id":"rs","note":"other"}
--- timeout: 30
--- error_code: 409
--- error_field: req_id
--- store_unchanged: rs
--- store
rs writes=1 history=rs-1

=== raceqd stopped while a request waits: 504, queued; after a restart applied once
--- action: term_while_waiting
--- request
GET /t/users/tw
--- error_code: 200
--- term_answers
--- eventually
tw history=tw-1,tw-2

=== the waiting request's write, sent again after the restart: 200, not applied again
--- request
POST /t
{"req_id":"tw-2","user_id":"tw"}
--- timeout: 30
--- error_code: 200
--- store
tw writes=2 history=tw-1,tw-2

=== SQS refuses the message (no such queue): 502, the SQS error in the log, nothing written
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_MISSING_URL
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
--- request
POST /t
{"req_id":"nq-1","user_id":"nq"}
--- timeout: 30
--- error_code: 502
--- error_field: null
--- error_message_like: the queue did not take the write; nothing was queued
--- response_headers
X-RaceQ-Req-Id: nq-1
--- error_log eval
qr/\[raceq:error\].*RQ08501: req_id nq-1: sending.* failed: \S*(QueueDoesNotExist|NonExistentQueue)/
--- store_unchanged: nq

=== raceqd's socket answers garbage: 502, logged, nothing sent
--- config
RaceQMode fifo
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQDaemonSocket $TEST_RACEQ_TMP/fake.sock
RaceQTimeout 30
--- request
POST /t
{"req_id":"mal-1","user_id":"mal"}
--- error_code: 502
--- error_field: null
--- error_message_like: invalid answer; nothing was sent
--- error_log eval
qr/\[raceq:error\].*RQ08501: req_id mal-1: raceqd answered a malformed frame/
--- store_unchanged: mal
--- idle_depth: 0
