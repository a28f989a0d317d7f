# Interop with AWS's own client: messages sent by raceq-sqs (our C client) are
# received by @aws-sdk/client-sqs, and the other way round, through the fauxqs
# emulator. Bodies, group ids, dedup ids and sequence numbers must agree.
use strict;
use warnings;

use Test::More;
use Encode ();
use JSON::PP;
use Test::RaceQ::Fauxqs;

my $tests = Test::RaceQ::Fauxqs::tests_dir();
my $top = "$tests/..";
my $tool = "$top/bin/raceq-sqs";
plan skip_all => "$tool is not built (run make)" unless -x $tool;

my $fq = Test::RaceQ::Fauxqs->start(queue => 'raceq-interop.fifo');
my $q = $fq->queue_url;
my $env = $fq->env;
local @ENV{ keys %$env } = values %$env;
# The SDK warns on Node.js 20 about its future releases; keep the output clean.
local $ENV{NODE_NO_WARNINGS} = 1;
local $ENV{AWS_EC2_METADATA_DISABLED} = 'true';
local $ENV{AWS_SHARED_CREDENTIALS_FILE} = '/nonexistent';
local $ENV{AWS_CONFIG_FILE} = '/nonexistent';

# Runs a command without a shell; returns its standard output lines.
sub run_cmd {
    my @cmd = @_;
    open(my $fh, '-|', @cmd) or die "cannot run $cmd[0]: $!";
    my @lines = <$fh>;
    close $fh;
    chomp @lines;
    return ($? >> 8, @lines);
}

my @msgs = (
    [ 'user-1', 'req-1', '{"req_id":"req-1","user_id":"user-1","n":1}' ],
    [ 'user-1', 'req-2', '{"req_id":"req-2","user_id":"user-1","n":"caf\x{e9} \x{20ac}"}' ],
    [ 'user-2', 'req-3', "line one\nline two\ttabbed" ],
);

sub by_dedup { return { map { $_->{MessageDeduplicationId} => $_ } @_ } }

sub check_round {
    my ($name, $sent, $received) = @_;
    is(scalar @$received, scalar @msgs, "$name: every message arrived once");
    my $got = by_dedup(@$received);
    for my $i (0 .. $#msgs) {
        my ($group, $dedup, $body) = @{ $msgs[$i] };
        my $r = $got->{$dedup} // {};
        is($r->{Body}, $body, "$name: body of $dedup");
        is($r->{MessageGroupId}, $group, "$name: group of $dedup");
        is($r->{SequenceNumber}, $sent->[$i]{SequenceNumber}, "$name: sequence number of $dedup");
        is($r->{MessageId}, $sent->[$i]{MessageId}, "$name: message id of $dedup");
    }
    my @u1 = grep { $_->{MessageGroupId} eq 'user-1' } @$received;
    is_deeply([ map { $_->{MessageDeduplicationId} } @u1 ], [ 'req-1', 'req-2' ],
              "$name: one group's messages arrive in order");
}

binmode(STDOUT, ':utf8');
my $json = JSON::PP->new->utf8;

# Ours sends, AWS's receives.
my @sent;
for my $m (@msgs) {
    my ($rc, $line) = run_cmd($tool, '--queue-url', $q, 'send', '--group', $m->[0],
                              '--dedup', $m->[1], Encode::encode('UTF-8', $m->[2]));
    is($rc, 0, "raceq-sqs sends $m->[1]");
    push @sent, $json->decode($line // '{}');
}
my ($rc, @lines) = run_cmd('node', "$tests/interop.mjs", 'receive', $q, scalar @msgs);
is($rc, 0, 'the AWS SDK receives');
check_round('C to SDK', \@sent, [ map { $json->decode($_) } @lines ]);

# AWS's sends, ours receives.
@sent = ();
for my $m (@msgs) {
    my ($rc, $line) = run_cmd('node', "$tests/interop.mjs", 'send', $q, $m->[0], "sdk-$m->[1]",
                              Encode::encode('UTF-8', $m->[2]));
    is($rc, 0, "the AWS SDK sends sdk-$m->[1]");
    push @sent, $json->decode($line // '{}');
}
my @received;
for (my $polls = 0; $polls < 20 && @received < @msgs; $polls++) {
    my ($rc, @lines) = run_cmd($tool, '--queue-url', $q, 'receive', '--max', 10, '--wait', 1,
                               '--delete');
    is($rc, 0, 'raceq-sqs receives') or last;
    push @received, map { $json->decode($_) } @lines;
}
$_->{MessageDeduplicationId} =~ s/^sdk-// for @received;
check_round('SDK to C', \@sent, \@received);

$fq->stop;
done_testing();
