# fifo mode end to end: a real httpd, the fauxqs emulator and bin/raceqd on
# one SQLite store. The demo's scenario loses nothing and keeps each user's
# writes in the order SQS sequenced them; the answer carries the sequence
# number; a repeated req_id is applied once and answered alike; a reused
# req_id with another body is refused; bad input sends nothing.
#
# Extra block sections:
#   --- seq_in_history: USER   each 200 answer's X-RaceQ-Seq is the seq of its
#                              req_id in USER's history
#   --- idle_depth: N          messages in the queue no daemon reads
#   --- demo: USERS PER_USER   fires USERS x PER_USER POSTs at once (ids from
#                              the value of --- request's user) and checks
#                              every answer and every user's history against
#                              the X-RaceQ-Seq headers
#   --- fire: ARGS             runs bin/raceq-fire --json ARGS; checks every
#                              request 200, 5 writes per user, no loss, order
# Every block also checks that a req_id answered 200 twice in this file got
# the same X-RaceQ-Seq both times.

use Test::RaceQ;
use Test::RaceQ::Raceqd;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP;

my $ROOT = abs_path(dirname(__FILE__) . '/..');
my $JSON = JSON::PP->new->canonical;
my %SEQ_OF;

my $svc = Test::RaceQ::Raceqd->setup(args => ['--apply-delay', '1 200', '--workers', 4],
                                     idle_queue => 1);

config_var(TEST_RACEQ_URL => 'http://127.0.0.1:' . server_port() . '/t');

add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(config => <<'EOF') unless defined $block->config;
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQTimeout 30
EOF
});

add_block_check(\&check_seq_consistent);
add_block_check(\&check_seq_in_history, 'seq_in_history');
add_block_check(\&check_idle_depth, 'idle_depth');
add_block_check(\&check_demo, 'demo');
add_block_check(\&check_fire, 'fire');

run_tests();

# Sequence numbers are decimal strings longer than a double holds.
sub seq_cmp {
    my ($a, $b) = @_;
    return length($a) <=> length($b) || $a cmp $b;
}

sub answer_ids {
    my ($res) = @_;
    my $o = eval { decode_json($res->{body}) };
    return ref $o eq 'HASH' ? ($o->{req_id}, $o->{user_id}) : ();
}

sub check_seq_consistent {
    my ($block, $responses) = @_;
    for my $res (@$responses) {
        next unless $res->{status} == 200 && defined $res->{header}{'x-raceq-seq'};
        my ($req_id) = answer_ids($res);
        my $seq = $res->{header}{'x-raceq-seq'};
        if (exists $SEQ_OF{$req_id}) {
            is($seq, $SEQ_OF{$req_id}, $block->name . " - $req_id answered with its first seq");
        }
        $SEQ_OF{$req_id} //= $seq;
    }
}

sub history_of {
    my ($user) = @_;
    my $state = user_state($user);
    return ref $state ? $state->{history} : [];
}

sub check_seq_in_history {
    my ($block, $responses) = @_;
    return unless defined $block->seq_in_history;
    my $name = $block->name;
    chomp(my $user = $block->seq_in_history);
    my %seq = map { ($_->{req_id} => $_->{seq}) } @{ history_of($user) };
    for my $res (grep { $_->{status} == 200 } @$responses) {
        my ($req_id) = answer_ids($res);
        is($res->{header}{'x-raceq-seq'}, $seq{$req_id},
           "$name - X-RaceQ-Seq of $req_id is its seq in the history");
    }
}

sub check_idle_depth {
    my ($block) = @_;
    return unless defined $block->idle_depth;
    chomp(my $n = $block->idle_depth);
    is($svc->queue_depth('idle'), $n, $block->name . " - $n messages in the idle queue");
}

sub check_demo {
    my ($block) = @_;
    return unless defined $block->demo;
    my $name = $block->name;
    my ($users, $per) = $block->demo =~ /(\d+)\s+(\d+)/;
    my $port = server_port();
    my @specs;
    for my $j (1 .. $per) {
        for my $i (1 .. $users) {
            my $body = qq({"req_id":"demo-u$i-r$j","user_id":"demo-u$i"});
            push @specs, { method => 'POST', path => '/t', body => $body, headers => [
                ['Host', "127.0.0.1:$port"], ['Connection', 'close'],
                ['Content-Type', 'application/json'], ['Content-Length', length $body]] };
        }
    }
    my @res = Test::RaceQ::HTTP::exchange(port => $port, timeout => 60, requests => \@specs);
    my %sent;
    for my $r (@res) {
        my ($req_id, $user) = answer_ids($r);
        next unless $r->{status} == 200 && $req_id;
        push @{ $sent{$user} }, [$req_id, $r->{header}{'x-raceq-seq'} // ''];
    }
    is(scalar(grep { $_->{status} == 200 } @res), $users * $per, "$name - every request 200");
    for my $i (1 .. $users) {
        my $user = "demo-u$i";
        my $state = user_state($user);
        is(ref $state && $state->{writes}, $per, "$name - $user has $per writes");
        my @by_seq = map { $_->[0] } sort { seq_cmp($a->[1], $b->[1]) } @{ $sent{$user} || [] };
        my @hist = ref $state ? @{ $state->{history} } : ();
        is(join(',', map { $_->{req_id} } @hist), join(',', @by_seq),
           "$name - $user applied in the order SQS sequenced the sends");
        my %hdr = map { @$_ } @{ $sent{$user} || [] };
        is(join(',', map { $_->{seq} // 'null' } @hist),
           join(',', map { $hdr{$_->{req_id}} // 'none' } @hist),
           "$name - $user history seqs are the X-RaceQ-Seq answers");
    }
}

sub check_fire {
    my ($block) = @_;
    return unless defined $block->fire;
    my $name = $block->name;
    chomp(my $args = $block->fire);
    $args =~ s/\$(TEST_RACEQ_\w+)/config_var($1)/ge;
    my $out = `$ROOT/bin/raceq-fire --json $args`;
    my $r = eval { decode_json($out) };
    ok($r, "$name - raceq-fire reported") or return diag($out);
    is($r->{answers}{200}, $r->{requests}, "$name - every request 200");
    is($r->{no_answer}, 0, "$name - every request answered");
    is($r->{lost_updates}, 0, "$name - no lost update");
    is($r->{order_violations}, 0, "$name - no order violation");
    is($r->{writes}, $r->{requests}, "$name - every write applied once");
    is(join(',', map { $_->{writes} } @{ $r->{by_user} }),
       join(',', ($r->{per_user}) x $r->{users}), "$name - each user has its writes");
    Test::More::note(sprintf('%s: wall %.1f ms, critical path %.1f ms', $name, $r->{wall_us} / 1000,
                 $r->{critical_path_us} / 1000));
}

__DATA__

=== one POST is applied by raceqd; the answer carries the sequence number
--- request
POST /t
{"req_id":"one-1","user_id":"solo","note":"first"}
--- error_code: 200
--- response_json
{"req_id":"one-1","user_id":"solo","note":"first"}
--- response_headers
Content-Type: application/json
X-RaceQ-Req-Id: one-1
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- seq_in_history: solo
--- store
solo writes=1 history=one-1

=== the user's state shows the applied sequence number
--- request
GET /t/users/solo
--- error_code: 200
--- response_body_like: "req_id":"one-1".*"seq":"\d{10,}"

=== the same req_id again, one after another: the same answer, applied once
--- request
POST /t
{"req_id":"one-1","user_id":"solo","note":"first"}
--- repeat: 3
--- error_code: 200
--- response_json
{"req_id":"one-1","user_id":"solo","note":"first"}
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- seq_in_history: solo
--- store
solo writes=1 history=one-1

=== the same req_id five times at once: one write, every answer alike
--- request
POST /t
{"req_id":"dup-c","user_id":"dupc"}
--- concurrent: 5
--- timeout: 30
--- error_code: 200
--- response_json
{"req_id":"dup-c","user_id":"dupc"}
--- response_headers_like
X-RaceQ-Seq: ^\d{10,}$
--- seq_in_history: dupc
--- store
dupc writes=1 history=dup-c

=== the same req_id with another body: 409, nothing applied
--- request
POST /t
{"req_id":"one-1","user_id":"solo","note":"second"}
--- error_code: 409
--- error_field: req_id
--- error_message_like: another body
--- store_unchanged: solo
--- store
solo writes=1 history=one-1

=== the demo's scenario, 3 users x 5 at once: in SQS's order, nothing lost
--- request
GET /t/users/demo-u1
--- demo: 3 5
--- timeout: 60

=== the demo's scenario through raceq-fire
--- request
GET /t/users/fire-probe
--- fire: --url $TEST_RACEQ_URL --users 3 --per-user 5 --timeout 60

=== bad input in fifo mode: invalid JSON, nothing sent
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
--- request
POST /t
{"req_id":"bad-1","user_id":"badu",
--- error_code: 400
--- error_field: null
--- store_unchanged: badu
--- idle_depth: 0

=== bad input in fifo mode: no user_id, nothing sent
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
--- request
POST /t
{"req_id":"bad-2"}
--- error_code: 400
--- error_field: user_id
--- store_unchanged: badu
--- idle_depth: 0

=== bad input in fifo mode: req_id with a space, nothing sent
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
--- request
POST /t
{"req_id":"bad 3","user_id":"badu"}
--- error_code: 400
--- error_field: req_id
--- store_unchanged: badu
--- idle_depth: 0

=== bad input in fifo mode: not JSON by its Content-Type, nothing sent
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
--- request
POST /t
{"req_id":"bad-4","user_id":"badu"}
--- more_headers
Content-Type: text/plain
--- error_code: 415
--- error_field: null
--- store_unchanged: badu
--- idle_depth: 0

=== bad input in fifo mode: larger than RaceQMaxBody, nothing sent
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
--- request eval
"POST /t\n" . '{"req_id":"bad-5","user_id":"badu","pad":"' . ('x' x 300) . '"}'
--- error_code: 413
--- error_field: null
--- store_unchanged: badu
--- idle_depth: 0

=== the idle queue check can fail: a valid request is queued there, unanswered
--- config
RaceQMode fifo
RaceQDaemonSocket $TEST_RACEQ_SOCKET
RaceQQueueURL $TEST_RACEQ_IDLE_URL
RaceQMaxBody 200
RaceQTimeout 1
--- request
POST /t
{"req_id":"idle-1","user_id":"idleu"}
--- error_code: 504
--- error_field: null
--- error_message_like: queued and will still be applied
--- response_body_like: "req_id":"idle-1"
--- error_log
RQ08503
--- idle_depth: 1
