# A new SQLite store opened by several httpd children at the same moment:
# each child makes its connections (WAL mode, the tables) on its first
# requests, and none may fail ("database schema has changed", "database is
# locked") and answer 500. httpd runs two children with their threads
# started up front; each of 8 locations has a store of its own that does not
# exist yet and gets wrk's 32 connections at once for one second, so both
# children open it, many connections each, at the same moment.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Test::More;

my $root;
BEGIN {
    $root = abs_path(dirname(__FILE__) . '/..');
    unshift @INC, "$root/bench/lib";
}
use RaceQ::Bench;

plan skip_all => 'build first: make' unless -f "$root/.libs/mod_raceq.so";

my $STORES = 8;
my $b = RaceQ::Bench->new(root => $root);
my $t = $b->tmp;
my $locations = join '', map { <<"EOF" } 1 .. $STORES;
<Location /s$_>
    SetHandler raceq
    RaceQMode race
    RaceQApplyDelay 0 0
    RaceQGenerateId On
    RaceQStore sqlite3 $t/first-$_.db
</Location>
EOF
$b->httpd_start($locations);

for my $n (1 .. $STORES) {
    ok(!-e "$t/first-$n.db", "store $n does not exist before its first request");
    my $r = $b->wrk(path => "/s$n", connections => 32, seconds => 1, users => 100,
                    prefix => "first$n");
    is($r->{error}, undef, "store $n: wrk ran") or next;
    cmp_ok($r->{requests}, '>', 0, "store $n: requests were made");
    is($r->{non2xx}, 0, "store $n: every answer was 2xx")
        or diag(explain($r->{non2xx_by_status}));
    ok(-s "$t/first-$n.db", "store $n was created");
}

my @errors = $b->httpd_errors;
is(scalar @errors, 0, 'no error in the error log') or diag(join "\n", @errors[0 .. 4]);
my $log = RaceQ::Bench::slurp("$t/error_log");
unlike($log, qr/schema has changed|database is locked/, 'no schema or lock failure logged');

$b->cleanup;
done_testing();
