//! The Redis backend of gomodproxy's [`Storage`] trait.
//!
//! [`RedisStorage`] keeps every object in a Redis server, so that several proxy replicas can share
//! one cache. Module zips can be hundreds of MiB while a Redis value should stay small (a big
//! value blocks the one multiplexed connection every request shares, and the server's event loop),
//! so a body is cut into chunks of [`RedisOptions::chunk_size`] (1 MiB) and described by a small
//! manifest. Open a store with [`RedisStorage::open`].
//!
//! # Key layout
//! Every Redis key starts with [`RedisOptions::key_prefix`] (`P`, `gomodproxy:` by default), so
//! the cache can share a Redis with other applications; nothing is written outside it.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P index` | sorted set | the [`Key::path`] of every visible object, all with score 0 |
//! | `P m:<path>` | hash | the manifest: `size`, `modified` (ms since the epoch), `gen`, `chunks` |
//! | `P c:<gen>:<n>` | string | chunk `n` (from 0) of the body written as generation `gen` |
//! | `P s:<gen>` | string | the staging marker of a put in progress (`staging:<path>`), or `done:<ms>` once committed |
//! | `P check:<random>` | string | [`Storage::check`]'s probe, deleted at once (expires in a minute anyway) |
//!
//! (`P index` is the prefix immediately followed by `index`, and so on.) A generation is a random
//! 128-bit hex string drawn by each `put`, so two puts never share a chunk key.
//!
//! # Atomic puts
//! A `put` first sets its staging marker, then writes its chunks under its own generation, each
//! with `SET … PX` [`RedisOptions::staging_ttl`] (refreshed while a slow upload goes on), so the
//! chunks of a writer that crashes expire by themselves. Up to
//! [`RedisOptions::write_concurrency`] chunk writes are in flight while the payload streams in.
//! Only when the payload has ended with the announced length does one Lua script (atomic in
//! Redis) commit it: it checks that the marker and every chunk are still there, removes the
//! chunks' expiry, replaces the manifest, adds the path to the index and marks the generation
//! `done`. A reader therefore sees the whole previous object, the whole new one, or nothing.
//!
//! A payload that fails or has the wrong length, a Redis error and a dropped `put` future all end
//! in the same clean-up script, which deletes the staging chunks and marker, but only while the
//! marker still says `staging`: a commit whose reply was lost (timeout, dropped future) is never
//! undone under a reader. The clean-up of a dropped future is spawned on the runtime; if it cannot
//! run, the staging TTL removes the chunks. The commit is idempotent (a retried commit finds the
//! `done` marker and returns the recorded time), so it is retried after a dropped connection like
//! every other command. As with any remote store, a `put` whose commit reply never arrived (a
//! timeout) reports an error although the server may have applied it: the key then holds the
//! whole new object, never a part.
//!
//! # Replaced and deleted objects
//! The commit of an overwrite and `delete` do not delete the previous generation's chunks at
//! once: they give them an expiry of [`RedisOptions::superseded_grace`] (15 minutes), so a reader
//! already streaming the previous body finishes it. A reader slower than that grace finds its
//! next chunk gone and fails with an error; it can never return a body spliced from two
//! generations, since chunk keys are never reused.
//!
//! # Reads
//! `get` runs one script that returns the manifest and the first chunk together (one round trip
//! for the small `.info`, `.mod` and list objects, and no window between manifest and data), then
//! streams the remaining chunks with [`RedisOptions::read_ahead`] requests in flight, checking the
//! total against the manifest's size. Memory per transfer is therefore a few chunks, whatever the
//! object's size. `modified` is the Redis server's `TIME` at commit (one clock for all replicas
//! sharing the store), never earlier than the time of the object it replaced.
//!
//! # Listing
//! `list` pages through the index with `ZRANGEBYLEX` over the string prefix
//! [`ListPrefix::path_prefix`], reading each page's manifests in the same script. No `KEYS` or
//! `SCAN` is used on request paths.
//!
//! # Connections and failures
//! One [`redis::aio::ConnectionManager`] (a multiplexed connection that reconnects) serves all
//! requests; chunking keeps any one reply small, so a `.mod` lookup waits behind at most a few
//! chunks of a zip transfer, and [`RedisOptions::response_timeout`] (which counts that queueing)
//! can stay short. The command that discovers a dropped connection still fails in redis-rs, so
//! every command is retried [`RedisOptions::retries`] times when the connection was dropped or
//! refused (all commands used are idempotent); a server restarted between two requests is thus
//! invisible to callers. Timeouts are not retried: under overload a retry only doubles the wait.
//! While the server is down, operations fail within about half a second. Every Redis failure is
//! a [`StorageError::Backend`] with `store: "redis"`, naming the operation and the server's URL
//! (without its password); it is never reported as [`StorageError::NotFound`].
//!
//! # Server requirements
//! A standalone Redis 5 or later (tested with 7.0), or a compatible server, with Lua scripting.
//! The scripts derive chunk key names from the manifest, so Redis Cluster is not supported, and
//! a compatible server must allow scripts to touch keys not passed in `KEYS` (Dragonfly:
//! `--default_lua_flags=allow-undeclared-keys`). Index entry and manifest take about 400 bytes
//! of Redis memory per object besides its body (measured on 7.0: a million artifacts, about
//! 400 MB). Use `maxmemory-policy noeviction`
//! or a `volatile-*` policy (which only evicts staging and superseded chunks): an `allkeys-*`
//! policy may evict chunks of live objects, which then fail to read ([`RedisStorage::open`] logs
//! a warning when it can see such a policy).
//!
//! # Modules
//! `options` ([`RedisOptions`]), `layout` (key names), `scripts` (the Lua scripts), `connection`
//! (the shared connection, retries and single commands), `rechunk` (cutting a payload into
//! chunks), `staging` (a put in progress and its commit), `error`, and `store`
//! ([`RedisStorage`] and the trait).
//!
//! # Dependencies
//! Of gomodproxy's crates: `gomodproxy-storage` (the trait it implements) and
//! `gomodproxy-redact` (the URL in errors and `Debug`). Nothing depends on it but the server's
//! backend factory; it never reaches up to the service or the server.
//!
//! [`Storage`]: gomodproxy_storage::Storage
//! [`Storage::check`]: gomodproxy_storage::Storage::check
//! [`Key::path`]: gomodproxy_storage::Key::path
//! [`ListPrefix::path_prefix`]: gomodproxy_storage::ListPrefix::path_prefix
//! [`StorageError::NotFound`]: gomodproxy_storage::StorageError::NotFound
//! [`StorageError::Backend`]: gomodproxy_storage::StorageError::Backend

#![deny(missing_docs)]

mod connection;
mod error;
mod layout;
mod options;
mod rechunk;
mod scripts;
mod staging;
mod store;

pub use options::{MAX_CHUNK_SIZE, RedisOptions, RedisOptionsError};
pub use store::RedisStorage;
