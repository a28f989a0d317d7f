#!/usr/bin/perl
# raceqd killed with SIGKILL while 120 messages of 10 users are in flight,
# then restarted: every req_id applied exactly once, each user's order held.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $tmp = tempdir('raceqd-kill-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceqd-kill.fifo');
my $q = $fq->queue_url;
my ($USERS, $PER) = (10, 12);

my (%sent, %seq);
for my $i (1 .. $PER) {
    my @entries = map {
        my $req = "k-$_-$i";
        { Id => "e$_", MessageBody => qq({"req_id":"$req","user_id":"ku-$_"}),
          MessageGroupId => "ku-$_", MessageDeduplicationId => $req }
    } 1 .. $USERS;
    my $r = $fq->call('SendMessageBatch', { QueueUrl => $q, Entries => \@entries });
    is(scalar @{ $r->{Successful} }, $USERS, "batch $i sent") or diag explain $r;
    push @{ $sent{"ku-$_"} }, "k-$_-$i" for 1 .. $USERS;
}

my @args = ('--queue-url', $q, '--workers', 4, '--apply-delay', '20 60',
            '--visibility-timeout', 4);
my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => \@args);
my $n = 0;
sleep 0.05 while $d->applied_count < 15 && $n++ < 1200;
my $before = $d->applied_count;
$d->stop('KILL');
cmp_ok($before, '<', $USERS * $PER, "killed with messages still in flight ($before applied)");

$d->restart;
$n = 0;
sleep 0.1 while $d->applied_count < $USERS * $PER && $n++ < 1200;
is($d->applied_count, $USERS * $PER, 'after the restart every message is applied');
for my $u (1 .. $USERS) {
    my $h = $d->history("ku-$u");
    is_deeply([map { $_->[0] } @$h], $sent{"ku-$u"}, "ku-$u: each req_id once, in send order");
    is($d->writes("ku-$u"), $PER, "ku-$u: $PER writes, none lost or doubled");
    my $desc = grep { $h->[$_][1] > $h->[$_ + 1][1] } 0 .. $#$h - 1;
    is($desc, 0, "ku-$u: sequence numbers increase");
}
is($d->stop('TERM'), 0, 'the restarted daemon stops cleanly');
$fq->stop;
done_testing;
