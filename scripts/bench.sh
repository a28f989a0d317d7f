#!/bin/sh
# make bench: the benchmarks of docs/bench.md, in one run.
#   scripts/bench.sh            the full run (a few minutes on 2 cores)
#   BENCH_QUICK=1 scripts/bench.sh   the quick form (a few seconds)
#   BENCH_MODES=race scripts/bench.sh   race mode and the baseline only
# Results go to bench/results, a quick run's to bench/results/tmp (BENCH_OUT to
# change it); only a full run replaces bench/results/latest.*.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

for tool in wrk ab gnuplot perl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing; run scripts/deps.sh" >&2
        exit 1
    fi
done
if ! gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1; then
    echo "bench: gnuplot has no pngcairo terminal; install gnuplot-nox" >&2
    exit 1
fi
if [ ! -f .libs/mod_raceq.so ] || [ ! -x bin/raceq-fire ]; then
    echo "bench: build first: make" >&2
    exit 1
fi

# The reference client of the throughput scenario, built like the programs.
CFLAGS="-O2 -g -Wall -Wextra -Werror -Ilib $(apr-1-config --cflags --cppflags --includes) \
$(apu-1-config --includes)"
LIBS="$(apu-1-config --link-ld) $(apr-1-config --link-ld --libs) -lcurl -ljansson -lcrypto \
-lpthread -lm"
mkdir -p bench/bin
if [ ! -x bench/bin/sqs-ref ] || [ bench/sqs-ref.c -nt bench/bin/sqs-ref ] ||
   [ lib/librq.a -nt bench/bin/sqs-ref ]; then
    # shellcheck disable=SC2086
    ${CC:-cc} $CFLAGS -o bench/bin/sqs-ref bench/sqs-ref.c lib/librq.a $LIBS
fi

# 1000 requests waiting at once need as many sockets on each side.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec perl bench/run.pl
