//! Test harness for the end-to-end tests of gomodproxy.
//!
//! The e2e tests drive the real `gomodproxy` binary with the real `go` command, all on
//! 127.0.0.1. This crate provides the pieces:
//!
//! - [`fixtures`]: fixture modules built as go expects them (upper-case paths, a `/v2` module,
//!   `+incompatible`, a pseudo-version, a module graph where one version is needed only for its
//!   go.mod, a large incompressible zip) in GOPROXY directory layout, an app project that imports
//!   them all, and an independent `h1:` implementation used as the oracle;
//! - [`upstream`]: an in-process fixture upstream that serves that directory, counts requests
//!   per path, and injects faults (status, hang, truncation, lying Content-Length, corrupt bytes,
//!   replacement body, throttling);
//! - [`proxy`]: the binary as a child process configured through `GOMODPROXY_*` variables, with
//!   kill (SIGKILL), graceful stop and restart on the same storage root, and its log printed when
//!   a test fails;
//! - [`go`]: the `go` command with a hermetic environment (fresh GOMODCACHE, GOPATH, GOCACHE and
//!   HOME, GOPROXY without `direct`, GOSUMDB off, GOTOOLCHAIN=local);
//! - [`sumdb`]: a Go checksum database with its own key and a real transparency log of the
//!   fixture modules' hashes (lookups, tiles, signed tree heads, on both the database's and a
//!   proxy's path form), which can grow, fork, count requests and misbehave, so that the real go
//!   command verifies downloads with GOSUMDB on;
//! - [`servers`]: the Redis and S3 (MinIO) servers of the backend tests — shared ones started by
//!   tests/run.sh, and private ones a test can stop and restart;
//! - [`http`]: a raw HTTP/1.1 client, so hostile paths reach the server unnormalized;
//! - [`redirector`]: an HTTPS server that redirects every request to another host and
//!   records which requests carried credentials;
//! - [`tls`]: a test CA (rcgen) issuing certificates for 127.0.0.1, htpasswd and token lines,
//!   and a TLS terminator in front of a plain loopback server (git http-backend over HTTPS);
//! - [`tunnel`]: an HTTP CONNECT proxy on loopback that records what it tunnels and can ask
//!   for credentials (407, keeping the connection for the retry);
//! - [`util`]: per-test directories and directory walks.
//!
//! Every test gets its own directories, ports, upstream and proxy, so tests run in parallel;
//! only the read-only fixture tree is shared by the whole process.

#![deny(missing_docs)]

pub mod fixtures;
pub mod go;
pub mod http;
pub mod proxy;
pub mod redirector;
pub mod servers;
pub mod sumdb;
pub mod tls;
pub mod tunnel;
pub mod upstream;
pub mod util;

pub use fixtures::Fixtures;
pub use go::Go;
pub use proxy::{Proxy, ProxyConfig};
pub use upstream::{Fault, Upstream};
pub use util::TestDir;
