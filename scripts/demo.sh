#!/bin/bash
# make demo: both modes side by side on a throw-away stack.
#
# Starts the local SQS emulator (or uses the real queue a top-level .env
# names), raceqd and httpd with mod_raceq from the build tree, all in one
# temporary directory; fires the same scenario at /race and at /fifo with
# bin/raceq-fire; prints what it found; stops everything it started.
#
# Settings, from the environment (make demo USERS=10 ...):
#   USERS=3 PER_USER=5   the scenario: PER_USER requests for each user, at once
#   DELAY="1 200"        the toy write's random duration, in milliseconds
#   KEEP=1               leave the stack running for curl and ab until Ctrl-C
#   JSON=1               print one JSON document (raceq-fire --json per mode)
#   QUICK=1              a short form (DELAY "1 20" unless DELAY is set)
#   ENV_FILE=PATH        the .env that may name a real queue (default: ./.env;
#                        empty: always the local emulator)
#
# Exit status: 0 when both modes ran and fifo mode lost nothing and kept
# every user's order (race mode losing updates is what it shows); 1 when
# fifo mode lost or reordered a write, or a request failed; 2 for a bad
# setting; 3 when a part could not be started; 130/143 when interrupted.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 3

USERS=${USERS:-3}
PER_USER=${PER_USER:-5}
QUICK=${QUICK:-}
KEEP=${KEEP:-}
JSON=${JSON:-}
if [ -n "$QUICK" ] && [ "$QUICK" != 0 ]; then
    DELAY=${DELAY:-1 20}
else
    DELAY=${DELAY:-1 200}
fi
ENV_FILE=${ENV_FILE-$top/.env}
HTTPD=${RACEQ_DEMO_HTTPD:-/usr/sbin/apache2}
MODULES=${RACEQ_DEMO_MODULES_DIR:-/usr/lib/apache2/modules}

is_on() { [ -n "$1" ] && [ "$1" != 0 ]; }

# Progress goes to stderr with JSON=1, so that stdout is the document alone.
say() {
    if is_on "$JSON"; then
        printf '%s\n' "$*" >&2
    else
        printf '%s\n' "$*"
    fi
}

die_usage() {
    echo "demo: $*" >&2
    exit 2
}

is_uint() { [[ $1 =~ ^[0-9]{1,6}$ ]]; }

in_range() { is_uint "$1" && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }

if ! in_range "$USERS" 1 10000; then
    die_usage "USERS must be a number from 1 to 10000, not '$USERS'"
fi
if ! in_range "$PER_USER" 1 10000; then
    die_usage "PER_USER must be a number from 1 to 10000, not '$PER_USER'"
fi
if [ $((USERS * PER_USER)) -gt 100000 ]; then
    die_usage "USERS x PER_USER must be at most 100000"
fi
read -r delay_min delay_max delay_rest <<<"$DELAY"
if ! in_range "${delay_min:-x}" 0 600000 || ! in_range "${delay_max:-x}" 0 600000 \
    || [ -n "$delay_rest" ] || [ "$delay_min" -gt "$delay_max" ]; then
    die_usage "DELAY must be \"MIN MAX\" in milliseconds, MIN <= MAX <= 600000, not '$DELAY'"
fi

# ---------------------------------------------------------------------------
# What the demo needs from the build and the machine.

missing=""
for f in bin/raceq-fire bin/raceqd bin/raceq-sqs .libs/mod_raceq.so; do
    [ -e "$f" ] || missing="$missing $f"
done
if [ -n "$missing" ]; then
    echo "demo: not built:$missing; run 'make demo' (or 'make')" >&2
    exit 3
fi
if [ ! -x "$HTTPD" ]; then
    echo "demo: $HTTPD is missing; run scripts/deps.sh (package apache2)" >&2
    exit 3
fi
command -v perl >/dev/null || { echo "demo: perl is missing" >&2; exit 3; }

# ---------------------------------------------------------------------------
# The temporary directory and stopping everything, whatever happens.

tmp=""
httpd_pid=""
raceqd_pid=""
fauxqs_pid=""
stopping=""

stop_pid() {
    local pid=$1 name=$2
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    for _ in $(seq 1 150); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    echo "demo: $name (pid $pid) did not stop in 15 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    [ -n "$stopping" ] && return
    stopping=1
    trap '' INT TERM
    stop_pid "$httpd_pid" httpd
    stop_pid "$raceqd_pid" raceqd
    # fauxqs also stops when its stdin (fd 7) closes, should this shell die.
    exec 7>&-
    stop_pid "$fauxqs_pid" fauxqs
    [ -n "$tmp" ] && rm -rf "$tmp"
    tmp=""
}

# shellcheck disable=SC2317  # called from a trap
on_signal() {
    local code=$1
    echo >&2
    echo "demo: interrupted; stopping what it started" >&2
    cleanup
    exit "$code"
}

keep_wait_done=""
# shellcheck disable=SC2317  # called from a trap
on_keep_signal() {
    keep_wait_done=1
}

# shellcheck disable=SC2317  # called from traps
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# The last lines of a log, leaving out the info/debug lines of every write
# when warnings or errors are there to show.
log_tail() {
    local file=$1 what=$2 serious
    [ -s "$file" ] || return 0
    serious=$(grep -v -E '\[[a-z_]+:(info|debug|trace[0-9])\]' "$file" | tail -n 25)
    if [ -n "$serious" ]; then
        echo "---- last warnings and errors in $what ($file) ----" >&2
        printf '%s\n' "$serious" >&2
    else
        echo "---- last lines of $what ($file) ----" >&2
        tail -n 25 "$file" >&2
    fi
    echo "----" >&2
}

fail_start() {
    echo "demo: $1" >&2
    shift
    while [ $# -ge 2 ]; do
        log_tail "$1" "$2"
        shift 2
    done
    exit 3
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/raceq-demo.XXXXXX") || exit 3
chmod 0755 "$tmp"

# As root, httpd's children and raceqd run as www-data: they own the
# directory and the store (SQLite keeps -wal and -shm files beside it).
run_as=""
if [ "$(id -u)" -eq 0 ]; then
    id www-data >/dev/null 2>&1 \
        || fail_start "user www-data is missing (Debian's apache2 creates it)"
    chown www-data:www-data "$tmp"
    : >"$tmp/toy.db"
    chown www-data:www-data "$tmp/toy.db"
    if setpriv --reuid=www-data --regid=www-data --init-groups bin/raceqd --version \
        >/dev/null 2>&1; then
        run_as="setpriv --reuid=www-data --regid=www-data --init-groups"
    fi
fi

free_port() {
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                      Proto => "tcp", Listen => 1) or die "no free port: $!\n";
        print $s->sockport, "\n";'
}

# ---------------------------------------------------------------------------
# The queue: a real one named by .env, else the emulator on loopback.

queue_kind=emulator
queue_url=""
endpoint=""
env_copy="$tmp/aws.env"

# The value of KEY in a .env file (the last one), quotes removed.
env_value() {
    local key="^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*"
    sed -n -E "s/${key}['\"]?([^'\" #]*).*/\\2/p" "$2" | tail -n 1
}

if [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ] && [ -n "$(env_value AWS_FIFO_URL "$ENV_FILE")" ]; then
    queue_kind=aws
    queue_url=$(env_value AWS_FIFO_URL "$ENV_FILE")
    cp "$ENV_FILE" "$env_copy"
else
    for v in $(env | sed -n 's/^\(AWS_[A-Za-z0-9_]*\)=.*/\1/p'); do
        unset "$v"
    done
    [ -f node_modules/fauxqs/package.json ] || [ -f tests/node_modules/fauxqs/package.json ] \
        || fail_start "the SQS emulator is not installed; run scripts/deps.sh (npm ci in tests/)"
    command -v node >/dev/null || fail_start "node is missing; run scripts/deps.sh"
    mkfifo "$tmp/fauxqs.stdin"
    node tests/fauxqs-server.mjs 0 <"$tmp/fauxqs.stdin" >"$tmp/fauxqs.port" \
        2>"$tmp/fauxqs.log" &
    fauxqs_pid=$!
    exec 7>"$tmp/fauxqs.stdin"
    for _ in $(seq 1 150); do
        [ -s "$tmp/fauxqs.port" ] && break
        kill -0 "$fauxqs_pid" 2>/dev/null || break
        sleep 0.1
    done
    port=$(head -n 1 "$tmp/fauxqs.port" 2>/dev/null)
    [[ $port =~ ^[0-9]+$ ]] || fail_start "the SQS emulator (fauxqs) did not start" \
        "$tmp/fauxqs.log" "fauxqs's output"
    endpoint="http://127.0.0.1:$port"
    cat >"$env_copy" <<EOF
# The local SQS emulator; it checks no signature, any key will do.
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=AKIDRACEQDEMO0000000
AWS_SECRET_ACCESS_KEY=raceq-demo-secret
AWS_ENDPOINT_URL_SQS=$endpoint
EOF
    queue_url=$(bin/raceq-sqs --env-file "$env_copy" create-queue raceq-demo.fifo \
        2>"$tmp/create-queue.err" 7>&-) \
        || fail_start "cannot create the FIFO queue on the emulator" \
            "$tmp/create-queue.err" "raceq-sqs" "$tmp/fauxqs.log" "fauxqs's output"
    echo "AWS_FIFO_URL=$queue_url" >>"$env_copy"
fi
chmod 0600 "$env_copy"
[ "$(id -u)" -eq 0 ] && chown www-data:www-data "$env_copy"

# ---------------------------------------------------------------------------
# raceqd, on the same store and a socket in the directory.

raceqd_args=(--foreground --env-file "$env_copy" --store "sqlite3 $tmp/toy.db"
             --socket "$tmp/raceqd.sock" --pid-file "$tmp/raceqd.pid"
             --log-file "$tmp/raceqd.log" --log-level info --wait-seconds 1
             --apply-delay "$delay_min $delay_max")
# shellcheck disable=SC2086
$run_as bin/raceqd "${raceqd_args[@]}" </dev/null >"$tmp/raceqd.out" 2>&1 7>&- &
raceqd_pid=$!
for _ in $(seq 1 200); do
    [ -S "$tmp/raceqd.sock" ] && break
    kill -0 "$raceqd_pid" 2>/dev/null || break
    sleep 0.05
done
if [ ! -S "$tmp/raceqd.sock" ]; then
    wait "$raceqd_pid" 2>/dev/null
    raceqd_pid=""
    fail_start "raceqd did not start" "$tmp/raceqd.log" "raceqd's log" \
        "$tmp/raceqd.out" "raceqd's output"
fi

# ---------------------------------------------------------------------------
# httpd: /race and /fifo on one loopback port, the same store.

write_httpd_conf() {
    local user_lines=""
    [ "$(id -u)" -eq 0 ] && user_lines=$'User www-data\nGroup www-data'
    sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|$http_port|g" -e "s|@MODULES@|$MODULES|g" \
        -e "s|@MODULE@|$top/.libs/mod_raceq.so|g" -e "s|@DELAY@|$delay_min $delay_max|g" \
        -e "s|@USER_LINES@|${user_lines//$'\n'/\\n}|" \
        conf/demo-httpd.conf.in >"$tmp/httpd.conf"
}

start_httpd() {
    : >"$tmp/error_log"
    [ "$(id -u)" -eq 0 ] && chown www-data:www-data "$tmp/error_log"
    "$HTTPD" -f "$tmp/httpd.conf" -DFOREGROUND </dev/null >"$tmp/httpd.out" 2>&1 7>&- &
    httpd_pid=$!
    for _ in $(seq 1 200); do
        if ! kill -0 "$httpd_pid" 2>/dev/null; then
            wait "$httpd_pid" 2>/dev/null
            httpd_pid=""
            return 1
        fi
        if perl -MIO::Socket::INET -e \
            'exit !IO::Socket::INET->new(PeerAddr => "127.0.0.1:'"$http_port"'", Timeout => 1)' \
            2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

started=""
for _ in 1 2 3; do
    http_port=$(free_port) || fail_start "no free loopback port"
    write_httpd_conf
    if start_httpd; then
        started=1
        break
    fi
    # Another program may have taken the port in between: try another one.
    grep -q "Address already in use" "$tmp/httpd.out" "$tmp/error_log" 2>/dev/null || break
done
[ -n "$started" ] || fail_start "httpd did not start" "$tmp/httpd.out" "httpd's output" \
    "$tmp/error_log" "httpd's error_log"

base="http://127.0.0.1:$http_port"

# ---------------------------------------------------------------------------
# The scenario, once per mode.

say "mod_raceq demo: $USERS users x $PER_USER requests each, all at once;" \
    "each write takes $delay_min-$delay_max ms"
if [ "$queue_kind" = aws ]; then
    say "queue:  the REAL SQS queue from $ENV_FILE: $queue_url"
else
    say "queue:  local SQS emulator (fauxqs) at $endpoint, FIFO queue raceq-demo.fifo"
fi
say "httpd:  $base/race and $base/fifo (pid $httpd_pid)"
say "raceqd: socket $tmp/raceqd.sock (pid $raceqd_pid)"
say "store:  $tmp/toy.db"

total=$((USERS * PER_USER))
conc=$total
[ "$conc" -gt 100 ] && conc=100

fire() {
    local mode=$1 rc
    wc -c <"$tmp/error_log" >"$tmp/$mode.error_log.from"
    wc -c <"$tmp/raceqd.log" >"$tmp/$mode.raceqd_log.from"
    bin/raceq-fire --url "$base/$mode" --users "$USERS" --per-user "$PER_USER" \
        --concurrency "$conc" --timeout 60 --json >"$tmp/$mode.json" 2>"$tmp/$mode.err" 7>&-
    rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$tmp/$mode.err" >&2
        echo "demo: raceq-fire failed against $base/$mode (exit $rc)" >&2
        log_tail "$tmp/error_log" "httpd's error_log"
        log_tail "$tmp/raceqd.log" "raceqd's log"
        exit 1
    fi
}

report() {
    perl scripts/demo-report.pl --dir "$tmp" --base "$base" "$@"
}

status=0
for mode in race fifo; do
    say ""
    say "firing $total requests at $base/$mode ..."
    fire "$mode"
    if ! is_on "$JSON"; then
        report section "$mode" || status=1
    fi
done

if is_on "$JSON"; then
    report json --queue "$queue_kind" --users "$USERS" --per-user "$PER_USER" \
        --delay "$delay_min $delay_max" || status=1
else
    say ""
    report summary || status=1
fi

if [ "$status" -ne 0 ]; then
    kill -0 "$httpd_pid" 2>/dev/null \
        || echo "demo: httpd (pid $httpd_pid) stopped during the run" >&2
    kill -0 "$raceqd_pid" 2>/dev/null \
        || echo "demo: raceqd (pid $raceqd_pid) stopped during the run" >&2
    log_tail "$tmp/error_log" "httpd's error_log"
    log_tail "$tmp/raceqd.log" "raceqd's log"
fi

if is_on "$KEEP"; then
    say ""
    say "The stack keeps running; Ctrl-C stops it. Try:"
    say "  curl -s -H 'Content-Type: application/json' \\"
    say "       -d '{\"req_id\":\"k1\",\"user_id\":\"alice\"}' $base/fifo"
    say "  curl -s $base/fifo/users/alice"
    say "  bin/raceq-fire --url $base/race --users 10 --per-user 20"
    say "  bin/raceq-fire --url $base/fifo --users 10 --per-user 20"
    # RaceQGenerateId On (conf/demo-httpd.conf.in) gives each request of a
    # fixed body without a req_id an id of its own: one write per request.
    say "  ab -n 100 -c 10 -p $top/bench/body.json -T application/json $base/fifo"
    say "  ab -n 100 -c 10 -p $top/bench/body.json -T application/json $base/race"
    say "    (one body without req_id: each request gets its own id and writes once)"
    say "  wrk -t2 -c16 -d3s -s $top/bench/wrk-raceq.lua $base/fifo -- 100 keep$$"
    say "    (a unique req_id per request, users drawn from 100; a new prefix per run)"
    say "  logs: $tmp/error_log  $tmp/raceqd.log"
    trap on_keep_signal INT TERM
    while [ -z "$keep_wait_done" ]; do
        if ! kill -0 "$httpd_pid" 2>/dev/null || ! kill -0 "$raceqd_pid" 2>/dev/null; then
            # Ctrl-C reaches the whole process group: raceqd may stop first.
            sleep 0.5
            [ -n "$keep_wait_done" ] && break
            echo "demo: httpd or raceqd stopped by itself" >&2
            log_tail "$tmp/error_log" "httpd's error_log"
            log_tail "$tmp/raceqd.log" "raceqd's log"
            status=1
            break
        fi
        sleep 0.5 &
        sleep_pid=$!
        wait "$sleep_pid" 2>/dev/null
        kill "$sleep_pid" 2>/dev/null
    done
    say ""
    say "stopping"
fi

cleanup
exit "$status"
