#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the storage conformance suite against every
# backend on a real instance of its store (a temp dir, sled, a real redis-server and a real
# MinIO on loopback), and the end-to-end tests that drive the real `go` command against the real
# gomodproxy binary.
#
# Needs: cargo, go, curl, redis-server (Debian package redis-server); .ci/run installs what is
# missing. MinIO is built from source once per machine by tests/servers/install-s3.sh (cached in
# ~/.cache/gomodproxy-test-tools; about 8 minutes on two cores the first time). The servers are
# started here on free 127.0.0.1 ports and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo go curl redis-server; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "tests/run.sh: '$tool' is not on PATH; the tests need it (see README.md, .ci/run installs it)" >&2
        exit 1
    fi
done

servers=$(mktemp -d -t gomodproxy-test-servers.XXXXXX)
stop_servers() {
    tests/servers/redis.sh stop "$servers/redis" >/dev/null 2>&1 || true
    tests/servers/s3.sh stop "$servers/s3" >/dev/null 2>&1 || true
    rm -rf "$servers"
}
trap stop_servers EXIT

mkdir -p "$servers/redis"
line=$(tests/servers/redis.sh start "$servers/redis")
export "${line?}"
echo "tests/run.sh: $line" >&2

tests/servers/install-s3.sh >&2
mkdir -p "$servers/s3"
s3_env=$(tests/servers/s3.sh start "$servers/s3")
while IFS= read -r line; do
    export "${line?}"
done <<<"$s3_env"
echo "tests/run.sh: S3 server at $GOMODPROXY_TEST_S3_ENDPOINT" >&2

# Tests that need a server fail (instead of skipping) when its variable is missing.
export GOMODPROXY_TEST_REQUIRE_SERVERS=1

# The e2e harness runs this binary; build it once up front so parallel tests don't race to.
cargo build --locked -p gomodproxy
cargo test --locked --workspace --all-targets "$@"
