#!/usr/bin/perl
# raceqd's memory stays flat over a run: 3000 messages of 30 users, apply
# delay 0, without valgrind. VmRSS is read from /proc after the first 500
# messages are applied and again at the end; the growth must stay below a
# generous bound (the outcomes it remembers for duplicates are bounded and
# small). RACEQ_MEMORY_MESSAGES changes the count.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $tmp = tempdir('raceqd-mem-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceqd-mem.fifo');
my $q = $fq->queue_url;
my $total = $ENV{RACEQ_MEMORY_MESSAGES} || 3000;
my $users = 30;
my $bound_kib = 16 * 1024;

sub rss_kib {
    my ($pid) = @_;
    open(my $fh, '<', "/proc/$pid/status") or return undef;
    while (<$fh>) {
        return $1 if /^VmRSS:\s+(\d+) kB/;
    }
    return undef;
}

sub wait_applied {
    my ($d, $n, $seconds) = @_;
    for (1 .. $seconds * 10) {
        return 1 if $d->applied_count >= $n;
        sleep 0.1;
    }
    return $d->applied_count >= $n;
}

my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
    args => ['--queue-url', $q, '--workers', 8, '--apply-delay', '0 0']);

my $sent = 0;
my $send_upto = sub {
    my ($n) = @_;
    while ($sent < $n) {
        my @entries = map {
            my $i = $sent + $_;
            my ($u, $req) = ('mu-' . ($i % $users), "m-$i");
            { Id => "e$_", MessageBody => qq({"req_id":"$req","user_id":"$u","pad":"$i"}),
              MessageGroupId => $u, MessageDeduplicationId => $req }
        } 0 .. 9;
        $fq->call('SendMessageBatch', { QueueUrl => $q, Entries => \@entries });
        $sent += 10;
    }
};

$send_upto->(500);
ok(wait_applied($d, 500, 60), 'the first 500 messages applied');
my $early = rss_kib($d->pid);
$send_upto->($total);
ok(wait_applied($d, $total, 120), "all $total messages applied");
my $late = rss_kib($d->pid);
ok(defined $early && defined $late, 'VmRSS read from /proc');
my $growth = $late - $early;
diag("raceqd VmRSS: $early KiB after 500 messages, $late KiB after $total "
     . "(growth $growth KiB)");
cmp_ok($growth, '<', $bound_kib, "VmRSS grew by less than $bound_kib KiB");
is($d->applied_count, $total, 'each message applied once');
is($d->stop('TERM'), 0, 'raceqd stops with 0');
$fq->stop;
done_testing;
