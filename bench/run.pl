#!/usr/bin/perl
# The benchmarks of mod_raceq, all in one run against one httpd (see
# docs/bench.md). Comparisons are ratios of figures measured side by side in
# this run. Writes bench/results/<run>.json, <run>.md and <run>.png (latency
# against concurrency), and latest.* copies.
#
# Environment: BENCH_MODES ("race fifo" by default; "race" leaves fifo
# mode's scenarios out), BENCH_QUICK=1 (a few seconds), BENCH_OUT (the
# results directory: bench/results for a full run, bench/results/tmp for a
# quick one), BENCH_RACEQD (raceqd's binary), BENCH_KEEP=1. A quick run never
# replaces bench/results/latest.*, which are the last full run's.
# Exit status: 0, 1 when a load tool saw errors, 2 when a requested
# scenario could not run (fifo mode not available).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Copy qw(copy);
use File::Path qw(make_path);
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

BEGIN {
    my $here = dirname(abs_path(__FILE__));
    unshift @INC, "$here/lib", "$here/../tests/lib";
}
use JSON::PP;
use RaceQ::Bench;

my $JSON = JSON::PP->new->utf8->canonical->pretty;
my $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..');
my $QUICK = $ENV{BENCH_QUICK} ? 1 : 0;
my %MODES = map { ($_ => 1) } split /[\s,]+/, $ENV{BENCH_MODES} // 'race fifo';
my $RESULTS = "$ROOT/bench/results";
my $OUT = $ENV{BENCH_OUT} || ($QUICK ? "$RESULTS/tmp" : $RESULTS);

for my $m (keys %MODES) {
    die "BENCH_MODES: unknown mode '$m' (race, fifo)\n" unless $m eq 'race' || $m eq 'fifo';
}

my %PLAN = $QUICK
    ? (seconds => 1, rounds => 1, levels => [4, 16], ab_requests => 300, ref_seconds => 1,
       waiting => 100, warmup => 0)
    : (seconds => 5, rounds => 3, levels => [1, 4, 16, 32, 64], ab_requests => 20000,
       ref_seconds => 5, waiting => 1000, warmup => 2);

# Long polls at once, of raceqd (scenarios 2 and 3) and of the reference client.
my $POLLERS = 2;

my $RUN = strftime('%Y%m%d-%H%M%S', localtime) . ($QUICK ? '-quick' : '');
my $TAG = sprintf '%04x%04x', $$ & 0xffff, int(rand 0x10000);
my (@problems, @unavailable);
my %res = (
    run => $RUN, quick => $QUICK, modes => [sort keys %MODES], plan => \%PLAN,
    host => host_info(), scenarios => {}, sweep => {},
);

sub note { print STDERR "bench: @_\n" }

sub host_info {
    chomp(my $kernel = `uname -r`);
    my ($ver) = `/usr/sbin/apache2 -v 2>/dev/null` =~ m{Apache/(\S+)};
    chomp(my $cpus = `nproc`);
    return { cpus => $cpus + 0, kernel => $kernel, httpd => $ver // 'unknown' };
}

my $n_prefix = 0;
sub prefix { return join '-', 'b', $TAG, ++$n_prefix }

# A load result that is not clean is a problem of the run, not a figure.
sub check_load {
    my ($what, $r) = @_;

    if ($r->{error}) {
        push @problems, "$what: $r->{error}";
        return;
    }
    my $sock = socket_errors($r);
    push @problems, "$what: $r->{non2xx} answers outside 2xx "
        . $JSON->canonical->indent(0)->encode($r->{non2xx_by_status} // {})
        if $r->{non2xx};
    push @problems, "$what: $sock socket errors" if $sock;
    push @problems, "$what: ab counted $r->{failed} failed requests" if $r->{failed};
    push @problems, "$what: no request was made" if defined $r->{requests} && !$r->{requests};
    $JSON->indent(1);
}

# Socket errors of one wrk run (connect, read, write, timeout).
sub socket_errors {
    my ($r) = @_;
    my $e = $r->{errors} // {};
    my $n = 0;
    $n += $e->{$_} // 0 for qw(connect read write timeout);
    return $n;
}

# The highest of each process's peak RSS over several runs.
sub max_peaks {
    my %peak;
    for my $p (grep { $_ } map { $_->{peak_rss_kib} } @_) {
        for my $k (keys %$p) {
            $peak{$k} = $p->{$k} if !defined $peak{$k} || $p->{$k} > $peak{$k};
        }
    }
    return \%peak;
}

sub sum {
    my $n = 0;
    $n += $_ // 0 for @_;
    return $n;
}

# Medians of the rounds that ran, their errors summed and their memory peaks.
sub aggregate {
    my (@rounds) = @_;
    my @ok = grep { !$_->{error} } @rounds;
    return {
        rps => median(map { $_->{rps} } @ok),
        (map { my $k = $_; ($k => median(map { $_->{latency_us}{$k} } @ok)) } qw(p50 p90 p99)),
        requests => sum(map { $_->{requests} } @ok),
        non2xx => sum(map { $_->{non2xx} } @ok),
        socket_errors => sum(map { socket_errors($_) } @ok),
        peak_rss_kib => max_peaks(@ok),
        rounds => \@rounds,
    };
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub ratio {
    my ($a, $b) = @_;
    return undef unless defined $a && defined $b && $b;
    return 0 + sprintf '%.3f', $a / $b;
}

# Runs wrk on each path in turn, $rounds times, so slow drifts of the machine
# hit every path alike; returns per path the medians and the rounds.
sub interleaved {
    my ($b, $what, $paths, %o) = @_;
    my %rounds;

    for my $round (1 .. $PLAN{rounds}) {
        for my $path (@$paths) {
            my $r = $b->wrk(path => $path, connections => $o{connections},
                            seconds => $PLAN{seconds}, users => $o{users}, prefix => prefix());
            check_load("$what $path round $round", $r);
            push @{ $rounds{$path} }, $r;
        }
    }
    return { map { ($_ => aggregate(@{ $rounds{$_} })) } @$paths };
}

sub unavailable {
    my ($name, $why) = @_;
    return { status => 'unavailable', error => $why } if $MODES{fifo};
    return { status => 'skipped', error => 'fifo mode not requested (BENCH_MODES)' };
}

# --- fifo mode: what it needs ---------------------------------------------

sub fifo_prepare {
    my ($b) = @_;

    return 'fifo mode not requested' unless $MODES{fifo};
    my $raceqd = $b->raceqd_bin;
    return "fifo mode not available: $raceqd is not built (this tree has no raceqd)"
        unless -x $raceqd;
    return 'fifo mode not available: the SQS emulator cannot start: '
        . 'tests/node_modules/fauxqs is missing (run scripts/deps.sh)'
        unless $b->fauxqs;
    my $ok = eval {
        for my $d (fifo_daemons($b)) {
            $b->raceqd_start(%$d);
        }
        1;
    };
    return "fifo mode not available: raceqd does not start: $@" unless $ok;
    return undef;
}

# One queue and one raceqd per fifo location, each with the toy write's
# duration of its scenario; none is restarted while messages are in flight.
# --wait-seconds 2: a receive returns as soon as a message is there, so the
# long-poll wait only bounds how long raceqd takes to stop at the end.
my %QUEUES;
sub fifo_daemons {
    my ($b) = @_;
    my $fq = $b->fauxqs;
    for my $q (qw(demo wait)) {
        $QUEUES{$q} //= $fq->create_queue("bench-$q-$TAG.fifo");
    }
    return (
        { name => 'raceqd', path => '/fifo', delay => '0 0', pollers => $POLLERS,
          wait_seconds => 2 },
        { name => 'raceqd-demo', path => '/fifo-demo', queue => $QUEUES{demo},
          delay => '1 200', wait_seconds => 2 },
        { name => 'raceqd-wait', path => '/fifo-wait', queue => $QUEUES{wait},
          delay => '20 20', workers => 8, wait_seconds => 2 },
    );
}

# Asks each fifo location for one write; a build without fifo mode says 501.
sub fifo_probe {
    my ($b) = @_;

    for my $path ('/fifo', '/fifo-demo', '/fifo-wait') {
        my $why = fifo_probe_one($b, $path);
        return $why if $why;
    }
    return undef;
}

sub fifo_probe_one {
    my ($b, $path) = @_;
    (my $id = "probe-$TAG$path") =~ tr{/}{-};
    my $res = $b->post($path, qq({"req_id":"$id","user_id":"$id"}));

    return undef if ($res->{status} // 0) == 200;
    my $body = $res->{body} // '';
    my $err = eval { decode_json($body)->{error} } // $body;
    return "fifo mode not available: mod_raceq answers $res->{status} ($err)"
        if ($res->{status} // 0) == 501;
    return "fifo mode not available: a probe write got "
        . ($res->{status} || $res->{error} || 'no answer') . ": $err";
}

sub locations {
    my ($b, $fifo) = @_;
    my $t = $b->tmp;
    my $text = <<'EOF';
<Location /race>
    SetHandler raceq
    RaceQMode race
    RaceQApplyDelay 0 0
    RaceQGenerateId On
</Location>
<Location /race-demo>
    SetHandler raceq
    RaceQMode race
    RaceQApplyDelay 1 200
</Location>
<Location /echo>
    SetHandler raceq-echo
</Location>
EOF
    return $text unless $fifo;
    my $fq = $b->fauxqs;
    for my $d (fifo_daemons($b)) {
        $text .= <<"EOF";
<Location $d->{path}>
    SetHandler raceq
    RaceQMode fifo
    RaceQGenerateId On
    RaceQQueueURL @{[ $d->{queue} // $fq->queue_url ]}
    RaceQEndpoint @{[ $fq->endpoint ]}
    RaceQRegion @{[ $fq->region ]}
    RaceQDaemonSocket $t/$d->{name}.sock
    RaceQTimeout 120
</Location>
EOF
    }
    return $text;
}

# --- the scenarios ----------------------------------------------------------

sub sweep {
    my ($b, $paths) = @_;

    for my $path (@$paths) {
        (my $name = $path) =~ s{^/}{};
        for my $c (@{ $PLAN{levels} }) {
            my $r = $b->wrk(path => $path, connections => $c, seconds => $PLAN{seconds},
                            users => 100, prefix => prefix());
            check_load("sweep $path c=$c", $r);
            push @{ $res{sweep}{$name} }, $r unless $r->{error};
        }
    }
}

sub scenario_4 {
    my ($b) = @_;
    my $agg = interleaved($b, 'scenario 4', ['/race', '/echo'], connections => 32, users => 100);
    my ($race, $echo) = @{$agg}{qw(/race /echo)};
    my %ab;

    for my $path ('/race', '/echo') {
        $ab{$path} = $b->ab(path => $path, requests => $PLAN{ab_requests}, connections => 32);
        check_load("scenario 4 ab $path", $ab{$path});
    }
    my $rps_ratio = ratio($race->{rps}, $echo->{rps});
    return {
        status => 'ok', what => 'race mode (RaceQApplyDelay 0 0) against raceq-echo, '
            . 'same httpd, wrk -c32, 100 users',
        race => $race, trivial => $echo,
        rps_ratio => $rps_ratio,
        p50_ratio => ratio($race->{p50}, $echo->{p50}),
        p99_ratio => ratio($race->{p99}, $echo->{p99}),
        target => 'race rps >= 0.80 x trivial rps',
        met => defined $rps_ratio && $rps_ratio >= 0.8 ? JSON::PP::true : JSON::PP::false,
        ab => { race => $ab{'/race'}, trivial => $ab{'/echo'},
                rps_ratio => ratio($ab{'/race'}{rps}, $ab{'/echo'}{rps}) },
    };
}

sub scenario_1 {
    my ($b, $fifo_ok, $why) = @_;
    my $race = $b->fire(path => '/race-demo', users => 3, per_user => 5);
    my %s = (what => "the demo's 3 users x 5, delay 1-200 ms", race => $race,
             original_design_s => 14);

    push @problems, "scenario 1 race: $race->{error}" if $race->{error};
    return { %s, %{ unavailable(1, $why) } } unless $fifo_ok;

    my $fifo = $b->fire(path => '/fifo-demo', users => 3, per_user => 5);
    if ($fifo->{error}) {
        push @problems, "scenario 1 fifo: $fifo->{error}";
        return { %s, status => 'failed', error => $fifo->{error} };
    }
    my ($wall, $cp) = ($fifo->{wall_us}, $fifo->{critical_path_us});
    return {
        %s, status => 'ok', fifo => $fifo,
        wall_over_critical_path => ratio($wall, $cp),
        target => 'wall <= 1.2 x critical path + 100 ms',
        met => $cp && $wall <= 1.2 * $cp + 100_000 ? JSON::PP::true : JSON::PP::false,
    };
}

sub scenario_2 {
    my ($b, $fifo_ok, $why) = @_;

    return unavailable(2, $why) unless $fifo_ok;
    my $agg = interleaved($b, 'scenario 2', ['/fifo', '/race'], connections => 32, users => 100);
    my ($fifo, $race) = @{$agg}{qw(/fifo /race)};
    my $d50 = $fifo->{p50} - $race->{p50};
    # With one connection nothing queues: the sweep's figures there are what
    # fifo mode adds to one request on an idle server.
    my %one = map {
        my $name = $_;
        my ($r) = grep { $_->{connections} == 1 } @{ $res{sweep}{$name} // [] };
        ($name => $r ? $r->{latency_us}{p50} : undef);
    } qw(fifo race);
    return {
        status => 'ok', what => 'delay 0, 100 users, 32 connections',
        fifo => $fifo, race => $race,
        p50_overhead_us => $d50, p99_overhead_us => $fifo->{p99} - $race->{p99},
        p50_overhead_1conn_us => defined $one{fifo} && defined $one{race}
            ? $one{fifo} - $one{race} : undef,
        target => 'p50 overhead <= 3 ms',
        met => $d50 <= 3000 ? JSON::PP::true : JSON::PP::false,
    };
}

# One run of the reference client, on a new queue of its own on the emulator.
my $n_ref = 0;
sub reference_client {
    my ($b) = @_;
    my $bin = "$ROOT/bench/bin/sqs-ref";

    return { error => "$bin is not built (scripts/bench.sh builds it)" } unless -x $bin;
    my $fq = $b->fauxqs;
    my $queue = $fq->create_queue("bench-ref-$TAG-" . ++$n_ref . ".fifo");
    my $env = $fq->env;
    local @ENV{ keys %$env } = @{$env}{ keys %$env };
    local $ENV{AWS_FIFO_URL} = $queue;
    my $run = $b->run_tool([$bin, '--threads', 64, '--pollers', $POLLERS,
                            '--seconds', $PLAN{ref_seconds}, '--users', 1000],
                           timeout => $PLAN{ref_seconds} + 60);
    my $r = eval { decode_json($run->{stdout}) };
    return { error => "sqs-ref failed (status $run->{status}): $run->{stderr}$run->{stdout}" }
        unless ref $r eq 'HASH' && $run->{status} == 0;
    $r->{peak_rss_kib} = $run->{peak_rss_kib};
    return $r;
}

# The reference client and fifo mode take turns, $PLAN{rounds} times, like
# the interleaved scenarios, so a drift of the machine hits both alike.
sub scenario_3 {
    my ($b, $fifo_ok, $why) = @_;
    my %s = (what => 'delay 0, 1000 users, 64 connections; the reference client sends with '
                 . '64 threads (one message each in the queue at a time) and receives and '
                 . 'batch-deletes with 2, with the same SQS client; alternated');
    my (@refs, @fifos);

    if (!$b->fauxqs) {
        return { %s, %{ unavailable(3, $why) } };
    }
    for my $round (1 .. $PLAN{rounds}) {
        my $ref = reference_client($b);
        push @problems, "scenario 3 reference client round $round: $ref->{error}"
            if $ref->{error};
        push @refs, $ref;
        next unless $fifo_ok;
        my $fifo = $b->wrk(path => '/fifo', connections => 64, seconds => $PLAN{seconds},
                           users => 1000, prefix => prefix());
        check_load("scenario 3 fifo round $round", $fifo);
        push @fifos, $fifo;
    }
    my @ok_refs = grep { !$_->{error} } @refs;
    my $ref = {
        deleted_per_s => median(map { $_->{deleted_per_s} } @ok_refs),
        errors => sum(map { $_->{errors} } @ok_refs),
        peak_rss_kib => max_peaks(@ok_refs),
        rounds => \@refs,
        (@ok_refs ? () : (error => 'the reference client failed in every round')),
    };
    $s{reference} = $ref;
    return { %s, %{ unavailable(3, $why) } } unless $fifo_ok;
    my $fifo = aggregate(@fifos);
    my $r = ratio($fifo->{rps}, $ref->{deleted_per_s});
    return {
        %s, status => 'ok', fifo => $fifo, ratio => $r,
        target => 'fifo rps >= 0.60 x reference', met => ($r // 0) >= 0.6 ? JSON::PP::true
                                                                          : JSON::PP::false,
    };
}

sub scenario_5 {
    my ($b, $fifo_ok, $why) = @_;

    return unavailable(5, $why) unless $fifo_ok;
    # A slow apply (raceqd-wait: 8 workers, 20 ms per write) keeps the
    # requests waiting while memory is sampled.
    my $now = $b->memory_now;
    my $idle = { httpd => $now->{httpd}, raceqd => $now->{'raceqd-wait'} };
    my $fire = $b->fire(path => '/fifo-wait', users => $PLAN{waiting}, per_user => 1,
                        concurrency => $PLAN{waiting});
    my $peak = $fire->{peak_rss_kib} // {};
    push @problems, "scenario 5: $fire->{error}" if $fire->{error};
    push @problems, "scenario 5: not every request got 200"
        if !$fire->{error} && ($fire->{answers}{200} // 0) != $PLAN{waiting};
    return {
        status => $fire->{error} ? 'failed' : 'ok',
        what => "$PLAN{waiting} fifo requests at once (raceqd: 8 workers, 20 ms per write)",
        idle_rss_kib => $idle, fire => $fire,
        peak_rss_kib => { httpd => $peak->{httpd}, raceqd => $peak->{'raceqd-wait'} },
    };
}

# --- output -----------------------------------------------------------------

sub fmt_ms { defined $_[0] ? sprintf('%.2f', $_[0] / 1000) : '-' }
sub fmt_n { defined $_[0] ? sprintf('%.0f', $_[0]) : '-' }
sub fmt_r { defined $_[0] ? sprintf('%.3f', $_[0]) : '-' }

sub status_line {
    my ($s) = @_;
    return $s->{error} // $s->{status} if ($s->{status} // '') ne 'ok';
    return '' unless exists $s->{met};
    return ($s->{met} ? 'met' : 'missed') . " ($s->{target})";
}

sub markdown {
    my $s = $res{scenarios};
    my @md = ("# mod_raceq benchmarks, run $RUN" . ($QUICK ? ' (quick form)' : ''), '',
              "Host: $res{host}{cpus} CPUs, Linux $res{host}{kernel}, Apache "
              . "$res{host}{httpd}. Modes: @{ $res{modes} }. Ratios compare figures "
              . 'measured side by side in this run.', '',
              '| scenario | figure | value | target |', '| --- | --- | --- | --- |');
    my $s4 = $s->{'4_race_vs_trivial'};
    push @md, sprintf('| 4 race vs trivial | rps race / raceq-echo (wrk -c32) | %s (%s / %s) '
                      . '| %s |', fmt_r($s4->{rps_ratio}), fmt_n($s4->{race}{rps}),
                      fmt_n($s4->{trivial}{rps}), status_line($s4));
    push @md, sprintf('| 4 race vs trivial | p50 / p99 latency ratio | %s / %s (race p50 %s '
                      . 'ms, p99 %s ms) | |', fmt_r($s4->{p50_ratio}), fmt_r($s4->{p99_ratio}),
                      fmt_ms($s4->{race}{p50}), fmt_ms($s4->{race}{p99}));
    push @md, sprintf('| 4 race vs trivial | ab -k -c32 rps ratio | %s (%s / %s) | |',
                      fmt_r($s4->{ab}{rps_ratio}), fmt_n($s4->{ab}{race}{rps}),
                      fmt_n($s4->{ab}{trivial}{rps}));
    my $s1 = $s->{'1_demo'};
    push @md, sprintf('| 1 demo 3x5 | race: lost updates / wall | %s / %s ms | |',
                      $s1->{race}{lost_updates} // '-', fmt_ms($s1->{race}{wall_us}));
    push @md, sprintf('| 1 demo 3x5 | fifo: wall / critical path | %s (%s / %s ms; the '
                      . 'original design: about 14 s) | %s |',
                      fmt_r($s1->{wall_over_critical_path}), fmt_ms($s1->{fifo}{wall_us}),
                      fmt_ms($s1->{fifo}{critical_path_us}), status_line($s1));
    my $s2 = $s->{'2_overhead'};
    push @md, sprintf('| 2 overhead | fifo - race latency p50 / p99 | %s / %s ms | %s |',
                      fmt_ms($s2->{p50_overhead_us}), fmt_ms($s2->{p99_overhead_us}),
                      status_line($s2));
    push @md, sprintf('| 2 overhead | fifo - race p50 at 1 connection (sweep) | %s ms | |',
                      fmt_ms($s2->{p50_overhead_1conn_us}))
        if defined $s2->{p50_overhead_1conn_us};
    my $s3 = $s->{'3_throughput'};
    push @md, sprintf('| 3 throughput | fifo rps / reference client | %s (%s / %s msg/s) '
                      . '| %s |', fmt_r($s3->{ratio}), fmt_n($s3->{fifo}{rps}),
                      fmt_n($s3->{reference}{deleted_per_s}), status_line($s3));
    my $s5 = $s->{'5_memory_waiting'};
    push @md, sprintf('| 5 memory | peak RSS with %d fifo requests waiting: httpd / '
                      . 'raceqd | %s / %s MiB | %s |', $PLAN{waiting},
                      mib($s5->{peak_rss_kib}{httpd}), mib($s5->{peak_rss_kib}{raceqd}),
                      status_line($s5));
    push @md, '', '## Each scenario, side by side', '',
        'Medians of the rounds for rps and latency; errors (answers outside 2xx plus '
        . 'socket errors) summed over the rounds; memory is the highest peak RSS while '
        . 'the side ran. raceqd is the daemon behind the fifo location of the scenario '
        . '(/fifo-demo in 1, /fifo-wait in 5, /fifo otherwise: idle while the other side '
        . 'runs).', '',
        '| scenario | side | rps | p50 ms | p90 ms | p99 ms | errors | httpd peak RSS MiB '
        . '| raceqd peak RSS MiB |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |';
    push @md, map { side_row(@$_) } side_rows();
    push @md, '', '## Latency against concurrency (wrk, 100 users, delay 0)', '',
        '| location | connections | rps | p50 ms | p90 ms | p99 ms | errors '
        . '| httpd peak RSS MiB | raceqd peak RSS MiB |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |';
    for my $name (sort keys %{ $res{sweep} }) {
        for my $r (@{ $res{sweep}{$name} }) {
            push @md, sprintf('| %s | %d | %s | %s | %s | %s | %d | %s | %s |', $name,
                              $r->{connections}, fmt_n($r->{rps}),
                              fmt_ms($r->{latency_us}{p50}), fmt_ms($r->{latency_us}{p90}),
                              fmt_ms($r->{latency_us}{p99}),
                              ($r->{non2xx} // 0) + socket_errors($r),
                              mib($r->{peak_rss_kib}{httpd}), mib($r->{peak_rss_kib}{raceqd}));
        }
    }
    push @md, '', "![latency against concurrency]($RUN.png)" if $res{plot};
    push @md, '', '## Problems', '', @problems ? (map { "- $_" } @problems) : 'Problems: none';
    push @md, '', '## Not measured', '', map { "- $_" } @unavailable if @unavailable;
    return join("\n", @md) . "\n";
}

sub mib { defined $_[0] ? sprintf('%.1f', $_[0] / 1024) : '-' }

sub side_row {
    my ($scenario, $side, $r) = @_;
    return sprintf('| %s | %s | %s | %s | %s | %s | %s | %s | %s |', $scenario, $side,
                   fmt_n($r->{rps}), fmt_ms($r->{p50}), fmt_ms($r->{p90}), fmt_ms($r->{p99}),
                   $r->{errors} // '-', mib($r->{httpd}), mib($r->{raceqd}));
}

# A wrk aggregate (see aggregate()) as one row's figures.
sub wrk_side {
    my ($a, $daemon) = @_;
    return undef unless $a && defined $a->{rps};
    return { (map { ($_ => $a->{$_}) } qw(rps p50 p90 p99)),
             errors => ($a->{non2xx} // 0) + ($a->{socket_errors} // 0),
             httpd => $a->{peak_rss_kib}{httpd}, raceqd => $a->{peak_rss_kib}{$daemon} };
}

sub ab_side {
    my ($r, $daemon) = @_;
    return undef unless $r && defined $r->{rps};
    return { rps => $r->{rps}, (map { ($_ => $r->{latency_us}{$_}) } qw(p50 p90 p99)),
             errors => ($r->{non2xx} // 0) + ($r->{failed} // 0),
             httpd => $r->{peak_rss_kib}{httpd}, raceqd => $r->{peak_rss_kib}{$daemon} };
}

# raceq-fire: requests over the wall time; every answer outside 2xx and every
# request left without one is an error.
sub fire_side {
    my ($r, $daemon) = @_;
    return undef unless $r && !$r->{error} && $r->{wall_us};
    my $ok = sum(map { $r->{answers}{$_} } grep { /^2\d\d$/ } keys %{ $r->{answers} // {} });
    return { rps => $r->{requests} * 1e6 / $r->{wall_us},
             (map { ($_ => $r->{latency_us}{$_}) } qw(p50 p90 p99)),
             errors => $r->{requests} - $ok,
             httpd => $r->{peak_rss_kib}{httpd}, raceqd => $r->{peak_rss_kib}{$daemon} };
}

sub ref_side {
    my ($r) = @_;
    return undef unless $r && defined $r->{deleted_per_s};
    return { rps => $r->{deleted_per_s}, errors => $r->{errors},
             httpd => $r->{peak_rss_kib}{httpd}, raceqd => $r->{peak_rss_kib}{raceqd} };
}

# [scenario, side, figures] for every side that was measured.
sub side_rows {
    my $s = $res{scenarios};
    my ($s1, $s2, $s3, $s4, $s5) = map { $s->{$_} // {} }
        qw(1_demo 2_overhead 3_throughput 4_race_vs_trivial 5_memory_waiting);
    my @rows = (
        ['1 demo 3x5', 'race (raceq-fire)', fire_side($s1->{race}, 'raceqd-demo')],
        ['1 demo 3x5', 'fifo (raceq-fire)', fire_side($s1->{fifo}, 'raceqd-demo')],
        ['2 overhead', 'fifo', wrk_side($s2->{fifo}, 'raceqd')],
        ['2 overhead', 'race', wrk_side($s2->{race}, 'raceqd')],
        ['3 throughput', 'fifo', wrk_side($s3->{fifo}, 'raceqd')],
        ['3 throughput', 'reference client (msg/s)', ref_side($s3->{reference})],
        ['4 race vs trivial', 'race', wrk_side($s4->{race}, 'raceqd')],
        ['4 race vs trivial', 'echo', wrk_side($s4->{trivial}, 'raceqd')],
        ['4 race vs trivial', 'race (ab)', ab_side($s4->{ab}{race}, 'raceqd')],
        ['4 race vs trivial', 'echo (ab)', ab_side($s4->{ab}{trivial}, 'raceqd')],
        ['5 memory', 'fifo (raceq-fire)', fire_side($s5->{fire}, 'raceqd-wait')],
    );
    return grep { $_->[2] } @rows;
}

sub plot {
    my $dat = "$OUT/$RUN.dat";
    my @series = grep { @{ $res{sweep}{$_} } } sort keys %{ $res{sweep} };
    return 'nothing to plot' unless @series;

    open my $fh, '>', $dat or return "$dat: $!";
    for my $name (@series) {
        print $fh "# $name\n";
        printf $fh "%d %.3f %.3f\n", $_->{connections}, $_->{latency_us}{p50} / 1000,
            $_->{latency_us}{p99} / 1000 for @{ $res{sweep}{$name} };
        print $fh "\n\n";
    }
    close $fh;
    my @plots;
    for my $i (0 .. $#series) {
        # One colour per location: p50 solid, p99 dashed.
        my $lc = 'lc ' . ($i + 1);
        push @plots, qq("$dat" index $i using 1:2 with linespoints $lc title "$series[$i] p50"),
                     qq("$dat" index $i using 1:3 with linespoints $lc dt 2 )
                     . qq(title "$series[$i] p99");
    }
    my $script = join "\n",
        'set terminal pngcairo size 900,560 noenhanced', qq(set output "$OUT/$RUN.png"),
        qq(set title "mod_raceq: latency against concurrency ($RUN)"),
        'set xlabel "connections (wrk)"', 'set ylabel "latency, ms (log scale)"',
        'set logscale x 2', 'set logscale y', 'set format y "%g"',
        'set key top left', 'set grid', 'plot ' . join(', ', @plots), '';
    open my $gp, '|-', 'gnuplot' or return "gnuplot: $!";
    print $gp $script;
    close $gp;
    unlink $dat;
    return $? == 0 && -s "$OUT/$RUN.png" ? undef : "gnuplot failed (status $?)";
}

sub write_results {
    make_path($OUT);
    my $err = plot();
    if ($err) {
        push @problems, "plot: $err";
    }
    else {
        $res{plot} = "$RUN.png";
    }
    $res{problems} = \@problems;
    $res{unavailable} = \@unavailable;
    open my $fh, '>', "$OUT/$RUN.json" or die "$OUT/$RUN.json: $!\n";
    print $fh $JSON->indent(1)->encode(\%res);
    close $fh;
    open $fh, '>', "$OUT/$RUN.md" or die "$OUT/$RUN.md: $!\n";
    print $fh markdown();
    close $fh;
    # bench/results/latest.* are the last full run's: a quick run written
    # there (BENCH_OUT=bench/results) leaves them alone.
    return if $QUICK && (abs_path($OUT) // '') eq (abs_path($RESULTS) // $RESULTS);
    for my $ext (qw(json md png)) {
        copy("$OUT/$RUN.$ext", "$OUT/latest.$ext") if -e "$OUT/$RUN.$ext";
    }
    if (-e "$OUT/latest.md") {
        # latest.md names the plot latest.png.
        my $md = RaceQ::Bench::slurp("$OUT/latest.md");
        $md =~ s/\(\Q$RUN\E\.png\)/(latest.png)/;
        open $fh, '>', "$OUT/latest.md" or die "$OUT/latest.md: $!\n";
        print $fh $md;
        close $fh;
    }
}

# --- main -------------------------------------------------------------------

sub main {
    my $bench = RaceQ::Bench->new(root => $ROOT);
    my $t0 = time;

    if ($MODES{fifo} && -x $bench->raceqd_bin || $MODES{fifo} && $ENV{BENCH_REFERENCE} // 1) {
        eval { $bench->fauxqs_start("bench-$TAG.fifo"); 1 }
            or note("the SQS emulator does not start: $@");
    }
    my $why = fifo_prepare($bench);
    $bench->httpd_start(locations($bench, !$why), env => $bench->fauxqs ? $bench->fauxqs->env : {});
    # One write first: it creates the store's tables, which two children
    # opening a new SQLite store at the same moment may fail to do.
    my $prime = $bench->post('/race', qq({"req_id":"prime-$TAG","user_id":"prime-$TAG"}));
    push @problems, "the first write to /race got " . ($prime->{status} || $prime->{error})
        unless ($prime->{status} // 0) == 200;
    $why //= fifo_probe($bench);
    if ($why && $MODES{fifo}) {
        note($why);
        push @unavailable, $why;
    }
    $res{fifo} = { available => $why ? JSON::PP::false : JSON::PP::true,
                   ($why ? (error => $why) : ()) };
    $res{memory}{httpd_idle_kib} = $bench->memory_now->{httpd};

    if ($PLAN{warmup}) {
        $bench->wrk(path => $_, connections => 32, seconds => $PLAN{warmup}, users => 100,
                prefix => prefix()) for '/echo', '/race', ($why ? () : '/fifo');
    }

    note('race mode against raceq-echo (scenario 4)');
    $res{scenarios}{'4_race_vs_trivial'} = scenario_4($bench);
    note('latency against concurrency');
    sweep($bench, ['/echo', '/race', ($why ? () : '/fifo')]);
    note("the demo's scenario (scenario 1)");
    $res{scenarios}{'1_demo'} = scenario_1($bench, !$why, $why);
    $res{scenarios}{'2_overhead'} = scenario_2($bench, !$why, $why);
    $res{scenarios}{'3_throughput'} = scenario_3($bench, !$why, $why);
    $res{scenarios}{'5_memory_waiting'} = scenario_5($bench, !$why, $why);

    my @errors = ($bench->httpd_errors, $bench->raceqd_errors);
    push @problems, map { "error_log: $_" } @errors[0 .. ($#errors < 9 ? $#errors : 9)];
    $res{memory}{httpd_peak_kib} = (sort { $b <=> $a } map { $_->{httpd} // 0 }
                                    grep { $_ } map { $_->{peak_rss_kib} }
                                    map { @$_ } values %{ $res{sweep} })[0];
    $res{elapsed_s} = 0 + sprintf '%.1f', time - $t0;
    $bench->cleanup;

    write_results();
    print markdown();
    note("results: $OUT/$RUN.json, $OUT/$RUN.md" . ($res{plot} ? ", $OUT/$RUN.png" : ''));
    note("problem: $_") for @problems;
    return 1 if @problems;
    return 2 if @unavailable;
    return 0;
}

exit main();
