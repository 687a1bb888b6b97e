#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the storage conformance suite and the end-to-end
# tests that drive the real `go` command against the real gomodproxy binary.
#
# Needs: cargo, go (on PATH). The e2e tests build the gomodproxy binary themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cargo go; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "tests/run.sh: '$tool' is not on PATH; the tests need it (see README.md)" >&2
        exit 1
    fi
done

# The e2e harness runs this binary; build it once up front so parallel tests don't race to.
cargo build --locked -p gomodproxy
cargo test --locked --workspace --all-targets "$@"
