#!/usr/bin/env bash
# Starts and stops the S3-compatible test server on loopback.
#
#   tests/servers/s3.sh start DIR [PORT]   # data in DIR/data; a free port unless PORT is given
#   tests/servers/s3.sh stop DIR
#
# `start` waits until the server answers signed requests, creates the test bucket (through the
# S3 API, so it is the server's own doing), checks it, and prints
#   GOMODPROXY_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
#   GOMODPROXY_TEST_S3_BUCKET=gomodproxy-test
#   GOMODPROXY_TEST_S3_ACCESS_KEY=...
#   GOMODPROXY_TEST_S3_SECRET_KEY=...
# (also written to DIR/s3.env); e.g. `eval "$(tests/servers/s3.sh start /tmp/s3 | sed 's/^/export /')"`.
# Starting again with the same DIR keeps the data. `stop` ends the server it started (its pid is
# in DIR/s3.pid) and is a no-op when none runs.
#
# The server is MinIO unless GOMODPROXY_TEST_S3_SERVER=s3s-fs (see install-s3.sh for why). The
# binary is GOMODPROXY_TEST_S3_BIN if set, else the one tests/servers/install-s3.sh put in
# ${GOMODPROXY_TEST_TOOLS:-$HOME/.cache/gomodproxy-test-tools}/bin, else the one on PATH.
# Needs curl (for SigV4-signed requests).
set -euo pipefail

ACCESS_KEY=gomodproxytest
SECRET_KEY=gomodproxytest-secret
BUCKET=gomodproxy-test
READY_TIMEOUT=60 # seconds

die() {
    echo "s3.sh: $*" >&2
    exit 1
}

usage() {
    die "usage: s3.sh start DIR [PORT] | s3.sh stop DIR"
}

server="${GOMODPROXY_TEST_S3_SERVER:-minio}"
case "$server" in
minio | s3s-fs) ;;
*) die "unknown GOMODPROXY_TEST_S3_SERVER '$server' (minio or s3s-fs)" ;;
esac

find_binary() {
    local tools="${GOMODPROXY_TEST_TOOLS:-$HOME/.cache/gomodproxy-test-tools}"
    if [ -n "${GOMODPROXY_TEST_S3_BIN:-}" ]; then
        [ -x "$GOMODPROXY_TEST_S3_BIN" ] || die "GOMODPROXY_TEST_S3_BIN=$GOMODPROXY_TEST_S3_BIN is not executable"
        echo "$GOMODPROXY_TEST_S3_BIN"
    elif [ -x "$tools/bin/$server" ]; then
        echo "$tools/bin/$server"
    elif command -v "$server" >/dev/null 2>&1; then
        command -v "$server"
    else
        die "$server not found; install it with tests/servers/install-s3.sh"
    fi
}

# SHA-256 of an empty body: s3s insists on the x-amz-content-sha256 header, which curl does not
# send by itself.
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# A SigV4-signed S3 request without a body; prints the HTTP status.
s3_request() {
    local method=$1 url=$2 how=(-X "$1")
    # -X HEAD would wait for the body that Content-Length announces.
    [ "$method" = HEAD ] && how=(--head)
    curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "${how[@]}" \
        -H "x-amz-content-sha256: $EMPTY_SHA256" \
        --aws-sigv4 "aws:amz:us-east-1:s3" --user "$ACCESS_KEY:$SECRET_KEY" "$url" 2>/dev/null || true
}

# Whether something accepts connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running_pid() {
    local pidfile="$1/s3.pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Launches the server on $port in the background; sets $pid.
launch() {
    local dir=$1 port=$2 bin=$3
    case "$server" in
    s3s-fs)
        "$bin" --host 127.0.0.1 --port "$port" --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
            "$dir/data" >>"$dir/s3.log" 2>&1 </dev/null &
        ;;
    minio)
        MINIO_ROOT_USER="$ACCESS_KEY" MINIO_ROOT_PASSWORD="$SECRET_KEY" MINIO_BROWSER=off \
            MINIO_UPDATE=off "$bin" server "$dir/data" --address "127.0.0.1:$port" --quiet \
            >>"$dir/s3.log" 2>&1 </dev/null &
        ;;
    esac
    pid=$!
    echo "$pid" >"$dir/s3.pid"
}

# Whether process $1 runs (an exited child of this script stays a zombie until reaped, and
# `kill -0` succeeds on zombies).
alive() {
    local state
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Waits until the server on $port answers a signed ListBuckets; fails if the process exits.
wait_ready() {
    local port=$1 deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$pid" || return 1
        if [ "$(s3_request GET "http://127.0.0.1:$port/")" = 200 ]; then
            return 0
        fi
        sleep 0.2
    done
    return 2
}

start() {
    local dir=$1 want_port=${2:-} bin port status attempt
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if pid=$(running_pid "$dir"); then
        die "a server started in $dir is still running (pid $pid); stop it first"
    fi
    bin=$(find_binary)
    echo "$server" >"$dir/server"
    : >"$dir/s3.log"
    for attempt in $(seq 1 20); do
        if [ -n "$want_port" ]; then
            port=$want_port
        else
            # Below Linux's ephemeral range, so outgoing connections do not take it meanwhile.
            port=$((20000 + RANDOM % 12000))
            port_in_use "$port" && continue
        fi
        launch "$dir" "$port" "$bin"
        status=0
        wait_ready "$port" || status=$?
        if [ "$status" -eq 0 ]; then
            break
        fi
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        rm -f "$dir/s3.pid"
        if [ "$status" -eq 2 ]; then
            die "$server on port $port not ready after ${READY_TIMEOUT}s; log: $dir/s3.log"$'\n'"$(tail -n 20 "$dir/s3.log")"
        fi
        if [ -n "$want_port" ]; then
            die "$server exited at start on port $port; log: $dir/s3.log"$'\n'"$(tail -n 20 "$dir/s3.log")"
        fi
        echo "s3.sh: $server exited at start on port $port (taken?), trying another" >&2
        [ "$attempt" -lt 20 ] || die "no port found for $server; log: $dir/s3.log"
    done

    local endpoint="http://127.0.0.1:$port" code
    code=$(s3_request PUT "$endpoint/$BUCKET")
    # 409: BucketAlreadyOwnedByYou, when the data directory is reused.
    case "$code" in
    200 | 409) ;;
    *) die "creating bucket $BUCKET on $endpoint answered HTTP $code; log: $dir/s3.log" ;;
    esac
    code=$(s3_request HEAD "$endpoint/$BUCKET")
    [ "$code" = 200 ] || die "bucket $BUCKET on $endpoint is not there after creating it (HTTP $code)"

    cat >"$dir/s3.env" <<EOF
GOMODPROXY_TEST_S3_ENDPOINT=$endpoint
GOMODPROXY_TEST_S3_BUCKET=$BUCKET
GOMODPROXY_TEST_S3_ACCESS_KEY=$ACCESS_KEY
GOMODPROXY_TEST_S3_SECRET_KEY=$SECRET_KEY
EOF
    cat "$dir/s3.env"
    echo "s3.sh: $server (pid $pid) serving $endpoint, data in $dir/data" >&2
}

stop() {
    local dir=$1 pid _
    [ -d "$dir" ] || return 0
    if pid=$(running_pid "$dir"); then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "s3.sh: pid $pid did not stop in 10 s; killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/s3.pid"
}

[ $# -ge 2 ] || usage
command -v curl >/dev/null 2>&1 || die "curl is needed (SigV4-signed requests)"
case "$1" in
start) [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
stop) [ $# -eq 2 ] || usage; stop "$2" ;;
*) usage ;;
esac
