#!/usr/bin/perl
# raceqd against the fauxqs emulator: messages sent to the queue are applied
# in order per user and the waiters are woken; duplicates, conflicts,
# malformed frames, startup errors, graceful stop.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $root = Test::RaceQ::Daemon->root;
my $tmp = tempdir('raceqd-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceqd-test.fifo');
my $q = $fq->queue_url;

sub send_msg {
    my ($body, $user, $req) = @_;
    return $fq->call('SendMessage', { QueueUrl => $q, MessageBody => $body,
        MessageGroupId => $user, MessageDeduplicationId => $req })->{SequenceNumber};
}

sub body { my ($req, $user) = @_; return qq({"req_id":"$req","user_id":"$user","n":1}) }

# ---- startup errors ----
{
    my %env = %{ $fq->env };
    delete $env{AWS_FIFO_URL};
    local @ENV{keys %env} = values %env;
    my $out = `$root/bin/raceqd --foreground --socket $tmp/x.sock --store "sqlite3 $tmp/x.db" 2>&1`;
    isnt($? >> 8, 0, 'no queue URL: raceqd refuses to start');
    like($out, qr/queue/i, 'and says a queue URL is missing');

    my $d = "$root/bin/raceqd --foreground --queue-url $q";
    $out = `$d --socket $tmp/no/such/dir/s.sock --store "sqlite3 $tmp/x.db" 2>&1`;
    isnt($? >> 8, 0, 'socket path unusable: refuses to start');
    like($out, qr/socket .* cannot be created/, 'and names the socket');

    $out = `$d --socket $tmp/x.sock --store "sqlite3 /proc/none/x.db" 2>&1`;
    isnt($? >> 8, 0, 'store unusable: refuses to start');
    like($out, qr/store .* cannot be opened/, 'and names the store');

    $out = `$root/bin/raceqd --workers many 2>&1`;
    is($? >> 8, 2, 'a bad option value exits 2');
    like($out, qr/--workers: "many"/, 'naming the option');

    open(my $fh, '>', "$tmp/bad.conf");
    print $fh "# comment\nworkers = 3\nno-such-setting = 1\n";
    close $fh;
    $out = `$root/bin/raceqd --config $tmp/bad.conf 2>&1`;
    like($out, qr/bad\.conf:3: unknown setting "no-such-setting"/,
         'config file errors name the line');
}

# ---- the configuration file and a running daemon ----
open(my $cf, '>', "$tmp/raceqd.conf");
print $cf "queue-url = $q\nworkers = 4\napply-delay = \"1 30\"\nlog-level = info\n";
close $cf;
my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
                                   args => ['--config', "$tmp/raceqd.conf"]);
ok($d->alive, 'raceqd runs with a configuration file');
is((stat $d->socket_path)[2] & 07777, 0660, 'the socket is created 0660');

# ---- 5 users x 6 writes, each registered before sending, answers in order ----
my (@waits, %seq_of, %order);
for my $i (1 .. 6) {
    for my $u (1 .. 5) {
        my ($user, $req) = ("user-$u", "r-$u-$i");
        my $c = $d->client;
        my $t = $c->register($req, $user, body($req, $user));
        my $seq = send_msg(body($req, $user), $user, $req);
        $c->sent($seq);
        $seq_of{$req} = $seq;
        push @{ $order{$user} }, $req;
        push @waits, [$c, $req, $t];
    }
}
is(scalar(grep { $_->[2] eq 'WAITING' } @waits), 30, 'all 30 registrations wait');
my ($done, $seq_ok) = (0, 0);
for my $w (@waits) {
    my $m = $w->[0]->answer(60);
    $done++ if $m && $m->{type} eq 'DONE' && $m->{req_id} eq $w->[1];
    $seq_ok++ if $m && defined $m->{seq} && $m->{seq} eq $seq_of{$w->[1]};
    $w->[0]->close;
}
is($done, 30, 'every waiter woken with DONE');
is($seq_ok, 30, 'each answer carries its message\'s sequence number');
for my $u (1 .. 5) {
    my $h = $d->history("user-$u");
    is_deeply([map { $_->[0] } @$h], $order{"user-$u"}, "user-$u: history in send order");
    is($d->writes("user-$u"), 6, "user-$u: 6 writes, none lost");
    my $overlap = grep { $h->[$_][3] > $h->[$_ + 1][2] } 0 .. $#$h - 1;
    is($overlap, 0, "user-$u: applies never overlapped");
}

# ---- duplicates and conflicts ----
{
    my $c = $d->client;
    is($c->register('r-1-1', 'user-1', body('r-1-1', 'user-1')), 'DONE',
       'a late duplicate is answered at once');
    is($c->{first}{seq}, $seq_of{'r-1-1'}, 'with the original sequence number');
    $c = $d->client;
    is($c->register('r-1-1', 'user-1', '{"other":"body"}'), 'CONFLICT',
       'the same req_id with another body conflicts');

    my $a = $d->client;
    my $b = $d->client;
    is($a->register('dup-1', 'user-9', body('dup-1', 'user-9')), 'WAITING', 'first of two');
    is($b->register('dup-1', 'user-9', body('dup-1', 'user-9')), 'WAITING', 'second of two');
    my $s1 = send_msg(body('dup-1', 'user-9'), 'user-9', 'dup-1');
    my $s2 = send_msg(body('dup-1', 'user-9'), 'user-9', 'dup-1');
    is($s1, $s2, 'SQS deduplicates the second send');
    $a->sent($s1);
    $b->sent($s2);
    my ($ma, $mb) = ($a->answer(30), $b->answer(30));
    ok($ma && $mb && $ma->{type} eq 'DONE' && $mb->{type} eq 'DONE', 'both waiters answered');
    is(scalar @{ $d->history('user-9') }, 1, 'applied once');
}

# ---- a waiter that left; malformed frames ----
{
    my $c = $d->client;
    $c->register('gone-1', 'user-8', body('gone-1', 'user-8'));
    send_msg(body('gone-1', 'user-8'), 'user-8', 'gone-1');
    $c->close;
    my $n = 0;
    sleep 0.1 while @{ $d->history('user-8') } == 0 && $n++ < 300;
    is(scalar @{ $d->history('user-8') }, 1, 'a message whose waiter left is applied');

    $c = $d->client;
    $c->raw("RQ\x01\x01\x7f\xff\xff\xff");
    my $m = $c->answer(10);
    is($m && $m->{type}, 'ERROR', 'an oversized frame is rejected');
    $c = $d->client;
    $c->raw(Test::RaceQ::Daemon::frame(
        REGISTER => { req_id => 'x y', user_id => 'u', hash => 'z' }));
    $m = $c->answer(10);
    is($m && $m->{type}, 'ERROR', 'a REGISTER with invalid fields is rejected');
    ok($d->alive, 'raceqd still runs');
}

# ---- a message that is not a request object ----
{
    send_msg('not json', 'user-7', 'junk-1');
    my $n = 0;
    sleep 0.1 while $d->log_text !~ /RQ09003/ && $n++ < 300;
    like($d->log_text, qr/RQ09003: .* not a request object/, 'an invalid body is logged');
}

is($d->stop('TERM'), 0, 'SIGTERM: exit status 0');
ok(!-e $d->socket_path, 'the socket is removed');
ok(!-e "$tmp/raceqd.pid", 'the pid file is removed');
like($d->log_text, qr/RQ09011: stopped: \d+ received/, 'the stop is logged with counts');
unlike($d->log_text, qr/\[raceq:(error|crit|alert|emerg)\](?!.*RQ09003)/,
       'no unexpected error in the log');
my $attrs = $fq->call('GetQueueAttributes', { QueueUrl => $q, AttributeNames => ['All'] });
my $qa = $attrs->{Attributes};
is($qa->{ApproximateNumberOfMessages} + $qa->{ApproximateNumberOfMessagesNotVisible}, 0,
   'the queue is empty: everything was deleted');

$fq->stop;
done_testing;
