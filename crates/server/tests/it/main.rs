//! In-process tests of the server crate: configuration loading, the HTTP application over a
//! real `ProxyService` (in-memory store, `file://` upstream), and the binary's command line.

mod access;
mod cli;
mod compose;
mod config;
mod fixture;
mod http;
mod transfer;
