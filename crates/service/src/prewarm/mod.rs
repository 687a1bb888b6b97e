//! Prewarming: fetching ahead of time what offline clients will need.
//!
//! An operator lists [`Item`]s — `module@version`, `module@latest`, a go.mod (its whole module
//! graph, as the go command loads it), a go.sum (every line), Go toolchains — and [`prewarm`]
//! turns them into [`Target`]s (a module version and whether its zip is needed or only its
//! go.mod), fetches each through a [`Warmer`] with bounded concurrency and retries, and reports
//! what was fetched, what was already stored and what failed.
//!
//! The fetching itself is the proxy's own: through a [`ProxyService`] (storage first, so a second
//! run fetches nothing; every artifact validated and checked against the checksum database before
//! it is stored, which stores the lookups and tiles that prove it), or through a running server
//! over HTTP. At the end the checksum-database cache is sealed so that an offline client can
//! verify every stored record against the stored tree head.
//!
//! The module's files, each depending only on those listed before it:
//! - `item.rs`: [`Item`], what an operator writes, parsed once ([`ItemError`]);
//! - `warmer.rs`: [`Warmer`], the one interface to serving (implemented here for
//!   [`ProxyService`] through its public API only), and [`Target`];
//! - `graph.rs`: the module graph walk of a go.mod;
//! - `latest.rs`: which version `module@latest` means;
//! - `plan.rs`: the targets of each item;
//! - `refresh.rs`: the new releases of a stored module ([`refresh`] keeps a mirror current);
//! - `run.rs`: the batch jobs ([`prewarm`], [`refresh`]), their options and their [`Report`].
//!
//! Sealing also makes the store provable to clients that remember another tree head: every
//! tree the store has recorded, and the known trees of [`PrewarmOptions::known_trees`].

mod graph;
mod item;
mod latest;
mod plan;
mod refresh;
mod run;
mod warmer;

pub use item::{Item, ItemError, ItemProblem, TOOLCHAIN_MODULE};
pub use run::{
    Outcome, PrewarmOptions, RefreshScope, Report, TargetDone, host_platform, prewarm, refresh,
};
pub use warmer::{StoredModule, Target, WarmError, Warmed, Warmer};

#[cfg(doc)]
use crate::ProxyService;
