#!/usr/bin/env bash
# Runs the stack of docker-compose.yml from local binaries on loopback, for machines without a
# Docker engine: MinIO with the proxy's bucket, redis-server, and gomodproxy in front of them.
#
#   deploy/local-stack.sh up [DIR]       start all three; prints GOPROXY=http://127.0.0.1:PORT
#   deploy/local-stack.sh status [DIR]   what runs, and the proxy's /readyz (exit 0: all ready)
#   deploy/local-stack.sh down [DIR]     stop what `up` started; the data stays in DIR
#
# DIR (default: target/local-stack in this repository) holds each server's data, log, port and
# pid file. MinIO's objects and Redis's append-only file persist across down/up, as the compose
# volumes do; `rm -rf DIR` after `down` starts afresh.
#
# The proxy's environment is deploy/gomodproxy.env, the file docker-compose.yml gives the
# container, with only the addresses changed: http://minio:9000 and redis://redis:6379 become the
# loopback ports of the MinIO and redis-server started here, and GOMODPROXY_LISTEN becomes
# 127.0.0.1:PORT. The S3 credentials are MinIO's root user, MINIO_ROOT_USER and
# MINIO_ROOT_PASSWORD, with the same defaults as in docker-compose.yml. Nothing else from the
# caller's environment reaches the proxy (`env -i`); DIR/gomodproxy/gomodproxy.env shows what it
# got and DIR/gomodproxy/config.toml what that means (secrets redacted).
#
# Environment:
#   LOCAL_STACK_PORT   the proxy's port (default 3000; 0 picks a free one)
#   LOCAL_STACK_BIN    the gomodproxy binary (default: the release build in target/, else the
#                      debug build; `cargo build --release -p gomodproxy` makes one)
#   LOCAL_STACK_MINIO  the minio binary (default: the one tests/servers/install-s3.sh builds into
#                      ${GOMODPROXY_TEST_TOOLS:-~/.cache/gomodproxy-test-tools}/bin, else PATH)
#   MINIO_ROOT_USER, MINIO_ROOT_PASSWORD   as in docker-compose.yml
# Needs curl, redis-server and redis-cli (Debian package redis-server), and minio.
set -euo pipefail

me=deploy/local-stack.sh
repo=$(cd "$(dirname "$0")/.." && pwd)
env_file="$repo/deploy/gomodproxy.env"

# Where docker-compose.yml's services are reached from the proxy container, as
# deploy/gomodproxy.env names them; replaced by the loopback addresses of this stack.
COMPOSE_MINIO=minio:9000
COMPOSE_REDIS=redis:6379
# As in docker-compose.yml.
MINIO_USER=${MINIO_ROOT_USER:-gomodproxy}
MINIO_PASSWORD=${MINIO_ROOT_PASSWORD:-gomodproxy-local-secret}

READY_TIMEOUT=60 # seconds, per server
STOP_TIMEOUT=45  # seconds; longer than the proxy's default shutdown_timeout (30 s)

die() {
    echo "$me: $*" >&2
    exit 1
}
say() {
    echo "$me: $*" >&2
}
usage() {
    echo "usage: $me up|down|status [DIR]" >&2
    exit 2
}

# Whether something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A port nothing listens on, below Linux's ephemeral range so that outgoing connections do not
# take it before the server binds it.
free_port() {
    local port _
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 12000))
        port_in_use "$port" || {
            echo "$port"
            return 0
        }
    done
    die "no free port found in 50 tries"
}

# Process $1's start time in clock ticks since boot (field 22 of /proc/PID/stat), which tells
# the process apart from a later one that reuses its pid.
start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # Fields from the state (field 3) on, split on spaces; the start time is field 22.
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}

# Whether the process recorded in $1 (a pid file: "PID STARTTIME") still runs and is that
# process (a zombie does not count).
recorded_alive() {
    local pidfile=$1 pid started state
    [ -s "$pidfile" ] || return 1
    read -r pid started <"$pidfile" || return 1
    [ -n "$pid" ] && [ -n "$started" ] || return 1
    [ "$(start_time "$pid")" = "$started" ] || return 1
    state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# Records the process $2 (just started) in the pid file $1. A process already gone is recorded
# with no start time, which `recorded_alive` never matches.
record() {
    echo "$2 $(start_time "$2" || echo gone)" >"$1"
}

# Stops the process recorded in pid file $1 (named $2): SIGTERM, then SIGKILL after $3 seconds.
stop_recorded() {
    local pidfile=$1 name=$2 timeout=$3 pid _
    if ! recorded_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    read -r pid _ <"$pidfile"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((timeout * 10))); do
        recorded_alive "$pidfile" || break
        sleep 0.1
    done
    if recorded_alive "$pidfile"; then
        say "$name (pid $pid) did not stop in ${timeout}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            recorded_alive "$pidfile" || break
            sleep 0.1
        done
    fi
    # Reap it if it is our child (it is when `up` cleans up after a failure).
    wait "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    say "$name (pid $pid) stopped"
}

# A SigV4-signed S3 request without a body (as tests/servers/s3.sh makes them); prints the HTTP
# status, 000 when nothing answered.
s3_request() {
    local method=$1 url=$2 region=$3 how=(-X "$1")
    # -X HEAD would wait for the body that Content-Length announces.
    [ "$method" = HEAD ] && how=(--head)
    curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "${how[@]}" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        --aws-sigv4 "aws:amz:$region:s3" --user "$MINIO_USER:$MINIO_PASSWORD" "$url" 2>/dev/null || true
}

# Waits until the command $2 succeeds while the process in pid file $1 runs. Returns 0 once it
# did, 1 if the process exited, 2 after READY_TIMEOUT seconds.
wait_until() {
    local pidfile=$1 check=$2 deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        recorded_alive "$pidfile" || return 1
        "$check" && return 0
        sleep 0.2
    done
    return 2
}

minio_ready() {
    [ "$(s3_request GET "http://127.0.0.1:$minio_port/" us-east-1)" = 200 ]
}
redis_ready() {
    [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]
}
proxy_ready() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$proxy_port/readyz" 2>/dev/null)" = 200 ]
}

# Starts server $1 (a name, and the subdirectory of DIR it keeps its files in) with the command
# `launch_$1 PORT` on a free port, retrying on another port when it exits at start (a port
# taken meanwhile), and waits until `$1_ready` succeeds; sets `$1_port`.
start_server() {
    local name=$1 log="$dir/$1/$1.log" port attempt rc
    mkdir -p "$dir/$name"
    : >"$log"
    for attempt in $(seq 1 10); do
        port=$(free_port)
        printf -v "${name}_port" %s "$port"
        "launch_$name" "$port" >>"$log" 2>&1 </dev/null &
        record "$dir/$name/pid" $!
        echo "$port" >"$dir/$name/port"
        rc=0
        wait_until "$dir/$name/pid" "${name}_ready" || rc=$?
        case $rc in
        0)
            say "$name (pid $(cut -d' ' -f1 "$dir/$name/pid")) listening on 127.0.0.1:$port, files in $dir/$name"
            return 0
            ;;
        1)
            stop_recorded "$dir/$name/pid" "$name" 5 2>/dev/null
            say "$name exited at start on port $port (attempt $attempt; port taken?), trying another port"
            ;;
        *)
            die "$name on port $port not ready after ${READY_TIMEOUT}s; log $log:"$'\n'"$(tail -n 20 "$log")"
            ;;
        esac
    done
    die "$name did not start; log $log:"$'\n'"$(tail -n 20 "$log")"
}

find_minio() {
    local tools="${GOMODPROXY_TEST_TOOLS:-$HOME/.cache/gomodproxy-test-tools}"
    if [ -n "${LOCAL_STACK_MINIO:-}" ]; then
        [ -x "$LOCAL_STACK_MINIO" ] || die "LOCAL_STACK_MINIO=$LOCAL_STACK_MINIO is not executable"
        echo "$LOCAL_STACK_MINIO"
    elif [ -x "$tools/bin/minio" ]; then
        echo "$tools/bin/minio"
    elif command -v minio >/dev/null 2>&1; then
        command -v minio
    else
        die "minio not found: build it with tests/servers/install-s3.sh, or set LOCAL_STACK_MINIO"
    fi
}

find_proxy() {
    local target="${CARGO_TARGET_DIR:-$repo/target}"
    if [ -n "${LOCAL_STACK_BIN:-}" ]; then
        [ -x "$LOCAL_STACK_BIN" ] || die "LOCAL_STACK_BIN=$LOCAL_STACK_BIN is not executable"
        echo "$LOCAL_STACK_BIN"
    elif [ -x "$target/release/gomodproxy" ]; then
        echo "$target/release/gomodproxy"
    elif [ -x "$target/debug/gomodproxy" ]; then
        echo "$target/debug/gomodproxy"
    else
        die "no gomodproxy binary in $target: build one with 'cargo build --release -p gomodproxy', or set LOCAL_STACK_BIN"
    fi
}

# Reads deploy/gomodproxy.env into the array `proxy_env` (KEY=VALUE), with the compose service
# addresses replaced by this stack's; sets `bucket` and `region`.
load_proxy_env() {
    local minio_port=$1 redis_port=$2 proxy_port=$3 n=0 line key value listen_seen=""
    proxy_env=()
    bucket="" region=us-east-1
    [ -f "$env_file" ] || die "$env_file is missing"
    while IFS= read -r line || [ -n "$line" ]; do
        n=$((n + 1))
        line=${line%$'\r'}
        case $line in '' | '#'*) continue ;; esac
        [[ $line =~ ^(GOMODPROXY_[A-Z0-9_]+)=(.*)$ ]] ||
            die "$env_file:$n: want GOMODPROXY_KEY=VALUE, got: $line"
        key=${BASH_REMATCH[1]}
        value=${BASH_REMATCH[2]}
        case $value in
        *'$'* | \"* | \'*) die "$env_file:$n: $key: quotes and \$ are not allowed (values are taken verbatim)" ;;
        esac
        value=${value//"//$COMPOSE_MINIO"/"//127.0.0.1:$minio_port"}
        value=${value//"//$COMPOSE_REDIS"/"//127.0.0.1:$redis_port"}
        value=${value//"@$COMPOSE_REDIS"/"@127.0.0.1:$redis_port"}
        case $key in
        GOMODPROXY_LISTEN)
            value=127.0.0.1:$proxy_port
            listen_seen=1
            ;;
        GOMODPROXY_STORAGE__TYPE)
            [ "$value" = s3 ] || die "$env_file: GOMODPROXY_STORAGE__TYPE=$value; this script runs the S3 (MinIO) stack of docker-compose.yml"
            ;;
        GOMODPROXY_STORAGE__S3__BUCKET) bucket=$value ;;
        GOMODPROXY_STORAGE__S3__REGION) [ -z "$value" ] || region=$value ;;
        GOMODPROXY_STORAGE__S3__ACCESS_KEY_ID | GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY)
            die "$env_file: $key belongs in docker-compose.yml (MINIO_ROOT_USER / MINIO_ROOT_PASSWORD), not in the shared file"
            ;;
        esac
        # An address of a compose service this script does not replace would point nowhere.
        if [[ $value =~ (//|@)(minio|redis)(:|/|$) ]]; then
            die "$env_file:$n: $key=$value names a compose service address that $me does not map to loopback (it maps $COMPOSE_MINIO and $COMPOSE_REDIS)"
        fi
        proxy_env+=("$key=$value")
    done <"$env_file"
    [ -n "$bucket" ] || die "$env_file: GOMODPROXY_STORAGE__S3__BUCKET is not set"
    [ -n "$listen_seen" ] || proxy_env+=("GOMODPROXY_LISTEN=127.0.0.1:$proxy_port")
    # As the x-s3-credentials of docker-compose.yml.
    proxy_env+=(
        "GOMODPROXY_STORAGE__S3__ACCESS_KEY_ID=$MINIO_USER"
        "GOMODPROXY_STORAGE__S3__SECRET_ACCESS_KEY=$MINIO_PASSWORD"
    )
}

launch_minio() {
    MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" MINIO_BROWSER=off \
        MINIO_UPDATE=off exec "$minio_bin" server "$dir/minio/data" --address "127.0.0.1:$1" --quiet
}

create_bucket() {
    local endpoint="http://127.0.0.1:$minio_port" code
    code=$(s3_request PUT "$endpoint/$bucket" "$region")
    # 409: BucketAlreadyOwnedByYou, when DIR is reused.
    case $code in
    200 | 409) ;;
    *) die "creating bucket $bucket on $endpoint answered HTTP $code; log $dir/minio/minio.log" ;;
    esac
    code=$(s3_request HEAD "$endpoint/$bucket" "$region")
    [ "$code" = 200 ] || die "bucket $bucket on $endpoint is not there after creating it (HTTP $code)"
    say "bucket $bucket ready"
}

launch_redis() {
    # As the compose service: append-only file, fsync once a second.
    exec redis-server --bind 127.0.0.1 --port "$1" --dir "$dir/redis" \
        --appendonly yes --appendfsync everysec --daemonize no
}

start_proxy() {
    local log="$dir/gomodproxy/gomodproxy.log" line rc=0
    mkdir -p "$dir/gomodproxy"
    : >"$log"
    (
        umask 077
        printf '%s\n' "${proxy_env[@]}" >"$dir/gomodproxy/gomodproxy.env"
    )
    # The binary's own check names a bad key before anything listens.
    if ! env -i "PATH=$PATH" "${proxy_env[@]}" "$proxy_bin" config check \
        >"$dir/gomodproxy/config.toml" 2>"$dir/gomodproxy/config-check.err"; then
        die "gomodproxy config check refused the environment in $dir/gomodproxy/gomodproxy.env:"$'\n'"$(cat "$dir/gomodproxy/config-check.err")"
    fi
    env -i "PATH=$PATH" "${proxy_env[@]}" "$proxy_bin" serve >>"$log" 2>&1 </dev/null &
    record "$dir/gomodproxy/pid" $!
    echo "$proxy_port" >"$dir/gomodproxy/port"
    wait_until "$dir/gomodproxy/pid" proxy_ready || rc=$?
    case $rc in
    0) ;;
    1) die "gomodproxy exited at start; log $log:"$'\n'"$(tail -n 20 "$log")" ;;
    *) die "gomodproxy /readyz not 200 after ${READY_TIMEOUT}s; log $log:"$'\n'"$(tail -n 20 "$log")" ;;
    esac
    say "gomodproxy (pid $(cut -d' ' -f1 "$dir/gomodproxy/pid"), $proxy_bin) listening on 127.0.0.1:$proxy_port, log $log"
    say "its environment (deploy/gomodproxy.env with loopback addresses, and the S3 credentials):"
    for line in "${proxy_env[@]}"; do
        case $line in
        *SECRET*) line="${line%%=*}=<redacted>" ;;
        *://*@*) line="${line%%://*}://<redacted>@${line##*@}" ;;
        esac
        say "  $line"
    done
}

# Whether any server of this stack runs from $dir.
any_running() {
    local pidfile
    for pidfile in "$dir/gomodproxy/pid" "$dir/redis/pid" "$dir/minio/pid"; do
        recorded_alive "$pidfile" && return 0
    done
    return 1
}

stop_all() {
    stop_recorded "$dir/gomodproxy/pid" gomodproxy "$STOP_TIMEOUT"
    stop_recorded "$dir/redis/pid" redis 20
    stop_recorded "$dir/minio/pid" minio 20
}

up() {
    for tool in curl redis-server redis-cli; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not on PATH (curl; Debian package redis-server)"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if any_running; then
        die "a stack started in $dir is running; '$me status $dir' shows it, '$me down $dir' stops it"
    fi
    # Checked before anything starts, so that a missing binary or a taken port costs nothing.
    minio_bin=$(find_minio)
    proxy_bin=$(find_proxy)
    proxy_port=${LOCAL_STACK_PORT:-3000}
    [[ $proxy_port =~ ^[0-9]+$ ]] || die "LOCAL_STACK_PORT=$proxy_port is not a port number"
    if [ "$proxy_port" = 0 ]; then
        proxy_port=$(free_port)
    elif port_in_use "$proxy_port"; then
        die "port $proxy_port is in use; set LOCAL_STACK_PORT to another port (0 picks a free one)"
    fi
    load_proxy_env 1 1 "$proxy_port" # the file's errors, before anything starts
    mkdir -p "$dir/minio/data"

    # From here on, a failure or an interrupt stops what this run started.
    trap 'rc=$?; trap - EXIT INT TERM; if [ "$rc" -ne 0 ]; then say "failed; stopping what was started"; stop_all; fi; exit "$rc"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    start_server minio
    start_server redis
    load_proxy_env "$minio_port" "$redis_port" "$proxy_port"
    create_bucket
    start_proxy
    trap - EXIT INT TERM
    say "up; '$me status $dir' checks it, '$me down $dir' stops it"
    echo "GOPROXY=http://127.0.0.1:$proxy_port"
}

down() {
    if [ ! -d "$dir" ]; then
        say "nothing was started in $dir"
        return 0
    fi
    dir=$(cd "$dir" && pwd)
    if ! any_running; then
        say "nothing runs from $dir"
    fi
    stop_all
    rm -f "$dir"/*/port
}

status() {
    local name pidfile pid _ port ok=0 code
    [ -d "$dir" ] || die "nothing was started in $dir"
    dir=$(cd "$dir" && pwd)
    for name in minio redis gomodproxy; do
        pidfile="$dir/$name/pid"
        if recorded_alive "$pidfile"; then
            read -r pid _ <"$pidfile"
            port=$(cat "$dir/$name/port" 2>/dev/null || echo '?')
            echo "$name: running, pid $pid, 127.0.0.1:$port"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    if recorded_alive "$dir/gomodproxy/pid"; then
        port=$(cat "$dir/gomodproxy/port")
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/readyz" 2>/dev/null || true)
        echo "gomodproxy /readyz: HTTP $code"
        [ "$code" = 200 ] || ok=1
        echo "GOPROXY=http://127.0.0.1:$port"
    fi
    return "$ok"
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
fi
dir=${2:-$repo/target/local-stack}
case $1 in
up) up ;;
down) down ;;
status) status || exit 3 ;;
*) usage ;;
esac
