#!/usr/bin/env bash
# Installs the S3-compatible server that the S3 storage tests run against, into a cache
# directory; does nothing when the pinned version is already there. Safe to run on every CI run.
#
#   tests/servers/install-s3.sh                                  # MinIO (the default)
#   GOMODPROXY_TEST_S3_SERVER=s3s-fs tests/servers/install-s3.sh # the lighter alternative
#
# Which server and why (measurements and details in the crate docs of crates/storage-s3):
# - minio (default): what users run (docker-compose), built from source with `go install`
#   through the Go module proxy, pinned to the last commit of the upstream repository (no longer
#   maintained). Answers like S3 where this backend depends on it: NoSuchBucket for requests in a
#   missing bucket, ListMultipartUploads. About 7.8 CPU-minutes to build: 7 min 46 s measured on
#   two cores shared with other builds (load average 5), 9-13 minutes at load 9-10; a 150 MB
#   binary, built once per machine into the cache.
# - s3s-fs: a real S3 server from crates.io (0.14.1; 0.15+ needs a newer rustc), SigV4 enforced,
#   atomic writes. Cheaper to build (about 5.5 CPU-minutes, 10 MB) but looser than S3: a GET in a
#   missing bucket says NoSuchKey and a PUT recreates the bucket, and it has no
#   ListMultipartUploads; one test reports that it cannot check missing buckets on it.
#
# Environment: GOMODPROXY_TEST_TOOLS (default $HOME/.cache/gomodproxy-test-tools) is the cache;
# binaries go to its bin/. Needs go (minio) or cargo (s3s-fs).
set -euo pipefail

S3S_FS_VERSION=0.14.1
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

tools="${GOMODPROXY_TEST_TOOLS:-$HOME/.cache/gomodproxy-test-tools}"
server="${GOMODPROXY_TEST_S3_SERVER:-minio}"
mkdir -p "$tools/bin"

case "$server" in
s3s-fs)
    bin="$tools/bin/s3s-fs"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF " $S3S_FS_VERSION"; then
        echo "install-s3.sh: s3s-fs $S3S_FS_VERSION already installed at $bin"
        exit 0
    fi
    command -v cargo >/dev/null 2>&1 || { echo "install-s3.sh: cargo is needed to build s3s-fs" >&2; exit 1; }
    echo "install-s3.sh: building s3s-fs $S3S_FS_VERSION into $tools (a few minutes)"
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
    echo "install-s3.sh: building minio $MINIO_VERSION into $tools (5 minutes or more)"
    GOFLAGS=-mod=mod GOBIN="$tools/bin" go install "github.com/minio/minio@$MINIO_VERSION"
    ;;
*)
    echo "install-s3.sh: unknown GOMODPROXY_TEST_S3_SERVER '$server' (minio or s3s-fs)" >&2
    exit 1
    ;;
esac
"$bin" --version | head -n 1
echo "install-s3.sh: installed $bin"
