#!/usr/bin/perl
# raceqd under valgrind (memcheck) for a few thousand messages: no errors,
# no definite leaks. RACEQ_VALGRIND_MESSAGES changes the count.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

plan skip_all => 'valgrind is not installed' unless `valgrind --version 2>/dev/null` =~ /valgrind/;

my $tmp = tempdir('raceqd-vg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceqd-vg.fifo');
my $q = $fq->queue_url;
my $total = $ENV{RACEQ_VALGRIND_MESSAGES} || 2000;
my $users = 50;

my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
    wrap => ['valgrind', '--tool=memcheck', '--leak-check=full', '--errors-for-leak-kinds=definite',
             '--error-exitcode=99', "--log-file=$tmp/valgrind.log"],
    args => ['--queue-url', $q, '--workers', 4, '--apply-delay', '0 0']);

# A few waiters along the way, so that the wait channel runs under valgrind too.
my @waiters;
for my $b (0 .. $total / 10 - 1) {
    my @entries = map {
        my $i = $b * 10 + $_;
        my ($u, $req) = ('vu-' . ($i % $users), "v-$i");
        { Id => "e$_", MessageBody => qq({"req_id":"$req","user_id":"$u"}),
          MessageGroupId => $u, MessageDeduplicationId => $req }
    } 0 .. 9;
    if ($b % 50 == 0) {
        my $c = $d->client;
        my $e = $entries[0];
        $c->register($e->{MessageDeduplicationId}, $e->{MessageGroupId}, $e->{MessageBody});
        push @waiters, $c;
    }
    $fq->call('SendMessageBatch', { QueueUrl => $q, Entries => \@entries });
}
my $n = 0;
sleep 0.2 while $d->applied_count < $total && $n++ < 1500;
is($d->applied_count, $total, "all $total messages applied under valgrind");
my $woken = grep { my $m = $_->answer(30); $m && $m->{type} eq 'DONE' } @waiters;
is($woken, scalar @waiters, 'the waiters were woken');
$_->close for @waiters;

my $status = $d->stop('TERM', 2400);
open(my $fh, '<', "$tmp/valgrind.log");
my $vg = do { local $/; <$fh> };
is($status >> 8, 0, 'valgrind reports no errors and no definite leaks (exit status 0)')
    or diag $vg;
like($vg, qr/ERROR SUMMARY: 0 errors/, 'error summary: 0 errors');
like($vg, qr/definitely lost: 0 bytes|All heap blocks were freed/, 'nothing definitely lost');
$fq->stop;
done_testing;
