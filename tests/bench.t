# The quick form of `make bench` keeps the benchmark scripts working: it runs
# race mode and the raceq-echo baseline with wrk and ab, and fifo mode's
# scenarios against the SQS emulator and raceqd, for a few seconds each, and
# must write a JSON file, a Markdown table and a PNG plot with real figures.
# Figures are checked for being there and sane, never against a time.
# With fifo mode asked for in a tree without it, the run must say so and fail.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

my $root = abs_path(dirname(__FILE__) . '/..');
my $out = tempdir('raceq-bench-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub bench {
    my (%env) = @_;
    local @ENV{ keys %env } = values %env;
    my $text = `$root/scripts/bench.sh 2>&1`;
    return ($? >> 8, $text);
}

my $fifo = -x "$root/bin/raceqd" && -d "$root/tests/node_modules/fauxqs";
my ($status, $text) = bench(BENCH_QUICK => 1, BENCH_MODES => $fifo ? 'race fifo' : 'race',
                            BENCH_OUT => $out);
is($status, 0, 'quick run: exit status 0') or diag($text);

my @json = grep { !/latest/ } glob "$out/*-quick.json";
is(scalar @json, 1, 'one JSON file for the run');
(my $base = $json[0] // 'none') =~ s/\.json$//;
ok(-s "$base.md", 'a Markdown table');
ok(-s "$base.png", 'a PNG plot');
ok(-s "$out/latest.md" && -s "$out/latest.json" && -s "$out/latest.png", 'latest copies');

open my $ph, '<:raw', "$base.png";
read $ph, my $magic, 8 if $ph;
is($magic // '', "\x89PNG\r\n\x1a\n", 'the plot is a PNG image');

my $res = eval { local $/; open my $fh, '<', $json[0] or die; decode_json(<$fh>) };
ok(ref $res eq 'HASH', 'the JSON file parses') or diag($@);
$res = {} unless ref $res eq 'HASH';

is_deeply($res->{problems}, [], 'no problems: no errors, no answers outside 2xx');
ok($res->{quick}, 'marked as the quick form');

my $s4 = $res->{scenarios}{'4_race_vs_trivial'} // {};
is($s4->{status}, 'ok', 'scenario 4 ran');
for my $side (qw(race trivial)) {
    my $a = $s4->{$side} // {};
    cmp_ok($a->{requests} // 0, '>', 0, "scenario 4 $side: wrk made requests");
    cmp_ok($a->{rps} // 0, '>', 0, "scenario 4 $side: requests per second");
    for my $p (qw(p50 p90 p99)) {
        cmp_ok($a->{$p} // 0, '>', 0, "scenario 4 $side: latency $p");
    }
    my ($round) = @{ $a->{rounds} // [] };
    is($round->{non2xx}, 0, "scenario 4 $side: no answer outside 2xx");
    cmp_ok($round->{peak_rss_kib}{httpd} // 0, '>', 1024, "scenario 4 $side: httpd's RSS");
    my $ab = $s4->{ab}{$side} // {};
    is($ab->{requests}, 300, "scenario 4 $side: ab completed its requests");
    is($ab->{non2xx}, 0, "scenario 4 $side: ab saw only 2xx");
}
like($s4->{rps_ratio} // '', qr/^\d+(?:\.\d+)?$/, 'scenario 4: a throughput ratio');
ok(defined $s4->{met}, 'scenario 4: the target is judged');

my $s1 = $res->{scenarios}{'1_demo'} // {};
is($s1->{race}{requests}, 15, "scenario 1, race mode: raceq-fire sent the demo's 15");
is($s1->{race}{answers}{200}, 15, 'and all got 200');

SKIP: {
    skip 'fifo mode needs bin/raceqd and tests/node_modules (scripts/deps.sh)', 30 unless $fifo;
    my $s = $res->{scenarios};
    ok($res->{fifo}{available}, 'fifo mode available') or diag($res->{fifo}{error});

    my $f1 = $s1->{fifo} // {};
    is($s1->{status}, 'ok', 'scenario 1, fifo mode: ran');
    is($f1->{requests}, 15, "scenario 1, fifo mode: the demo's 15 requests");
    is($f1->{answers}{200}, 15, 'all 200');
    is($f1->{lost_updates}, 0, 'no update lost');
    is($f1->{order_violations}, 0, 'no order violation');
    is($f1->{writes}, 15, 'every write in the store');
    cmp_ok($f1->{critical_path_us} // 0, '>', 0, 'a critical path');
    cmp_ok($f1->{wall_us} // 0, '>=', $f1->{critical_path_us} // 0,
           'the wall time is at least the critical path');
    ok(defined $s1->{met}, 'scenario 1: the target is judged');

    my $s2 = $s->{'2_overhead'} // {};
    is($s2->{status}, 'ok', 'scenario 2 ran');
    for my $side (qw(fifo race)) {
        cmp_ok($s2->{$side}{requests} // 0, '>', 0, "scenario 2 $side: requests");
        cmp_ok($s2->{$side}{p50} // 0, '>', 0, "scenario 2 $side: latency p50");
        is($s2->{$side}{rounds}[0]{non2xx}, 0, "scenario 2 $side: only 2xx");
    }
    like($s2->{p50_overhead_us} // '', qr/^-?\d+(?:\.\d+)?$/, 'scenario 2: p50 overhead');
    ok(defined $s2->{met}, 'scenario 2: the target is judged');

    my $s3 = $s->{'3_throughput'} // {};
    is($s3->{status}, 'ok', 'scenario 3 ran');
    cmp_ok($s3->{fifo}{requests} // 0, '>', 0, 'scenario 3: fifo requests');
    is($s3->{fifo}{non2xx}, 0, 'scenario 3: only 2xx');
    cmp_ok($s3->{reference}{deleted_per_s} // 0, '>', 0,
           'scenario 3: the reference client deleted messages');
    is($s3->{reference}{errors}, 0, 'scenario 3: the reference client saw no error');
    cmp_ok($s3->{ratio} // 0, '>', 0, 'scenario 3: a ratio');

    my $s5 = $s->{'5_memory_waiting'} // {};
    is($s5->{status}, 'ok', 'scenario 5 ran');
    is($s5->{fire}{answers}{200}, 100, 'scenario 5: the 100 waiting requests all got 200');
    cmp_ok($s5->{peak_rss_kib}{httpd} // 0, '>', 1024, "scenario 5: httpd's peak RSS");
    cmp_ok($s5->{peak_rss_kib}{raceqd} // 0, '>', 1024, "scenario 5: raceqd's peak RSS");

    my $sweep = $res->{sweep}{fifo} // [];
    is(scalar @$sweep, 2, 'sweep fifo: two concurrency levels');
}

for my $name (qw(echo race)) {
    my $sweep = $res->{sweep}{$name} // [];
    is(scalar @$sweep, 2, "sweep $name: two concurrency levels");
    ok(!grep({ !$_->{requests} || $_->{non2xx} } @$sweep), "sweep $name: requests, all 2xx");
}

open my $mh, '<', "$base.md";
my $md = do { local $/; $mh ? <$mh> : '' };
like($md, qr/^\| 4 race vs trivial \| rps race \/ raceq-echo .*\| \d+\.\d{3} \(\d+ \/ \d+\)/m,
     'the table holds the ratio and both rates');
like($md, qr/^\| race \| 16 \| \d+ \| \d+\.\d\d \|/m, 'and the sweep');

# fifo mode asked for: a tree without it must fail clearly, never fake figures.
SKIP: {
    skip 'this tree has raceqd; fifo scenarios are measured instead', 4
        if -x "$root/bin/raceqd";
    my $out2 = tempdir('raceq-bench-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    ($status, $text) = bench(BENCH_QUICK => 1, BENCH_MODES => 'race fifo', BENCH_OUT => $out2);
    is($status, 2, 'fifo asked for without fifo mode: exit status 2');
    like($text, qr/^bench: fifo mode not available: .*raceqd/m, 'saying why');
    my ($j) = grep { !/latest/ } glob "$out2/*.json";
    my $r2 = eval { local $/; open my $fh, '<', $j or die; decode_json(<$fh>) } // {};
    is($r2->{scenarios}{'2_overhead'}{status}, 'unavailable', 'scenario 2 is unavailable');
    like($r2->{scenarios}{'3_throughput'}{error} // '', qr/^fifo mode not available: /,
         'with the reason in the JSON');
}

done_testing();
