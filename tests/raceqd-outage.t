#!/usr/bin/perl
# The emulator stopped: raceqd keeps retrying without crashing or spinning;
# the emulator back on the same port: raceqd receives again.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $root = Test::RaceQ::Daemon->root;
my $tmp = tempdir('raceqd-outage-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub emulator {
    my ($port) = @_;
    pipe(my $child_in, my $to_child);
    pipe(my $from_child, my $child_out);
    my $pid = fork() // die;
    if ($pid == 0) {
        close $to_child; close $from_child;
        open(STDIN, '<&', $child_in); open(STDOUT, '>&', $child_out);
        exec('node', "$root/tests/fauxqs-server.mjs", $port) or die;
    }
    close $child_in; close $child_out;
    chomp(my $got = <$from_child> // '');
    die "emulator did not start on $port\n" unless $got =~ /^\d+$/;
    my $fq = bless { port => $got, region => 'us-east-1',
                     http => HTTP::Tiny->new(timeout => 30) }, 'Test::RaceQ::Fauxqs';
    return ($fq, $pid, $to_child);
}

sub emulator_stop {
    my ($pid, $stdin) = @_;
    kill 'TERM', $pid;
    close $stdin;
    waitpid($pid, 0);
}

sub send_one {
    my ($fq, $q, $req) = @_;
    $fq->call('SendMessage', { QueueUrl => $q, MessageBody => qq({"req_id":"$req","user_id":"ou"}),
        MessageGroupId => 'ou', MessageDeduplicationId => $req });
}

my ($fq, $epid, $ein) = emulator(0);
my $port = $fq->port;
my $q = $fq->create_queue('outage.fifo');
my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
    args => ['--queue-url', $q, '--apply-delay', '0 0', '--log-level', 'notice']);

send_one($fq, $q, 'o-1');
my $n = 0;
sleep 0.1 while $d->applied_count < 1 && $n++ < 300;
is($d->applied_count, 1, 'a message is applied while the emulator runs');

emulator_stop($epid, $ein);
my $cpu0 = $d->cpu_seconds;
sleep 8;
ok($d->alive, 'raceqd survives the emulator going away');
my $cpu = $d->cpu_seconds - $cpu0;
cmp_ok($cpu, '<', 2, "and does not spin while it is away (${cpu}s of CPU in 8s)");
like($d->log_text, qr/RQ09005: receiving from .* failed/, 'the failure is logged');

($fq, $epid, $ein) = emulator($port);
is($fq->create_queue('outage.fifo'), $q, 'the emulator is back with the same queue');
send_one($fq, $q, 'o-2');
$n = 0;
sleep 0.1 while $d->applied_count < 2 && $n++ < 600;
is($d->applied_count, 2, 'raceqd receives and applies again');
like($d->log_text, qr/RQ09006: receiving from .* works again/, 'the recovery is logged');

is($d->stop('TERM'), 0, 'raceqd stops cleanly');
emulator_stop($epid, $ein);
done_testing;
