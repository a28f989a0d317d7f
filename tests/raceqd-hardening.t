#!/usr/bin/perl
# raceqd under conditions an operator meets: bad option values, duplicates
# of requests applied before a restart, running out of file descriptors,
# idle and surplus connections, a log that cannot be reopened, detaching
# with relative paths, short polls and a second stop signal.
use strict;
use warnings;
use lib 'tests/lib';

use Cwd qw(getcwd);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

my $root = Test::RaceQ::Daemon->root;
my $tmp = tempdir('raceqd-hard-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $raceqd = "$root/bin/raceqd";

# ---- option values that cannot work are refused with status 2 ----
for my $case (
    [['--max-in-hand', 5, '--max-messages', 10],
     qr/--max-in-hand \(5\) must be at least --max-messages \(10\)/,
     'max-in-hand below max-messages'],
    [['--remember', 0], qr/--remember must be at least 300 s/, 'remember 0'],
    [['--remember', 299], qr/--remember must be at least 300 s .*deduplication/,
     'remember below 300'],
    [['--workers', 0], qr/workers must be 1 to 1024/, 'workers 0'],
    [['--visibility-timeout', 2], qr/visibility timeout must be 3/, 'visibility timeout 2'],
) {
    my ($args, $re, $name) = @$case;
    my $out = `$raceqd --foreground --socket $tmp/opt.sock @$args 2>&1`;
    is($? >> 8, 2, "$name: exit status 2");
    like($out, $re, "$name: says why");
}

my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceqd-hard.fifo');
my $q = $fq->queue_url;

sub slurp {
    my ($path) = @_;
    open(my $fh, '<', $path) or return '';
    local $/;
    return <$fh>;
}

sub wait_for {
    my ($cond, $limit) = @_;
    for (1 .. ($limit // 200)) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return 0;
}

# ---- a req_id applied before a restart: found by req_id, body hash compared ----
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
                                       args => ['--apply-delay', '1 5']);
    my $body = '{"req_id":"rs-1","user_id":"rs-a","n":1}';
    my $c = $d->client;
    is($c->register('rs-1', 'rs-a', $body), 'WAITING', 'restart: first registration waits');
    my $seq = $fq->call('SendMessage', { QueueUrl => $q, MessageBody => $body,
        MessageGroupId => 'rs-a', MessageDeduplicationId => 'rs-1' })->{SequenceNumber};
    $c->sent($seq);
    my $m = $c->answer(60);
    is($m && $m->{type}, 'DONE', 'and is applied');
    $c->close;
    is($d->stop('TERM'), 0, 'raceqd stopped');
    $d->restart;

    $c = $d->client;
    is($c->register('rs-1', 'rs-b', '{"req_id":"rs-1","user_id":"rs-b","n":1}'), 'CONFLICT',
       'after a restart, the same req_id for another user conflicts at once');
    $c->close;
    $c = $d->client;
    is($c->register('rs-1', 'rs-a', '{"req_id":"rs-1","user_id":"rs-a","n":2}'), 'CONFLICT',
       'the same req_id and user with another body conflicts');
    $c->close;
    $c = $d->client;
    is($c->register('rs-1', 'rs-a', $body), 'DONE', 'the same body is answered at once');
    is($c->{first}{seq}, $seq, 'with the sequence number it was applied with');
    $c->close;
    is(scalar @{ $d->history('rs-a') }, 1, 'applied once');
    is(scalar @{ $d->history('rs-b') }, 0, 'nothing for the other user');
    is($d->stop('TERM'), 0, 'stops with status 0');
}

# ---- a failed delete is logged with SQS's reason ----
{
    my $dir = tempdir(DIR => $tmp);
    my $dq = $fq->call('CreateQueue', { QueueName => 'raceqd-del.fifo',
        Attributes => { FifoQueue => 'true' } })->{QueueUrl};
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
        args => ['--queue-url', $dq, '--apply-delay', '1500 1500', '--log-level', 'info']);
    my $body = '{"req_id":"del-1","user_id":"del"}';
    my $c = $d->client;
    $c->register('del-1', 'del', $body);
    my $seq = $fq->call('SendMessage', { QueueUrl => $dq, MessageBody => $body,
        MessageGroupId => 'del', MessageDeduplicationId => 'del-1' })->{SequenceNumber};
    $c->sent($seq);
    ok(wait_for(sub { $d->log_text =~ /finding-del-1___del/ }, 400), 'delete: applying');
    $fq->call('DeleteQueue', { QueueUrl => $dq });    # the delete after apply fails
    my $m = $c->answer(30);
    is($m && $m->{type}, 'DONE', 'the waiter is answered although the delete failed');
    ok(wait_for(sub { $d->log_text =~ /RQ09007/ }), 'the failed delete is logged');
    like($d->log_text, qr/RQ09007: deleting message \S+ failed \([^)]*(?i:not exist)/,
         'with SQS\'s reason');
    $d->stop('TERM');
}

# ---- out of file descriptors: no busy loop, serves again afterwards ----
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
                                       wrap => ['prlimit', '--nofile=64']);
    my @conns;
    for (1 .. 100) {
        my $s = IO::Socket::UNIX->new(Peer => $d->socket_path) or last;
        push @conns, $s;
    }
    is(scalar @conns, 100, 'fd limit 64: 100 connections opened (the backlog holds the rest)');
    sleep 1;
    my $cpu0 = $d->cpu_seconds;
    sleep 3;
    my $cpu1 = $d->cpu_seconds;
    # A spinning accept loop uses about one CPU second per second.
    cmp_ok($cpu1 - $cpu0, '<', 1.0, sprintf('no busy loop while out of descriptors '
           . '(%.2f s of CPU in 3 s)', $cpu1 - $cpu0));
    like($d->log_text, qr/RQ08007: wait channel: accepting connections failed/,
         'the accept failures are logged');
    my $lines = () = $d->log_text =~ /RQ08007/g;
    cmp_ok($lines, '<=', 2, "and rate-limited ($lines lines)");
    $_->close for @conns;
    my $ok = wait_for(sub {
        my $c = eval { Test::RaceQ::Daemon::Client->new($d->socket_path) } or return 0;
        my $t = $c->register('fd-1', 'fd', '{"req_id":"fd-1","user_id":"fd"}');
        $c->close;
        return $t eq 'WAITING';
    }, 200);
    ok($ok, 'serves again once the connections are closed');
    ok($d->alive, 'and still runs');
    is($d->stop('TERM'), 0, 'stops with status 0');
}

# ---- idle connections are closed; the connection cap is an option ----
like(scalar `$raceqd --help`, qr/--max-connections .*\n.*--register-timeout /,
     '--help lists --max-connections and --register-timeout');
sub closed_by_peer {
    my ($s, $limit) = @_;
    my $sel = IO::Select->new($s);
    my $until = time + $limit;
    while (time < $until) {
        next unless $sel->can_read($until - time);
        my $n = $s->sysread(my $buf, 4096);
        return 1 if defined $n && $n == 0;
        return 1 if !defined $n;
    }
    return 0;
}
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
        args => ['--register-timeout', 1, '--max-connections', 3, '--log-level', 'info']);
    my $idle = IO::Socket::UNIX->new(Peer => $d->socket_path) or die "connect: $!";
    ok(closed_by_peer($idle, 10), 'a connection without REGISTER is closed after the timeout');
    like($d->log_text, qr/RQ08008: .*closed 1 connection/, 'and that is logged');

    my @w = map { $d->client } 1 .. 3;
    my $n = 0;
    $n++ for grep { $w[$_]->register("cap-$_", 'cap', qq({"n":$_})) eq 'WAITING' } 0 .. 2;
    is($n, 3, 'three registered waiters, the cap');
    my @over = map { IO::Socket::UNIX->new(Peer => $d->socket_path) } 1 .. 20;
    my $closed = grep { $_ && closed_by_peer($_, 5) } @over;
    is($closed, 20, 'connections over --max-connections are closed at once');
    my $lines = () = $d->log_text =~ /RQ08006/g;
    ok($lines >= 1 && $lines <= 3, "refusals are logged, rate-limited ($lines lines)");
    like($d->log_text, qr/RQ08006: .*refused \d+ since the last report/, 'with a count');
    sleep 2;
    ok(!closed_by_peer($w[0]{s}, 0.5), 'registered waiters are not closed by the timeout');
    $_->close for @w, grep { $_ } @over;
    is($d->stop('TERM'), 0, 'stops with status 0');
}

# ---- a second SIGTERM stops at once, abandoning what is in hand ----
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
        args => ['--apply-delay', '30000 30000', '--log-level', 'info']);
    my $body = '{"req_id":"term-1","user_id":"term"}';
    $fq->call('SendMessage', { QueueUrl => $q, MessageBody => $body,
        MessageGroupId => 'term', MessageDeduplicationId => 'term-1' });
    ok(wait_for(sub { $d->log_text =~ /finding-term-1___term/ }, 400),
       'second signal: a 30 s apply is under way');
    kill('TERM', $d->pid);
    ok(wait_for(sub { $d->log_text =~ /RQ10002: SIGTERM received/ }), 'first SIGTERM: stopping');
    sleep 0.5;
    ok($d->alive, 'and still finishing the apply');
    my $status = $d->stop('TERM', 200);
    isnt($status, -1, 'a second SIGTERM ends it at once');
    is($status >> 8, 1, 'with status 1');
    like($d->log_text, qr/RQ10005: second SIGTERM: stopping at once; 1 message\(s\) in hand/,
         'saying how many messages were in hand');
    like($d->log_text, qr/RQ10005: .* abandoned .*SQS delivers them again .*visibility timeout/,
         'that they are abandoned and that SQS delivers them again');
    ok(!-e $d->socket_path, 'the socket is removed');
    ok(!-e "$dir/raceqd.pid", 'the pid file is removed');
}

# ---- SIGHUP with a log that cannot be reopened: log on to the old file ----
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env);
    my $log = $d->log_path;
    rename($log, "$log.1") or die "rename: $!";
    mkdir($log) or die "mkdir: $!";    # a directory cannot be opened as the log
    kill('HUP', $d->pid);
    ok(wait_for(sub { slurp("$log.1") =~ /RQ10004: SIGHUP: cannot reopen the log file/ }),
       'SIGHUP, log not reopenable: a warning in the old log file');
    ok($d->alive, 'and raceqd still runs');
    my $c = $d->client;
    is($c->register('hup-1', 'hup', '{"req_id":"hup-1","user_id":"hup"}'), 'WAITING',
       'and serves its wait channel');
    $c->close;
    rmdir($log) or die "rmdir: $!";
    kill('HUP', $d->pid);
    ok(wait_for(sub { slurp($log) =~ /RQ10001: log file reopened/ }),
       'a later SIGHUP reopens the log once it can be');
    is($d->stop('TERM'), 0, 'and SIGTERM stops it with status 0');
}

# ---- detached, with relative paths: they name files where it was started ----
{
    my $dir = tempdir(DIR => $tmp);
    my $cwd = getcwd();
    chdir($dir) or die "chdir: $!";
    {
        my %env = %{ $fq->env };
        local @ENV{keys %env} = values %env;
        system($raceqd, '--socket', 'rel.sock', '--log-file', 'rel.log', '--pid-file',
               'rel.pid', '--store', 'sqlite3 rel.db', '--wait-seconds', 1);
    }
    chdir($cwd) or die "chdir: $!";
    is($? >> 8, 0, 'detached: the starting process exits 0');
    ok(wait_for(sub { slurp("$dir/rel.pid") =~ /^\d+$/m }), 'the pid file is written');
    my ($pid) = slurp("$dir/rel.pid") =~ /^(\d+)/m;
    ok(wait_for(sub { -S "$dir/rel.sock" }), 'the socket is where it was started');
    ok(wait_for(sub { slurp("$dir/rel.log") =~ /RQ09010: receiving from/ }),
       'the log file is written');
    ok(-f "$dir/rel.db", 'the store is where it was started');
    my $c = eval { Test::RaceQ::Daemon::Client->new("$dir/rel.sock") };
    is($c && $c->register('rel-1', 'rel', '{"req_id":"rel-1","user_id":"rel"}'), 'WAITING',
       'the detached daemon serves its wait channel');
    $c->close if $c;
    kill('TERM', $pid) if $pid;
    ok(wait_for(sub { !kill(0, $pid) }, 600), 'SIGTERM stops it') if $pid;
    ok(!-e "$dir/rel.sock", 'the socket file is removed');
    ok(!-e "$dir/rel.pid", 'the pid file is removed');
}

# ---- --wait-seconds 0: an idle queue is not asked in a tight loop ----
{
    my $dir = tempdir(DIR => $tmp);
    my $d = Test::RaceQ::Daemon->start(dir => $dir, env => $fq->env,
                                       args => ['--wait-seconds', 0, '--log-level', 'trace1']);
    sleep 3;
    my $calls = () = $d->log_text =~ /^\[[^\]]+\] \[raceq:trace1\] > ReceiveMessage/mg;
    is($d->stop('TERM'), 0, 'wait-seconds 0: stops with status 0');
    ok($calls >= 1, "wait-seconds 0: the queue is polled ($calls receives)");
    # About one a second once paused; thousands a second without the pause.
    cmp_ok($calls, '<', 30, 'wait-seconds 0: empty receives are paced');
}

$fq->stop;
done_testing;
