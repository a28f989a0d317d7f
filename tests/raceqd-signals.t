#!/usr/bin/perl
# raceqd's process behaviour against the fauxqs emulator: SIGTERM while
# applies are in flight (they finish and are deleted, the rest waits in the
# queue and is applied once after a restart), SIGHUP reopens a renamed log
# file, an apply longer than the visibility timeout is not redelivered, and
# the socket lets httpd's User connect and nobody else.
use strict;
use warnings;
use lib 'tests/lib';

use File::Temp qw(tempdir);
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);
use Test::More;
use Time::HiRes qw(sleep);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $root = Test::RaceQ::Daemon->root;
my $fq = Test::RaceQ::Fauxqs->start;

sub new_dir {
    my ($name) = @_;
    return tempdir("raceqd-$name-XXXXXX", TMPDIR => 1, CLEANUP => 1);
}

sub send_batch {
    my ($q, @msgs) = @_;
    while (my @chunk = splice(@msgs, 0, 10)) {
        my $i = 0;
        my @entries = map {
            my ($req, $user) = @$_;
            { Id => 'e' . $i++, MessageBody => qq({"req_id":"$req","user_id":"$user"}),
              MessageGroupId => $user, MessageDeduplicationId => $req }
        } @chunk;
        my $r = $fq->call('SendMessageBatch', { QueueUrl => $q, Entries => \@entries });
        die "send failed\n" unless @{ $r->{Successful} } == @chunk;
    }
}

sub depth {
    my ($q) = @_;
    my $a = $fq->call('GetQueueAttributes', { QueueUrl => $q, AttributeNames => [
        'ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] })->{Attributes};
    return ($a->{ApproximateNumberOfMessages}, $a->{ApproximateNumberOfMessagesNotVisible});
}

sub wait_for {
    my ($cond, $seconds) = @_;
    for (1 .. $seconds * 10) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return $cond->();
}

sub log_ids {
    my ($text, $what) = @_;
    my %ids;
    $ids{$1} = 1 while $text =~ /\b$what-(\S+?)___/g;
    return \%ids;
}

# The counts raceqd logs when it stops (RQ09011).
sub stop_counts {
    my ($text) = @_;
    my @all;
    my $re = 'RQ09011: stopped: (\d+) received, (\d+) applied, (\d+) already applied, '
        . '(\d+) deleted, (\d+) failed, (\d+) handed back';
    while ($text =~ /$re/g) {
        push @all, { received => $1, applied => $2, already => $3, deleted => $4,
                     failed => $5, released => $6 };
    }
    return \@all;
}

# ---- SIGTERM while applies are in flight ----
{
    my $tmp = new_dir('term');
    my $q = $fq->create_queue('term.fifo');
    my ($USERS, $PER) = (6, 5);
    my (@msgs, %want);
    for my $i (1 .. $PER) {
        for my $u (1 .. $USERS) {
            push @msgs, ["t-$u-$i", "tu-$u"];
            push @{ $want{"tu-$u"} }, "t-$u-$i";
        }
    }
    send_batch($q, @msgs);
    my $total = @msgs;

    my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => [
        '--queue-url', $q, '--workers', 4, '--apply-delay', '400 400', '--log-level', 'info']);
    # A waiter for each user's first and last message.
    my %waiter = map {
        my $c = $d->client;
        $c->register($_->[0], $_->[1], qq({"req_id":"$_->[0]","user_id":"$_->[1]"}));
        ($_->[0] => $c)
    } grep { $_->[0] =~ /^t-\d+-(1|$PER)$/ } @msgs;

    ok(wait_for(sub { $d->log_text =~ /finding-/ && $d->applied_count >= 2 }, 30),
       'applies are running');
    my $at_term = $d->applied_count;
    my $status = $d->stop('TERM');
    my $log = $d->log_text;
    is($status, 0, 'SIGTERM while busy: exit status 0');
    like($log, qr/RQ10002: SIGTERM received: finishing the messages in hand/,
         'the signal is logged');
    my $applied = $d->applied_count;
    cmp_ok($applied, '<', $total, "stopped before the end ($at_term applied at SIGTERM, "
           . "$applied at exit, of $total)");
    my ($found, $written) = (log_ids($log, 'finding'), log_ids($log, 'writing'));
    is_deeply([sort keys %$written], [sort keys %$found],
              'every apply that started before the stop finished');
    is(scalar keys %$written, $applied, 'and each is in the store');
    my $c = stop_counts($log)->[0] // {};
    is_deeply([$c->{received}, $c->{deleted}, $c->{failed}, $c->{released}],
              [$applied, $applied, 0, 0],
              'everything received was applied and deleted, nothing handed back')
        or diag $log;
    my ($visible, $in_flight) = depth($q);
    is($in_flight, 0, 'no message left in flight');
    is($visible, $total - $applied, 'the messages not applied wait in the queue');

    my ($woken, $closed) = (0, 0);
    for my $req (sort keys %waiter) {
        my $m = $waiter{$req}->answer(10);
        if ($written->{$req}) {
            $woken++ if $m && $m->{type} eq 'DONE' && $m->{req_id} eq $req;
        }
        else {
            $closed++ unless $m;
        }
    }
    is($woken + $closed, scalar keys %waiter,
       "waiters of applied messages woken ($woken), the others' connections closed ($closed)");
    $_->close for values %waiter;

    $d->restart;
    ok(wait_for(sub { $d->applied_count >= $total }, 60), 'after a restart the rest is applied');
    ok(wait_for(sub { my ($v, $f) = depth($q); $v + $f == 0 }, 30), 'the queue drains');
    is($d->applied_count, $total, 'every message applied exactly once');
    for my $u (sort keys %want) {
        is_deeply([map { $_->[0] } @{ $d->history($u) }], $want{$u}, "$u: in send order");
        is($d->writes($u), $PER, "$u: $PER writes");
    }
    is($d->stop('TERM'), 0, 'the restarted daemon stops with 0');
    my $all = stop_counts($d->log_text);
    is(scalar @$all, 2, 'both runs logged their counts');
    is($all->[1]{already}, 0, 'the second run applied nothing twice');
}

# ---- SIGHUP reopens the log file ----
{
    my $tmp = new_dir('hup');
    my $q = $fq->create_queue('hup.fifo');
    my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => [
        '--queue-url', $q, '--apply-delay', '0 0', '--log-level', 'info']);
    send_batch($q, ['h-1', 'hu']);
    ok(wait_for(sub { $d->log_text =~ /writing-h-1___hu/ }, 30), 'a write is logged');
    my $log = $d->log_path;
    rename($log, "$log.1") or die "rename: $!";
    kill 'HUP', $d->pid;
    ok(wait_for(sub { -s $log }, 30), 'after SIGHUP the log file is made again');
    send_batch($q, ['h-2', 'hu']);
    ok(wait_for(sub { $d->log_text =~ /writing-h-2___hu/ }, 30),
       'new lines go to the file at the original path');
    like($d->log_text, qr/RQ10001: log file reopened/, 'the reopening is logged there');
    unlike($d->log_text, qr/h-1___/, 'the lines before it are not in the new file');
    open(my $fh, '<', "$log.1") or die;
    my $old = do { local $/; <$fh> };
    like($old, qr/writing-h-1___hu/, 'the renamed file keeps the earlier lines');
    unlike($old, qr/h-2___|RQ10001/, 'and gets nothing after the signal');
    ok($d->alive, 'raceqd still runs');
    is($d->stop('TERM'), 0, 'and stops with 0');
}

# ---- an apply longer than the visibility timeout ----
{
    my $tmp = new_dir('vis');
    my $q = $fq->create_queue('vis.fifo');
    my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env, args => [
        '--queue-url', $q, '--visibility-timeout', 3, '--apply-delay', '5000 5000',
        '--log-level', 'debug']);
    send_batch($q, ['v-1', 'vu']);
    ok(wait_for(sub { $d->applied_count >= 1 }, 30), 'the long apply finishes');
    # Give a redelivery, had there been one, the time to reach raceqd.
    sleep 2;
    my $status = $d->stop('TERM');
    my $log = $d->log_text;
    is($status, 0, 'raceqd stops with 0');
    my @receives = $log =~ /RQ09004: received message \S+ group vu seq \S+ \(receive (\d+)\)/g;
    is_deeply(\@receives, [1], 'the message was received once, not redelivered')
        or diag $log;
    my $c = stop_counts($log)->[0] // {};
    is_deeply([@$c{qw(received applied already deleted)}], [1, 1, 0, 1],
              'applied once, nothing found already applied, deleted');
    is(scalar @{ $d->history('vu') }, 1, 'one history entry');
    unlike($log, qr/RQ09009/, 'no failed extension');
    my ($v, $f) = depth($q);
    is($v + $f, 0, 'the queue is empty');
}

# ---- the socket: httpd's User can connect, nobody else ----
SKIP: {
    skip 'needs root and the users www-data and nobody', 9
        unless $> == 0 && getpwnam('www-data') && getpwnam('nobody') && getgrnam('nogroup');
    my (undef, undef, $wuid, $wgid) = getpwnam('www-data');
    my $q = $fq->create_queue('sock.fifo');

    # Connects as the given user; returns 'ok' or the error's name.
    my $try = sub {
        my ($sock, @who) = @_;
        my $code = 'use Socket; socket(my $s, AF_UNIX, SOCK_STREAM, 0) or die;'
            . ' print connect($s, pack_sockaddr_un($ARGV[0])) ? "ok" : ($!{EACCES} ? "EACCES"'
            . ' : "errno " . ($!+0))';
        my $out = `setpriv @who -- perl -e '$code' '$sock' 2>&1`;
        return $out;
    };
    my @www = ('--reuid=www-data', '--regid=www-data', '--init-groups');
    my @nobody = ('--reuid=nobody', '--regid=nogroup', '--clear-groups');

    # raceqd as www-data, in a directory everyone may enter.
    my $tmp = new_dir('sock');
    chmod 0755, $tmp;
    chown $wuid, $wgid, $tmp;
    my $d = Test::RaceQ::Daemon->start(dir => $tmp, env => $fq->env,
        wrap => ['setpriv', @www, '--'], args => ['--queue-url', $q, '--apply-delay', '0 0']);
    my @st = stat $d->socket_path;
    is_deeply([$st[4], $st[5], $st[2] & 07777], [$wuid, $wgid, 0660],
              'raceqd as www-data: the socket is www-data:www-data 0660');
    is($try->($d->socket_path, @www), 'ok', 'www-data can connect');
    is($try->($d->socket_path, @nobody), 'EACCES', 'nobody gets EACCES');
    ok(IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $d->socket_path), 'root can connect');
    is($d->stop('TERM'), 0, 'raceqd stops');

    # raceqd as root: the socket's group is www-data.
    my $tmp2 = new_dir('sockroot');
    chmod 0755, $tmp2;
    $d = Test::RaceQ::Daemon->start(dir => $tmp2, env => $fq->env,
        args => ['--queue-url', $q, '--apply-delay', '0 0']);
    @st = stat $d->socket_path;
    is_deeply([$st[4], $st[5], $st[2] & 07777], [0, $wgid, 0660],
              'raceqd as root: the socket is root:www-data 0660');
    is($try->($d->socket_path, @www), 'ok', 'www-data can connect');
    is($try->($d->socket_path, @nobody), 'EACCES', 'nobody gets EACCES');
    is($d->stop('TERM'), 0, 'raceqd stops');
}

$fq->stop;
done_testing;
