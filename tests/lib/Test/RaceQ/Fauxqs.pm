package Test::RaceQ::Fauxqs;

# Starts the fauxqs SQS emulator (tests/fauxqs-server.mjs) on a free loopback
# port for a test file, creates a FIFO queue on it, and stops it when the
# object goes away.
#
#   my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceq-test.fifo');
#   $fq->endpoint;   # http://127.0.0.1:PORT
#   $fq->queue_url;  # http://sqs.us-east-1.localhost:PORT/000000000000/raceq-test.fifo
#   $fq->env;        # { AWS_ENDPOINT_URL_SQS => ..., AWS_FIFO_URL => ..., credentials }
#   $fq->call('GetQueueAttributes', { QueueUrl => $fq->queue_url, AttributeNames => ['All'] });
#   $fq->stop;

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use HTTP::Tiny;
use IO::Handle;
use JSON::PP;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);

my $TESTS = abs_path(dirname(__FILE__) . '/../../..');

# A Node.js installed by scripts/deps.sh into tests/.node comes first.
$ENV{PATH} = "$TESTS/.node/node_modules/.bin:$ENV{PATH}"
    if -x "$TESTS/.node/node_modules/.bin/node";

sub tests_dir { return $TESTS }

sub start {
    my ($class, %args) = @_;
    my $self = bless {
        region => $args{region} // 'us-east-1',
        http   => HTTP::Tiny->new(timeout => 30, keep_alive => 1),
    }, $class;

    pipe(my $child_in, my $to_child) or die "pipe: $!";
    pipe(my $from_child, my $child_out) or die "pipe: $!";
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        close $to_child;
        close $from_child;
        open(STDIN, '<&', $child_in) or die "stdin: $!";
        open(STDOUT, '>&', $child_out) or die "stdout: $!";
        exec('node', "$TESTS/fauxqs-server.mjs", '0') or die "exec node: $!";
    }
    close $child_in;
    close $child_out;
    $to_child->autoflush(1);
    $self->{pid} = $pid;
    $self->{stdin} = $to_child;

    my $line = <$from_child>;
    close $from_child;
    if (!defined $line || $line !~ /^(\d+)$/) {
        $self->stop;
        die "fauxqs did not start (is tests/node_modules installed? run scripts/deps.sh)\n";
    }
    $self->{port} = $1;
    $self->{queue_url} = $self->create_queue($args{queue}, $args{attributes})
        if defined $args{queue};
    return $self;
}

sub port      { return $_[0]{port} }
sub endpoint  { return "http://127.0.0.1:$_[0]{port}" }
sub queue_url { return $_[0]{queue_url} }
sub region    { return $_[0]{region} }

# Settings for a client of this emulator (the emulator checks no signature).
sub env {
    my ($self) = @_;
    return {
        AWS_ENDPOINT_URL_SQS  => $self->endpoint,
        AWS_REGION            => $self->{region},
        AWS_ACCESS_KEY_ID     => 'AKIDRACEQTEST0000000',
        AWS_SECRET_ACCESS_KEY => 'raceq-test-secret',
        (defined $self->{queue_url} ? (AWS_FIFO_URL => $self->{queue_url}) : ()),
    };
}

# One unsigned JSON-protocol call; returns the decoded reply, dies on an error.
sub call {
    my ($self, $action, $params) = @_;
    my $scope = "20240101/$self->{region}/sqs/aws4_request";
    my $res = $self->{http}->post($self->endpoint . '/', {
        headers => {
            'Content-Type'  => 'application/x-amz-json-1.0',
            'X-Amz-Target'  => "AmazonSQS.$action",
            # fauxqs reads the region from the credential scope.
            'Authorization' => "AWS4-HMAC-SHA256 Credential=AKIDRACEQTEST0000000/$scope, "
                             . 'SignedHeaders=host, Signature=0',
        },
        content => encode_json($params // {}),
    });
    my $reply = length($res->{content} // '') ? eval { decode_json($res->{content}) } : {};
    die "SQS $action: $res->{status} " . ($res->{content} // '') . "\n"
        unless $res->{success} && $reply;
    return $reply;
}

sub create_queue {
    my ($self, $name, $attributes) = @_;
    my %attrs = %{ $attributes // {} };
    $attrs{FifoQueue} = 'true' if $name =~ /\.fifo$/;
    return $self->call('CreateQueue', { QueueName => $name, Attributes => \%attrs })->{QueueUrl};
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;
    kill 'TERM', $pid;
    close $self->{stdin} if $self->{stdin};
    for (1 .. 100) {
        return if waitpid($pid, WNOHANG) != 0;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop;
}

1;
