//! Integration tests of gomodproxy-bundle on real stores (fs in a temp dir, sled), real module
//! zips and a real checksum database of our own (a transparency log signed with a test key).

mod support;

mod chain;
mod filter;
mod gomodcache;
mod offline;
mod roundtrip;
mod tamper;
mod trees;
mod unproven;
mod verify;
