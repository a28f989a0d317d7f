package Test::RaceQ::Raceqd;

# fifo mode for Test::RaceQ files: the fauxqs emulator and bin/raceqd as
# services of the harness, sharing the harness's SQLite store.
#
#   use Test::RaceQ;
#   use Test::RaceQ::Raceqd;
#   my $svc = Test::RaceQ::Raceqd->setup(args => ['--apply-delay', '1 200'],
#                                        idle_queue => 1);
#   run_tests();
#
# setup() registers the services and, once they run, sets httpd's
# environment (AWS_ENDPOINT_URL_SQS, AWS_REGION, keys, AWS_FIFO_URL) and the
# placeholders $TEST_RACEQ_QUEUE_URL and, with idle_queue, $TEST_RACEQ_IDLE_URL:
# a second FIFO queue that no daemon reads, so that a test can see whether
# anything was sent to it. env_queue => 0 leaves AWS_FIFO_URL out of httpd's
# environment, so that blocks must name their queue (RaceQQueueURL).
#
# raceqd runs as httpd's User (www-data when the tests run as root), as it
# must in production: SQLite in WAL mode creates its -wal and -shm files
# with the owner of whoever opens the database first, and httpd's children
# could not read a store whose side files belong to root.

use strict;
use warnings;

use HTTP::Tiny;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

use Test::RaceQ;
use Test::RaceQ::Daemon;
use Test::RaceQ::Fauxqs;

sub setup {
    my ($class, %a) = @_;
    my $self = bless { args => $a{args} // [], queue => $a{queue} // 'raceq-fifo.fifo',
                       idle => $a{idle_queue}, daemon_on => $a{daemon} // 1,
                       env_queue => $a{env_queue} // 1 }, $class;

    add_service(name => 'fauxqs', start => sub { $self->fauxqs_start($_[0]) },
                stop => sub { $self->fauxqs_stop });
    add_service(name => 'raceqd', start => sub { $self->daemon_start($_[0]) },
                stop => sub { $self->daemon_stop });
    return $self;
}

sub fauxqs    { $_[0]{fq} }
sub daemon    { $_[0]{d} }
sub queue_url { $_[0]{fq}->queue_url }
sub idle_url  { $_[0]{idle_url} }

sub fauxqs_start {
    my ($self, $ctx) = @_;

    $self->{fq} = Test::RaceQ::Fauxqs->start(queue => $self->{queue});
    $self->{idle_url} = $self->{fq}->create_queue('raceq-idle.fifo') if $self->{idle};
    my %env = %{ $self->{fq}->env };
    delete $env{AWS_FIFO_URL} unless $self->{env_queue};
    httpd_env(%env);
    config_var(TEST_RACEQ_QUEUE_URL => $self->queue_url);
    config_var(TEST_RACEQ_IDLE_URL => $self->{idle_url}) if $self->{idle};
    config_var(TEST_RACEQ_SQS_ENDPOINT => $self->{fq}->endpoint);
    $self->{tmp} = $ctx->{tmp};
}

sub fauxqs_stop {
    my ($self) = @_;
    $self->{fq}->stop if $self->{fq};
}

# Stops the emulator: its queues and messages are gone.
sub emulator_stop { $_[0]{fq}->stop }

# Starts the emulator again on the same port and makes the same queues, so
# that the queue URLs httpd and raceqd hold work again.
sub emulator_restart {
    my ($self) = @_;
    my $port = $self->{fq}->port;
    my $root = Test::RaceQ::Daemon->root;

    pipe(my $child_in, my $to_child) or die "pipe: $!";
    pipe(my $from_child, my $child_out) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        close $to_child;
        close $from_child;
        open(STDIN, '<&', $child_in) or die "stdin: $!";
        open(STDOUT, '>&', $child_out) or die "stdout: $!";
        exec('node', "$root/tests/fauxqs-server.mjs", $port) or POSIX::_exit(127);
    }
    close $child_in;
    close $child_out;
    $to_child->autoflush(1);
    my $line = <$from_child> // '';
    close $from_child;
    die "the emulator did not start again on port $port\n" unless $line =~ /^\d+$/;

    my $fq = bless { port => $port, region => $self->{fq}->region, pid => $pid,
                     stdin => $to_child, http => HTTP::Tiny->new(timeout => 30) },
                   'Test::RaceQ::Fauxqs';
    $fq->{queue_url} = $fq->create_queue($self->{queue});
    $fq->create_queue('raceq-idle.fifo') if $self->{idle};
    $self->{fq} = $fq;
}

sub run_as {
    return () unless $> == 0;
    return ('setpriv', '--reuid=www-data', '--regid=www-data', '--init-groups', '--');
}

sub daemon_start {
    my ($self, $ctx) = @_;
    return unless $self->{daemon_on};
    $self->{d} = Test::RaceQ::Daemon->start(
        dir => $self->{tmp} // $ctx->{tmp}, env => $self->{fq}->env, wrap => [run_as()],
        args => ['--log-level', 'info', @{ $self->{args} }]);
}

sub daemon_stop {
    my ($self) = @_;
    $self->{d}->stop if $self->{d};
}

# Messages in the queue (visible and in flight); the idle queue with 'idle'.
sub queue_depth {
    my ($self, $which) = @_;
    my $url = ($which // '') eq 'idle' ? $self->{idle_url} : $self->queue_url;
    my $a = $self->{fq}->call('GetQueueAttributes', { QueueUrl => $url,
        AttributeNames => ['ApproximateNumberOfMessages',
                           'ApproximateNumberOfMessagesNotVisible'] })->{Attributes};
    return $a->{ApproximateNumberOfMessages} + $a->{ApproximateNumberOfMessagesNotVisible};
}

# Waits, within a bound, until $cond->() is true; returns its last value.
sub poll_until {
    my ($cond, $seconds) = @_;
    my $v;
    for (1 .. ($seconds // 30) * 10) {
        $v = $cond->();
        return $v if $v;
        sleep 0.1;
    }
    return $v;
}

1;
