//! Integration tests of the service layer against an in-memory store and fake upstreams on
//! 127.0.0.1 (one test binary, topic modules).

mod support;

mod artifacts;
mod chain;
mod faults;
mod hardening;
mod mutable;
mod offline;
mod storage_errors;
mod sumdb;
