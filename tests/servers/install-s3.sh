#!/usr/bin/env bash
# Installs the S3-compatible server that the S3 storage tests run against, into a cache
# directory; does nothing when the right version is already there. Safe to run on every CI run.
#
#   tests/servers/install-s3.sh            # s3s-fs (the default)
#   GOMODPROXY_TEST_S3_SERVER=minio tests/servers/install-s3.sh
#
# Which server (see crates/storage-s3/README.md for the measurements behind the choice):
# - s3s-fs (default): a real S3 server from crates.io (s3s-fs 0.14.1; 0.15+ needs a newer rustc),
#   SigV4 enforced, atomic writes (temporary file + rename), multipart uploads. Builds with cargo
#   in about 2 minutes.
# - minio: what users run in docker-compose, built with `go install` (pinned to the last
#   commit of the now unmaintained upstream). Builds in 9-13 minutes on 2 cores and is 150 MB,
#   so CI does not use it; run the tests against it locally before changing the S3 backend.
#
# Environment: GOMODPROXY_TEST_TOOLS (default $HOME/.cache/gomodproxy-test-tools) is the cache;
# binaries go to its bin/. Needs cargo (s3s-fs) or go (minio).
set -euo pipefail

S3S_FS_VERSION=0.14.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

tools="${GOMODPROXY_TEST_TOOLS:-$HOME/.cache/gomodproxy-test-tools}"
server="${GOMODPROXY_TEST_S3_SERVER:-s3s-fs}"
mkdir -p "$tools/bin"

case "$server" in
s3s-fs)
    bin="$tools/bin/s3s-fs"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF " $S3S_FS_VERSION"; then
        echo "install-s3.sh: s3s-fs $S3S_FS_VERSION already installed at $bin"
        exit 0
    fi
    command -v cargo >/dev/null 2>&1 || { echo "install-s3.sh: cargo is needed to build s3s-fs" >&2; exit 1; }
    echo "install-s3.sh: building s3s-fs $S3S_FS_VERSION into $tools (about 2 minutes)"
    cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --locked --force --root "$tools"
    ;;
minio)
    bin="$tools/bin/minio"
    if [ -x "$bin" ] && command -v go >/dev/null 2>&1 &&
        go version -m "$bin" 2>/dev/null | grep -qF "$MINIO_VERSION"; then
        echo "install-s3.sh: minio $MINIO_VERSION already installed at $bin"
        exit 0
    fi
    command -v go >/dev/null 2>&1 || { echo "install-s3.sh: go is needed to build minio" >&2; exit 1; }
    echo "install-s3.sh: building minio $MINIO_VERSION into $tools (10 minutes or more)"
    GOFLAGS=-mod=mod GOBIN="$tools/bin" go install "github.com/minio/minio@$MINIO_VERSION"
    ;;
*)
    echo "install-s3.sh: unknown GOMODPROXY_TEST_S3_SERVER '$server' (s3s-fs or minio)" >&2
    exit 1
    ;;
esac
"$bin" --version | head -n 1
echo "install-s3.sh: installed $bin"
