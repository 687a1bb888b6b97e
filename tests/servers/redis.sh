#!/usr/bin/env bash
# Starts or stops a throw-away redis-server on a free 127.0.0.1 port, for the tests.
#
#   tests/servers/redis.sh start <dir>   start it (data, pid, log and port files in <dir>) and
#                                        print GOMODPROXY_TEST_REDIS_URL=redis://127.0.0.1:P/0
#   tests/servers/redis.sh stop <dir>    stop the server started with that <dir>
#
# Only the URL line goes to stdout; progress and errors go to stderr. In a `set -e` script:
#   line=$(tests/servers/redis.sh start "$dir")   # stops the script if the server did not start
#   export "$line"
# Needs redis-server and redis-cli (Debian package redis-server).
set -euo pipefail

me="tests/servers/redis.sh"
die() {
    echo "$me: $*" >&2
    exit 1
}
usage() {
    echo "usage: $me start|stop <dir>" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
action=$1
dir=$2

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' is not on PATH (install the Debian package redis-server)"
done

# True if something accepts TCP connections on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True while the process in the pid file is alive.
running() {
    local pid
    [ -s "$dir/redis.pid" ] || return 1
    pid=$(cat "$dir/redis.pid")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start() {
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if running; then
        die "a redis-server started with $dir is already running (pid $(cat "$dir/redis.pid"))"
    fi
    rm -f "$dir/redis.pid" "$dir/redis.port"
    local attempt port waited
    for attempt in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        : >"$dir/redis.log"
        redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" ||
            die "redis-server failed to start; see $dir/redis.log"
        # With --daemonize the command returns before the server listens: wait for PONG.
        for waited in $(seq 1 100); do
            if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
                echo "$port" >"$dir/redis.port"
                echo "$me: redis-server listening on 127.0.0.1:$port (pid $(cat "$dir/redis.pid"), log $dir/redis.log)" >&2
                echo "GOMODPROXY_TEST_REDIS_URL=redis://127.0.0.1:$port/0"
                return 0
            fi
            # Lost a race for the port: the daemon exits; try another one.
            if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then
                break
            fi
            sleep 0.05
        done
        if grep -q "Address already in use" "$dir/redis.log" 2>/dev/null; then
            echo "$me: port $port was taken meanwhile (attempt $attempt), trying another" >&2
            continue
        fi
        tail -n 20 "$dir/redis.log" >&2 || true
        die "redis-server on port $port did not answer PING within 5 s; see $dir/redis.log"
    done
    die "no free port found for redis-server after 20 attempts"
}

stop() {
    [ -d "$dir" ] || die "$dir does not exist: nothing was started there"
    if ! running; then
        echo "$me: no redis-server running for $dir" >&2
        rm -f "$dir/redis.pid" "$dir/redis.port"
        return 0
    fi
    local pid port waited
    pid=$(cat "$dir/redis.pid")
    port=$(cat "$dir/redis.port" 2>/dev/null || true)
    if [ -n "$port" ]; then
        redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    for waited in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        if [ "$waited" -eq 50 ]; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        echo "$me: redis-server (pid $pid) did not stop; killed it" >&2
    fi
    rm -f "$dir/redis.pid" "$dir/redis.port"
    echo "$me: redis-server (pid $pid) stopped" >&2
}

case "$action" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
