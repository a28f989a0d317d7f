#!/usr/bin/perl
# A failed apply stops its user's group and nothing else. The failure is a
# real one from the store: a trigger aborts the history insert of every user
# listed in a table of the test's, so that a user's writes are refused and
# accepted again by changing rows, without changing the schema under the
# running daemon. (A lock held from another process only delays the applies:
# the store waits up to its busy timeout, 10 s, before it gives up.)
#
# Against the emulator: the failed message comes back after its backoff and
# the user's writes are then applied once each, in order, while the other
# users went on. Against the batch stand-in (real SQS may hand out several
# messages of one group at once; the emulator never does): the group's later
# messages in hand are not applied but handed back, visible at once.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $root = Test::RaceQ::Daemon->root;
my $tmp = tempdir('raceqd-fail-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $db = "$tmp/toy.db";

sub wait_for {
    my ($cond, $seconds) = @_;
    for (1 .. $seconds * 10) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return $cond->();
}

sub sql {
    my ($stmt) = @_;
    my $out = `sqlite3 -cmd '.timeout 5000' '$db' "$stmt" 2>&1`;
    die "sqlite3: $out" if $?;
    return $out;
}

sub fail_user { sql("INSERT INTO refused (user_id) VALUES ('$_[0]')") }
sub heal_user { sql("DELETE FROM refused WHERE user_id = '$_[0]'") }

sub ids { [map { $_->[0] } @{ $_[0] }] }

# ---- against the emulator ----
my $fq = Test::RaceQ::Fauxqs->start(queue => 'fail.fifo');
my $q = $fq->queue_url;
my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => [
    '--queue-url', $q, '--workers', 4, '--apply-delay', '20 20', '--log-level', 'debug']);
# raceqd made the store; the trigger goes in while no daemon has it open.
is($d->stop('TERM'), 0, 'raceqd made the store');
sql('CREATE TABLE refused (user_id TEXT PRIMARY KEY)');
sql('CREATE TRIGGER refuse BEFORE INSERT ON history '
    . 'WHEN NEW.user_id IN (SELECT user_id FROM refused) '
    . "BEGIN SELECT RAISE(ABORT, 'writes of this user are refused for the test'); END");
fail_user('victim');
$d->restart;

my (@entries, %want);
for my $i (1 .. 4) {
    for my $u ('victim', 'fo-1', 'fo-2', 'fo-3') {
        my $req = "$u-$i";
        push @entries, { Id => "e" . scalar(@entries), MessageGroupId => $u,
                         MessageDeduplicationId => $req,
                         MessageBody => qq({"req_id":"$req","user_id":"$u"}) };
        push @{ $want{$u} }, $req;
    }
}
$fq->call('SendMessageBatch', { QueueUrl => $q, Entries => [@entries[0 .. 9]] });
$fq->call('SendMessageBatch', { QueueUrl => $q, Entries => [@entries[10 .. $#entries]] });

ok(wait_for(sub { $d->log_text =~ /RQ09002: applying req_id victim-1 of user victim failed/ },
            30), 'the failed apply is logged (RQ09002)');
my $log = $d->log_text;
like($log, qr/RQ02001: .*writes of this user are refused for the test/,
     'with the store\'s reason (RQ02001)') or diag(grep { /victim-1|RQ020/ } split /^/, $log);
like($log, qr/RQ09002: applying req_id victim-1 .* later messages wait, it comes again in 2 s/,
     'and the hand-back of the failed message, with its backoff');
ok(wait_for(sub { !grep { $d->writes($_) != 4 } qw(fo-1 fo-2 fo-3) }, 30),
   'the other users go on while the group is stopped');
for my $u (qw(fo-1 fo-2 fo-3)) {
    is_deeply(ids($d->history($u)), $want{$u}, "$u: applied in order");
}
is($d->writes('victim'), 0, 'nothing of the failing user is written');
unlike($d->log_text, qr/finding-victim-[2-4]___/,
       'the user\'s later messages are not applied before the failed one');

heal_user('victim');
ok(wait_for(sub { $d->writes('victim') == 4 }, 60), 'once the store works again');
is_deeply(ids($d->history('victim')), $want{victim},
          'victim: every write applied once, in order');
$log = $d->log_text;
like($log, qr/RQ09004: received message \S+ group victim seq \S+ \(receive 2\)/,
     'the failed message came back from the queue');
is($d->stop('TERM'), 0, 'raceqd stops with 0');
$log = $d->log_text;
# The second run's counts: the last RQ09011 line.
my ($already, $failed) =
    ($log =~ /.*RQ09011: stopped: .*?, (\d+) already applied, .*?, (\d+) failed/s);
cmp_ok($failed // 0, '>=', 1, 'the stop counts the failure');
is($already, 0, 'nothing was applied twice');
my $a = $fq->call('GetQueueAttributes', { QueueUrl => $q, AttributeNames => ['All'] });
is($a->{Attributes}{ApproximateNumberOfMessages}
   + $a->{Attributes}{ApproximateNumberOfMessagesNotVisible}, 0, 'the queue is empty');
$fq->stop;

# ---- several messages of the failing group in one batch ----
my @plan = qw(bvictim bother bvictim bother bvictim);
my (@msgs, %bwant);
for my $i (0 .. $#plan) {
    push @msgs, { body => qq({"req_id":"b-$i","user_id":"$plan[$i]"}), group => $plan[$i],
                  dedup => "b-$i" };
    push @{ $bwant{ $plan[$i] } }, "b-$i";
}
open(my $fh, '>', "$tmp/msgs.json") or die;
print $fh encode_json(\@msgs);
close $fh;
pipe(my $child_in, my $to_child);
pipe(my $from_child, my $child_out);
my $pid = fork() // die;
if ($pid == 0) {
    close $to_child;
    close $from_child;
    open(STDIN, '<&', $child_in);
    open(STDOUT, '>&', $child_out);
    exec('node', "$root/tests/sqs-batch-standin.mjs", "$tmp/msgs.json") or die;
}
close $child_in;
close $child_out;
chomp(my $port = <$from_child> // '');
like($port, qr/^\d+$/, 'the batch stand-in listens');
my $endpoint = "http://127.0.0.1:$port";

fail_user('bvictim');
my $tmp2 = tempdir('raceqd-fail2-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$d = Test::RaceQ::Daemon->start(dir => $tmp2, db => $db, env => {
        AWS_ACCESS_KEY_ID => 'AKIDRACEQTEST0000000', AWS_SECRET_ACCESS_KEY => 'secret',
    }, args => ['--queue-url', "$endpoint/000000000000/batch.fifo", '--endpoint', $endpoint,
                '--region', 'us-east-1', '--workers', 4, '--apply-delay', '20 20',
                '--log-level', 'info']);
my $vis = sub {
    my $l = decode_json(HTTP::Tiny->new->get("$endpoint/log")->{content});
    return { map { ($_->{receipt} => $_->{to}) } grep { $_->{action} eq 'Visibility' } @$l };
};
ok(wait_for(sub { keys %{ $vis->() } >= 3 && $d->writes('bother') == 2 }, 30),
   'the batch is processed');
is_deeply($vis->(), { 'rh-0' => 2, 'rh-2' => 0, 'rh-4' => 0 },
          'the failed message is handed back with its backoff, the later ones visible at once');
is_deeply(ids($d->history('bother')), $bwant{bother}, 'the other group is applied in order');
is($d->writes('bvictim'), 0, 'nothing of the failing group is written');
is($d->stop('TERM'), 0, 'raceqd stops with 0');
$log = $d->log_text;
like($log, qr/RQ09002: applying req_id b-0 of user bvictim failed/, 'the failure is logged');
unlike($log, qr/finding-b-[24]___/, 'the group\'s later messages were not applied');
my $counts = 'RQ09011: stopped: 5 received, 2 applied, 0 already applied, 2 deleted, '
    . '1 failed, 2 handed back';
like($log, qr/\Q$counts\E/,
     'counts: 2 applied and deleted, 1 failed, 2 handed back unapplied');
my $l = decode_json(HTTP::Tiny->new->get("$endpoint/log")->{content});
is_deeply([sort map { $_->{receipt} } grep { $_->{action} eq 'Delete' } @$l], ['rh-1', 'rh-3'],
          'only the other group\'s messages are deleted');
close $to_child;
waitpid($pid, 0);
done_testing;
