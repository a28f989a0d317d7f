#!/usr/bin/perl
# SIGTERM while applies fail and are handed back with their backoff: the
# graceful stop ends with status 0, never by a signal. The failures are real
# ones from the store: a trigger created while raceqd runs changes the schema
# under its pooled connections (they fail once with "database schema has
# changed" and are replaced) and then refuses every history insert.
# Then signals that keep coming while the stop finishes and the process
# tears down: the exit is 0 or 1, never a signal death.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $fq = Test::RaceQ::Fauxqs->start(queue => 'shutdown-0.fifo');

sub wait_for {
    my ($cond, $seconds) = @_;
    for (1 .. $seconds * 20) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

sub send_batch {
    my ($q, $round, $from) = @_;
    my @entries = map {
        my $i = $from + $_;
        my $u = 'sd-' . ($i % 5);
        { Id => "e$_", MessageBody => qq({"req_id":"sd$round-$i","user_id":"$u"}),
          MessageGroupId => $u, MessageDeduplicationId => "sd$round-$i" }
    } 0 .. 9;
    $fq->call('SendMessageBatch', { QueueUrl => $q, Entries => \@entries });
}

sub daemon {
    my ($round, $tag) = @_;
    my $tmp = tempdir("raceqd-shutdown-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $q = $fq->create_queue("shutdown-$tag-$round.fifo");
    my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => [
        '--queue-url', $q, '--workers', 4, '--apply-delay', '0 10', '--log-level', 'info']);
    return ($d, $q);
}

sub signal_free {
    my ($status, $name) = @_;
    is($status & 127, 0, "$name: no death by a signal") or diag("wait status $status");
}

for my $round (1 .. 3) {
    my ($d, $q) = daemon($round, 'fail');
    send_batch($q, $round, 0);
    ok(wait_for(sub { $d->applied_count > 0 }, 30), "round $round: applies run");
    my $sql = "CREATE TRIGGER refuse BEFORE INSERT ON history BEGIN "
        . "SELECT RAISE(ABORT, 'refused for the test'); END";
    is(system('sqlite3', '-cmd', '.timeout 5000', $d->db, $sql), 0,
       "round $round: the trigger is created while raceqd runs");
    send_batch($q, $round, 10);
    send_batch($q, $round, 20);
    ok(wait_for(sub { $d->log_text =~ /RQ09002: applying req_id \S+ of user \S+ failed/ }, 30),
       "round $round: applies fail and are handed back");
    my $status = $d->stop('TERM');
    signal_free($status, "round $round");
    is($status, 0, "round $round: SIGTERM during the retries: exit status 0");
    like($d->log_text, qr/RQ09011: stopped: .* \d+ failed/, "round $round: the stop is logged");
}

# Signals that go on arriving after the graceful stop is done.
for my $round (1 .. 5) {
    my ($d, $q) = daemon($round, 'late');
    send_batch($q, $round, 0);
    my $pid = $d->pid;
    kill 'TERM', $pid;
    wait_for(sub { $d->log_text =~ /RQ09011: stopped/ }, 60);
    my $status;
    for (1 .. 20000) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $?;
            last;
        }
        kill 'TERM', $pid;
        sleep 0.001;
    }
    if (!defined $status) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $status = $?;
    }
    signal_free($status, "late signals, round $round");
    ok($status == 0 || $status == 1 << 8, "late signals, round $round: exit status 0 or 1")
        or diag("wait status $status");
}

$fq->stop;
done_testing;
