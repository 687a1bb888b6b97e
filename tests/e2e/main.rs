//! End-to-end tests: the real `gomodproxy` binary between the real `go` command and a fixture
//! upstream, everything on 127.0.0.1. One test binary with a module per topic; every test has its
//! own directories, ports, upstream and proxy, so they run in parallel.
//!
//! The `go` command must be on PATH: without it these tests fail rather than skip.

mod access;
mod airgap;
mod airgap_chain;
mod backends;
mod bad_input;
mod common;
mod crash;
mod dedup;
mod direct;
mod direct_vcs;
mod e2e_go;
mod faults;
mod hardening;
mod harness_selftest;
mod offline;
mod sumdb_harness;
