//! gomodproxy, the server: configuration, command line, storage wiring and the HTTP layer.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that the HTTP application
//! ([`http::app`]) and the configuration loader ([`config::Config::load`]) can be tested in
//! process.
//!
//! - [`config`]: one typed struct; defaults, then a TOML file, then `GOMODPROXY_*` variables,
//!   unknown keys rejected with the key named.
//! - [`backend`]: the one factory from `[storage]` to an `Arc<dyn Storage>`, probed at startup.
//! - [`http`]: GOPROXY routes over [`gomodproxy_service::ProxyService`]; the one place where
//!   failures become HTTP statuses.
//! - [`serve`]: the actix-web server with graceful shutdown on SIGTERM/SIGINT.
//! - [`transfer`]: `export`, `import` and `verify` over [`gomodproxy_bundle`].
//!
//! # Dependencies
//! The top of the workspace: it may depend on every other crate (the service, the bundle
//! format, the storage contract, each backend and the coordination crate), and nothing depends
//! on it. [`backend`] opens the backends and [`config`] embeds each one's options type; no other
//! module names a backend crate.

#![deny(missing_docs)]

pub mod access;
pub mod backend;
pub mod cli;
pub mod config;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod prewarm;
pub mod serve;
mod terminal;
pub mod transfer;
