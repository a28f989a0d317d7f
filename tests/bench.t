# The quick form of `make bench` keeps the benchmark scripts working: it runs
# race mode and the raceq-echo baseline with wrk and ab, and fifo mode's
# scenarios against the SQS emulator and raceqd, for a few seconds each, and
# must write a JSON file, a Markdown table and a PNG plot with real figures,
# in bench/results/tmp, leaving the full run's bench/results/latest.* alone.
# Figures are checked for being there and sane, never against a time.
# With fifo mode asked for in a tree without it, the run must say so and fail.
# The wrk script's own req_id prefix differs from run to run.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1_hex);
use File::Basename qw(dirname);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

my $root;
BEGIN { $root = abs_path(dirname(__FILE__) . '/..') }
use lib "$root/bench/lib";
use RaceQ::Bench;

# The committed results of the last full run, as they are before the quick run.
my %latest = map {
    my $f = "$root/bench/results/latest.$_";
    ($_ => -e $f ? join(' ', (stat $f)[9], sha1_hex(RaceQ::Bench::slurp($f))) : 'absent');
} qw(json md png);

sub bench {
    my (%env) = @_;
    my @unset = grep { !defined $env{$_} } keys %env;
    delete @env{@unset};
    delete local @ENV{@unset};
    local @ENV{ keys %env } = values %env;
    my $text = `$root/scripts/bench.sh 2>&1`;
    return ($? >> 8, $text);
}

my $fifo = -x "$root/bin/raceqd" && -d "$root/tests/node_modules/fauxqs";
# No BENCH_OUT: where a quick run writes by default.
my ($status, $text) = bench(BENCH_QUICK => 1, BENCH_MODES => $fifo ? 'race fifo' : 'race',
                            BENCH_OUT => undef);
is($status, 0, 'quick run: exit status 0') or diag($text);

my ($json) = $text =~ /^bench: results: (\S+-quick\.json),/m;
my $out = dirname($json // '');
is($out, "$root/bench/results/tmp", 'a quick run writes to bench/results/tmp');
my @json = grep { -e } $json // ();
is(scalar @json, 1, 'one JSON file for the run');
(my $base = $json[0] // 'none') =~ s/\.json$//;
for my $ext (qw(json md png)) {
    my $f = "$root/bench/results/latest.$ext";
    my $now = -e $f ? join(' ', (stat $f)[9], sha1_hex(RaceQ::Bench::slurp($f))) : 'absent';
    is($now, $latest{$ext}, "the full run's bench/results/latest.$ext is left alone");
}
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

# Every side of every scenario: rps, p50/p90/p99 ms, errors, httpd and raceqd
# peak RSS. Without fifo mode there is no raceqd to measure.
my ($n, $ms, $rss) = (qr/[1-9]\d*/, qr/\d+\.\d\d/, qr/\d+\.\d/);
my $rss_d = $fifo ? $rss : qr/(?:$rss|-)/;
sub row { my $re = join ' \| ', @_; return qr/^\| $re \|$/m }
my @sides = (['1 demo 3x5', 'race (raceq-fire)'], map { ['4 race vs trivial', $_] }
             'race', 'echo', 'race (ab)', 'echo (ab)');
push @sides, ['1 demo 3x5', 'fifo (raceq-fire)'], ['2 overhead', 'fifo'],
             ['2 overhead', 'race'], ['3 throughput', 'fifo'], ['5 memory', 'fifo (raceq-fire)']
    if $fifo;
for my $side (@sides) {
    my ($scen, $name) = @$side;
    like($md, row(quotemeta $scen, quotemeta $name, $n, $ms, $ms, $ms, 0, $rss, $rss_d),
         "side by side: $scen, $name: rps, p50/p90/p99, no error, httpd and raceqd memory");
}
SKIP: {
    skip 'the reference client needs the emulator', 1 unless $fifo;
    like($md, row('3 throughput', 'reference client \(msg/s\)', $n, '-', '-', '-', 0, $rss,
                  $rss),
         'side by side: the reference client: messages per second, no error, memory');
}
for my $name ($fifo ? qw(echo race fifo) : qw(echo race)) {
    for my $c (4, 16) {
        like($md, row($name, $c, $n, $ms, $ms, $ms, 0, $rss, $rss_d),
             "sweep $name c=$c: rps, latency, errors, httpd and raceqd memory");
    }
}
like($md, qr/^## Problems\n\nProblems: none$/m, 'the problems section says there are none');
unlink map { "$base.$_" } qw(json md png);

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

# The wrk script on its own, against race mode: without a prefix argument each
# run makes its own, so a second run is not answered 409 for the first one's
# req_ids; with the same prefix given twice it is, and the counts of both
# threads add up under one status.
{
    my $b = RaceQ::Bench->new(root => $root);
    $b->httpd_start(<<'EOF');
<Location /race>
    SetHandler raceq
    RaceQMode race
    RaceQApplyDelay 0 0
</Location>
EOF
    my %wrk = (path => '/race', threads => 2, connections => 4, seconds => 1, users => 10);
    for my $n (1, 2) {
        my $r = $b->wrk(%wrk);
        cmp_ok($r->{requests} // 0, '>', 0, "wrk, default prefix, run $n: requests")
            or diag($r->{error});
        is($r->{non2xx}, 0, "wrk, default prefix, run $n: no 409, only 2xx");
        is_deeply($r->{non2xx_by_status}, {}, "wrk, default prefix, run $n: no status counted");
    }
    my $fixed = "bench-t-$$-" . time;
    my $first = $b->wrk(%wrk, prefix => $fixed);
    is($first->{non2xx}, 0, 'wrk, a prefix given: first run, only 2xx');
    my $again = $b->wrk(%wrk, prefix => $fixed);
    cmp_ok($again->{non2xx} // 0, '>', 0, 'the same prefix again: repeated req_ids refused');
    is_deeply($again->{non2xx_by_status}, { 409 => $again->{non2xx} },
              'all counted as 409, both threads in one count');

    for my $users ('0', 'many') {
        my $run = $b->run_tool(['wrk', '-t1', '-c1', '-d1s', '-s', "$root/bench/wrk-raceq.lua",
                                $b->url('/race'), '--', $users], timeout => 30);
        isnt($run->{status}, 0, "wrk, pool size '$users': refused");
        like($run->{stderr}, qr/^usage: .*USERS/m, "wrk, pool size '$users': a usage line");
        unlike($run->{stderr} . $run->{stdout}, qr/PANIC/, "wrk, pool size '$users': no panic");
    }
    $b->cleanup;
}

done_testing();
