#!/bin/sh
# Runs every test: the C unit tests of lib/ and the Perl harness files, under prove.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
exec prove -I tests/lib ${PROVE_ARGS:-} tests/unit/bin/test_* tests/*.t
