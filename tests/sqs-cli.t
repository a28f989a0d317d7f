# raceq-sqs on the command line: usage errors (exit 2) come before any AWS
# setting is resolved, numbers are parsed strictly, and the messages name the
# tool's own options. Nothing here reaches a network.

use strict;
use warnings;

use File::Temp qw(tempdir);
use FindBin;
use IPC::Open3;
use Symbol qw(gensym);
use Test::More;

my $top = "$FindBin::Bin/..";
my $tool = "$top/bin/raceq-sqs";
die "$tool is not built (run make)\n" unless -x $tool;

# No region, queue or credentials anywhere: HOME is empty, AWS_* unset.
my $home = tempdir(CLEANUP => 1);
delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
$ENV{HOME} = $home;

sub run_tool {
    my (@args) = @_;

    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $tool, @args);
    close $in;
    local $/;
    my $stdout = <$out> // '';
    my $stderr = <$err> // '';
    waitpid $pid, 0;
    return ($? >> 8, $stdout, $stderr);
}

my @usage_errors = (
    [['bogus'], qr/^raceq-sqs: unknown command 'bogus'$/m],
    [[], qr/^raceq-sqs: no COMMAND given$/m],
    [['send'], qr/^raceq-sqs: send needs BODY$/m],
    [['delete'], qr/^raceq-sqs: delete needs HANDLE$/m],
    [['create-queue'], qr/^raceq-sqs: create-queue needs NAME$/m],
    [['queue-url'], qr/^raceq-sqs: queue-url needs NAME$/m],
    [['receive', 'x'], qr/^raceq-sqs: receive takes no argument, not 'x'$/m],
    [['purge', 'x'], qr/^raceq-sqs: purge takes no argument/m],
    [['send', 'a', 'b'], qr/^raceq-sqs: too many arguments/m],
    [['--max', 'x', 'receive'], qr/--max takes a whole number from 1 to 10, not 'x'/],
    [['--max', '3x', 'receive'], qr/--max takes a whole number from 1 to 10, not '3x'/],
    [['--max', '', 'receive'], qr/--max takes a whole number from 1 to 10, not ''/],
    [['--max', '0', 'receive'], qr/--max takes a whole number from 1 to 10, not '0'/],
    [['--max', '11', 'receive'], qr/--max takes a whole number from 1 to 10, not '11'/],
    [['--wait', '21', 'receive'], qr/--wait takes a whole number from 0 to 20, not '21'/],
    [['--wait', '-1', 'receive'], qr/--wait takes a whole number from 0 to 20, not '-1'/],
    [['--timeout', '0', 'receive'], qr/--timeout takes a whole number from 1 to 3600, not '0'/],
    [['--timeout', '-5', 'receive'], qr/--timeout takes a whole number from 1 to 3600/],
    [['--timeout', '1.5', 'receive'], qr/--timeout takes a whole number from 1 to 3600/],
    [['--visibility', '43201', 'receive'],
     qr/--visibility takes a whole number from 0 to 43200, not '43201'/],
    [['--visibility', '-1', 'receive'], qr/--visibility takes a whole number from 0 to 43200/],
    [['--log-level', 'bogus', 'receive'],
     qr/--log-level takes emerg, .* trace1 \.\. trace8, not 'bogus'/],
    [['--nosuch', 'receive'], qr/invalid option: --nosuch/],
    [['receive', '--max'], qr/missing argument: --max/],
    [['bogus', '--max', 'x'], qr/--max takes a whole number/],
);
for my $case (@usage_errors) {
    my ($args, $why) = @$case;
    my $name = "raceq-sqs @$args";
    my ($rc, $out, $err) = run_tool(@$args);
    is($rc, 2, "$name: exit 2");
    like($err, $why, "$name: says what is wrong");
    like($err, qr/^Try 'raceq-sqs --help'\.$/m, "$name: points to --help");
    unlike($err, qr/region|credential/i, "$name: before any AWS setting");
    is($out, '', "$name: nothing on stdout");
}

# Valid use without a region: the message names the tool's own ways only.
for my $args (['receive'], ['--visibility', '43200', '--wait', '0', '--max', '10', 'receive'],
              ['--timeout', '3600', 'send', 'x']) {
    my $name = "raceq-sqs @$args";
    my ($rc, $out, $err) = run_tool(@$args);
    is($rc, 1, "$name: exit 1 without a region");
    like($err, qr/^raceq-sqs: no AWS region is set: give --region, set AWS_REGION /,
         "$name: names --region and AWS_REGION");
    unlike($err, qr/RaceQRegion|raceqd/, "$name: names no directive or other program");
}

my ($rc, $out, $err) = run_tool('--help');
is($rc, 0, '--help: exit 0');
like($out, qr/\AUsage: raceq-sqs \[options\] COMMAND \[ARG\]\n/, '--help: Usage: first');
like($out, qr/^Commands:$/m, '--help: the commands');
like($out, qr/^Options:$/m, '--help: the options');
like($out, qr/^Exit status: 0 done, 1 .*\n.*2 usage error\.$/m, '--help: the exit status');
is($err, '', '--help: nothing on stderr');

done_testing();
