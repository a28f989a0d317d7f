#!/bin/sh
# Runs every test: the C unit tests of lib/ and the Perl harness files, under prove.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# A Node.js installed by scripts/deps.sh into tests/.node comes first.
if [ -x "$top/tests/.node/node_modules/.bin/node" ]; then
    PATH="$top/tests/.node/node_modules/.bin:$PATH"
    export PATH
fi
exec prove -I tests/lib ${PROVE_ARGS:-} tests/unit/bin/test_* tests/*.t
