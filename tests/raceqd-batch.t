#!/usr/bin/perl
# A ReceiveMessage batch holding several messages of one group (served by a
# JSON-protocol stand-in: the emulator never returns one): each group is
# applied in the batch's order, one message at a time, then deleted.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;

my $root = Test::RaceQ::Daemon->root;
my $tmp = tempdir('raceqd-batch-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# 10 messages: 4 of bu-1, 4 of bu-2, 2 of bu-3, interleaved.
my @plan = qw(bu-1 bu-2 bu-1 bu-3 bu-2 bu-1 bu-2 bu-3 bu-1 bu-2);
my (@msgs, %want);
for my $i (0 .. $#plan) {
    my ($u, $req) = ($plan[$i], "b-$i");
    push @msgs, { body => qq({"req_id":"$req","user_id":"$u"}), group => $u, dedup => $req };
    push @{ $want{$u} }, $req;
}
open(my $fh, '>', "$tmp/msgs.json");
print $fh encode_json(\@msgs);
close $fh;

pipe(my $child_in, my $to_child);
pipe(my $from_child, my $child_out);
my $pid = fork() // die;
if ($pid == 0) {
    close $to_child; close $from_child;
    open(STDIN, '<&', $child_in); open(STDOUT, '>&', $child_out);
    exec('node', "$root/tests/sqs-batch-standin.mjs", "$tmp/msgs.json") or die;
}
close $child_in; close $child_out;
chomp(my $port = <$from_child> // '');
like($port, qr/^\d+$/, 'the stand-in listens');
my $endpoint = "http://127.0.0.1:$port";

my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => {
        AWS_ACCESS_KEY_ID => 'AKIDRACEQTEST0000000', AWS_SECRET_ACCESS_KEY => 'secret',
    }, args => ['--queue-url', "$endpoint/000000000000/batch.fifo", '--endpoint', $endpoint,
                '--region', 'us-east-1', '--workers', 4, '--apply-delay', '20 40']);

my $n = 0;
sleep 0.1 while $d->applied_count < @msgs && $n++ < 600;
is($d->applied_count, scalar @msgs, 'every message of the batch applied');
for my $u (sort keys %want) {
    my $h = $d->history($u);
    is_deeply([map { $_->[0] } @$h], $want{$u}, "$u: applied in the batch's order");
    my $overlap = grep { $h->[$_][3] > $h->[$_ + 1][2] } 0 .. $#$h - 1;
    is($overlap, 0, "$u: one at a time (each apply started after the previous finished)");
}
is($d->stop('TERM'), 0, 'raceqd stops');

my $log = decode_json(HTTP::Tiny->new->get("$endpoint/log")->{content});
my @deleted = map { $_->{receipt} } grep { $_->{action} eq 'Delete' } @$log;
is(scalar @deleted, scalar @msgs, 'every message deleted once');
my %pos = map { ($deleted[$_] => $_) } 0 .. $#deleted;
my $order_ok = 1;
for my $u (keys %want) {
    my @r = map { my $i = $_; "rh-$i" } grep { $plan[$_] eq $u } 0 .. $#plan;
    $order_ok &&= $pos{ $r[$_] } < $pos{ $r[$_ + 1] } for 0 .. $#r - 1;
}
ok($order_ok, 'deleted in each group\'s order');

close $to_child;
waitpid($pid, 0);
done_testing;
