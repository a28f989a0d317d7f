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

if ! command -v node >/dev/null 2>&1; then
    echo "Node.js 20 or later is needed for the SQS emulator (fauxqs)." >&2
    exit 1
fi

top=$(cd "$(dirname "$0")/.." && pwd)
if [ -f "$top/tests/package-lock.json" ]; then
    stamp="$top/tests/node_modules/.package-lock.json"
    if [ ! -f "$stamp" ] || [ "$top/tests/package-lock.json" -nt "$stamp" ]; then
        (cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
