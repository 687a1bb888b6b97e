//! Integration tests of gomodproxy-vcs against the go command's direct mode, on repositories
//! the tests make, served on loopback. One test binary; one module per topic.

mod support;

mod basic;
mod content;
mod discovery;
mod immutability;
mod layouts;
mod limits;
mod private;
mod security;
