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

#![deny(missing_docs)]

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_storage::{
    ByteStream, GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage,
    StorageError,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, RedisResult, Script, ServerErrorKind};

/// The `store` name in [`StorageError::Backend`].
const STORE: &str = "redis";

/// Largest accepted [`RedisOptions::chunk_size`]: Redis's default `proto-max-bulk-len`.
pub const MAX_CHUNK_SIZE: usize = 512 * 1024 * 1024;

/// Paths read per listing page (one script call each).
const LIST_PAGE: usize = 256;

/// How long a committed generation's `done` marker stays, for commits retried after a lost reply.
const DONE_MARKER_TTL: Duration = Duration::from_secs(5 * 60);

/// Delay before the n-th retry of a command, times n.
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// Reconnection attempts the connection manager makes inside one failing command, beyond the
/// first. Kept small: our own retries add more, and a request must fail promptly while Redis is
/// down rather than queue behind a long backoff.
const RECONNECT_RETRIES: usize = 1;

/// What [`Storage::check`] writes and reads back.
const PROBE: &[u8] = b"gomodproxy storage check\n";

/// How a [`RedisStorage`] connects and lays out its data.
///
/// A plain struct: build it with struct update syntax so that fields added later keep their
/// defaults, e.g. `RedisOptions { url, ..RedisOptions::default() }`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// The server, as a redis-rs connection URL: `redis://[[user]:password@]host[:port][/db]`
    /// or `redis+unix:///path/to/socket[?db=N]`. Default `redis://127.0.0.1:6379/0`. TLS
    /// (`rediss://`) is not compiled in.
    pub url: String,
    /// Prepended to every Redis key this store uses, so that several stores (or other
    /// applications) can share one Redis. End it with a separator and do not use one store's
    /// prefix as the start of another's. Default `gomodproxy:`.
    pub key_prefix: String,
    /// Size of the chunks a body is stored in, in bytes (1 to [`MAX_CHUNK_SIZE`]); a reader holds
    /// about [`read_ahead`](Self::read_ahead) + 1 of them in memory. Changing it later is safe:
    /// each object records its own chunk count. Default 1 MiB.
    pub chunk_size: usize,
    /// Time allowed for each attempt to connect (TCP connect and handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// Time allowed for a reply to each command, including a whole chunk. Default 10 s.
    pub response_timeout: Duration,
    /// How many times a command is retried after it failed because the connection was dropped or
    /// refused (the connection manager reconnects in between). Default 2.
    pub retries: u32,
    /// Expiry of the chunks of a put in progress, refreshed while the payload keeps arriving: how
    /// long a crashed writer's chunks occupy memory. At least 1 s. Default 1 hour.
    pub staging_ttl: Duration,
    /// How long the chunks of a replaced or deleted object stay readable for readers already
    /// streaming it. Zero deletes them at once (such readers then fail). Default 15 minutes.
    pub superseded_grace: Duration,
    /// Chunk writes in flight while a put streams in (at least 1). Default 4.
    pub write_concurrency: usize,
    /// Chunk reads in flight ahead of a reader (at least 1). Default 2.
    pub read_ahead: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            url: "redis://127.0.0.1:6379/0".to_string(),
            key_prefix: "gomodproxy:".to_string(),
            chunk_size: 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(10),
            retries: 2,
            staging_ttl: Duration::from_secs(60 * 60),
            superseded_grace: Duration::from_secs(15 * 60),
            write_concurrency: 4,
            read_ahead: 2,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("url", &gomodproxy_redact::url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("chunk_size", &self.chunk_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retries", &self.retries)
            .field("staging_ttl", &self.staging_ttl)
            .field("superseded_grace", &self.superseded_grace)
            .field("write_concurrency", &self.write_concurrency)
            .field("read_ahead", &self.read_ahead)
            .finish()
    }
}

impl RedisOptions {
    fn validate(&self) -> Result<(), String> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(format!(
                "chunk_size must be between 1 and {MAX_CHUNK_SIZE} bytes, not {}",
                self.chunk_size
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err("connect_timeout must not be zero".into());
        }
        if self.response_timeout.is_zero() {
            return Err("response_timeout must not be zero".into());
        }
        if self.staging_ttl < Duration::from_secs(1) {
            return Err(format!(
                "staging_ttl must be at least 1 s, not {:?}",
                self.staging_ttl
            ));
        }
        if self.write_concurrency == 0 {
            return Err("write_concurrency must be at least 1".into());
        }
        if self.read_ahead == 0 {
            return Err("read_ahead must be at least 1".into());
        }
        Ok(())
    }
}

/// A failed Redis operation, with what was being done and on which server.
#[derive(Debug, thiserror::Error)]
#[error("{op} (redis at {url}): {source}")]
struct RedisOpError {
    op: String,
    url: String,
    source: RedisError,
}

/// A failure of this backend that is not a Redis error (bad data, expired staging, bad options).
#[derive(Debug, thiserror::Error)]
#[error("{message} (redis at {url})")]
struct StoreError {
    message: String,
    url: String,
}

/// The body-stream error of a chunk that vanished or a body that does not match its manifest.
fn body_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Whether a failed command may be sent again: the connection was dropped or refused (the
/// connection manager is reconnecting), or the server is still loading its data. Every command
/// and script of this store is idempotent, so a retry cannot apply anything twice.
fn is_transient(e: &RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading)
}

// Lua shared by the commit and delete scripts: expire (or delete, with a zero grace) the `n`
// chunks of a generation whose keys start with `prefix`.
macro_rules! retire_fn {
    () => {
        r#"
local function retire(prefix, n, grace)
  for i = 0, n - 1 do
    if grace > 0 then
      redis.call('PEXPIRE', prefix .. i, grace)
    else
      redis.call('DEL', prefix .. i)
    end
  end
end
"#
    };
}

/// Makes a staged generation visible. KEYS: manifest, index, staging marker. ARGV: path,
/// generation, chunk count, size, chunk key prefix, grace (ms), done-marker TTL (ms).
/// Returns the commit time in ms.
const COMMIT_SCRIPT: &str = concat!(
    retire_fn!(),
    r#"
local marker = redis.call('GET', KEYS[3])
if marker and string.sub(marker, 1, 5) == 'done:' then
  return tonumber(string.sub(marker, 6))
end
if not marker or string.sub(marker, 1, 8) ~= 'staging:' then
  return redis.error_reply('STAGING_EXPIRED the staging marker of ' .. ARGV[1] .. ' expired before the commit')
end
local n = tonumber(ARGV[3])
local new = ARGV[5] .. ARGV[2] .. ':'
for i = 0, n - 1 do
  if redis.call('EXISTS', new .. i) == 0 then
    return redis.error_reply('STAGING_EXPIRED chunk ' .. i .. ' of ' .. ARGV[1] .. ' expired before the commit')
  end
end
for i = 0, n - 1 do
  redis.call('PERSIST', new .. i)
end
local old = redis.call('HMGET', KEYS[1], 'gen', 'chunks', 'modified')
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if old[1] and old[1] ~= ARGV[2] then
  retire(ARGV[5] .. old[1] .. ':', tonumber(old[2]) or 0, tonumber(ARGV[6]))
end
local previous = tonumber(old[3])
if previous and previous > ms then
  ms = previous
end
local stamp = string.format('%.0f', ms)
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'size', ARGV[4], 'modified', stamp, 'gen', ARGV[2], 'chunks', ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('SET', KEYS[3], 'done:' .. stamp, 'PX', ARGV[7])
return ms
"#
);

/// Removes an object. KEYS: manifest, index. ARGV: path, chunk key prefix, grace (ms).
const DELETE_SCRIPT: &str = concat!(
    retire_fn!(),
    r#"
local old = redis.call('HMGET', KEYS[1], 'gen', 'chunks')
if old[1] then
  retire(ARGV[2] .. old[1] .. ':', tonumber(old[2]) or 0, tonumber(ARGV[3]))
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"#
);

/// Deletes a put's staging chunks and marker, unless the generation was committed. KEYS: staging
/// marker. ARGV: the generation's chunk key prefix (ending in `:`), number of chunks issued.
const ABORT_SCRIPT: &str = r#"
local marker = redis.call('GET', KEYS[1])
if not marker or string.sub(marker, 1, 8) ~= 'staging:' then
  return 0
end
for i = 0, tonumber(ARGV[2]) - 1 do
  redis.call('DEL', ARGV[1] .. i)
end
redis.call('DEL', KEYS[1])
return 1
"#;

/// The manifest and first chunk of an object, or nil. KEYS: manifest. ARGV: chunk key prefix.
/// A manifest missing a field returns a short array, which fails to decode (a backend error).
const GET_SCRIPT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local m = redis.call('HMGET', KEYS[1], 'size', 'modified', 'gen', 'chunks')
local first = false
local chunks = tonumber(m[4])
if m[3] and chunks and chunks > 0 then
  first = redis.call('GET', ARGV[1] .. m[3] .. ':0')
end
return {m[1], m[2], m[3], m[4], first}
"#;

/// One page of a listing. KEYS: index. ARGV: lex min, lex max, page size, manifest key prefix.
/// Returns {paths scanned, last path scanned, paths without a manifest, {{path, size, ms}…}}.
const LIST_SCRIPT: &str = r#"
local paths = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local entries = {}
local dangling = 0
for _, path in ipairs(paths) do
  local m = redis.call('HMGET', ARGV[4] .. path, 'size', 'modified')
  if m[1] and m[2] then
    entries[#entries + 1] = {path, m[1], m[2]}
  else
    dangling = dangling + 1
  end
end
return {#paths, paths[#paths] or '', dangling, entries}
"#;

struct Scripts {
    commit: Script,
    delete: Script,
    abort: Script,
    get: Script,
    list: Script,
}

impl Scripts {
    fn new() -> Self {
        Scripts {
            commit: Script::new(COMMIT_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
            abort: Script::new(ABORT_SCRIPT),
            get: Script::new(GET_SCRIPT),
            list: Script::new(LIST_SCRIPT),
        }
    }

    fn all(&self) -> [(&'static str, &Script); 5] {
        [
            ("commit", &self.commit),
            ("delete", &self.delete),
            ("abort", &self.abort),
            ("get", &self.get),
            ("list", &self.list),
        ]
    }
}

/// Names of this store's Redis keys (see the crate docs).
struct Layout {
    prefix: String,
}

impl Layout {
    fn index(&self) -> String {
        format!("{}index", self.prefix)
    }
    fn manifest_prefix(&self) -> String {
        format!("{}m:", self.prefix)
    }
    fn manifest(&self, path: &str) -> String {
        format!("{}m:{path}", self.prefix)
    }
    fn chunk_prefix(&self) -> String {
        format!("{}c:", self.prefix)
    }
    fn generation_prefix(&self, generation: &str) -> String {
        format!("{}c:{generation}:", self.prefix)
    }
    fn chunk(&self, generation: &str, n: u64) -> String {
        format!("{}c:{generation}:{n}", self.prefix)
    }
    fn marker(&self, generation: &str) -> String {
        format!("{}s:{generation}", self.prefix)
    }
    fn probe(&self, token: &str) -> String {
        format!("{}check:{token}", self.prefix)
    }
}

/// Milliseconds of a duration, for `PX`/`PEXPIRE` arguments.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A fresh random token (generation or probe name).
fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Shared state of a store and of the streams it hands out.
struct Inner {
    conn: ConnectionManager,
    /// The URL without its password.
    url: String,
    layout: Layout,
    scripts: Scripts,
    chunk_size: usize,
    retries: u32,
    staging_ttl: Duration,
    superseded_grace: Duration,
    write_concurrency: usize,
    read_ahead: usize,
}

impl Inner {
    fn redis_error(&self, op: impl Into<String>, source: RedisError) -> StorageError {
        StorageError::backend(
            STORE,
            RedisOpError {
                op: op.into(),
                url: self.url.clone(),
                source,
            },
        )
    }

    fn store_error(&self, message: impl Into<String>) -> StorageError {
        StorageError::backend(
            STORE,
            StoreError {
                message: message.into(),
                url: self.url.clone(),
            },
        )
    }

    /// Runs `op` on the shared connection, again after a dropped or refused connection.
    async fn retry<T, F, Fut>(&self, mut op: F) -> RedisResult<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut attempt = 0;
        loop {
            match op(self.conn.clone()).await {
                Err(e) if attempt < self.retries && is_transient(&e) => {
                    attempt += 1;
                    tracing::debug!(url = %self.url, attempt, error = %e, "retrying a Redis command");
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                }
                result => return result,
            }
        }
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        self.retry(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    async fn invoke<T: FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> RedisResult<T> {
        self.retry(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
    }

    /// Writes chunk `n` of a staged generation.
    async fn write_chunk(&self, generation: &str, n: u64, data: Bytes, path: &str) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.layout.chunk(generation, n))
            .arg(data.as_ref())
            .arg("PX")
            .arg(millis(self.staging_ttl));
        self.query::<()>(&cmd)
            .await
            .map_err(|e| self.redis_error(format!("writing chunk {n} of {path}"), e))
    }

    /// Pushes back the expiry of a staged generation's marker and its first `issued` chunks.
    async fn refresh_staging(&self, generation: &str, issued: u64, path: &str) -> Result<()> {
        let ttl = millis(self.staging_ttl);
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE")
            .arg(self.layout.marker(generation))
            .arg(ttl)
            .ignore();
        for n in 0..issued {
            pipe.cmd("PEXPIRE")
                .arg(self.layout.chunk(generation, n))
                .arg(ttl)
                .ignore();
        }
        self.retry(|mut conn| {
            let pipe = &pipe;
            async move { pipe.query_async::<()>(&mut conn).await }
        })
        .await
        .map_err(|e| self.redis_error(format!("refreshing the staging expiry of {path}"), e))
    }

    /// Reads chunk `n` of a generation for a body stream.
    async fn read_chunk(&self, generation: &str, n: u64, path: &str) -> std::io::Result<Bytes> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.layout.chunk(generation, n));
        match self.query::<Option<Bytes>>(&cmd).await {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(body_error(format!(
                "chunk {n} of {path} (generation {generation}) is gone: the object was replaced \
                 or deleted more than {:?} ago while this read was in progress, or Redis evicted \
                 it (redis at {})",
                self.superseded_grace, self.url
            ))),
            Err(e) => Err(body_error(
                RedisOpError {
                    op: format!("reading chunk {n} of {path}"),
                    url: self.url.clone(),
                    source: e,
                }
                .to_string(),
            )),
        }
    }

    /// One listing page: the entries (or their errors) and where the next page starts.
    async fn list_page(
        &self,
        min: &[u8],
        max: &[u8],
        prefix: &str,
    ) -> Result<(Vec<Result<ListEntry>>, Option<Vec<u8>>)> {
        let index = self.layout.index();
        let manifest_prefix = self.layout.manifest_prefix();
        let mut invocation = self.scripts.list.prepare_invoke();
        invocation
            .key(&index)
            .arg(min)
            .arg(max)
            .arg(LIST_PAGE)
            .arg(&manifest_prefix);
        type Page = (usize, Vec<u8>, u64, Vec<(Vec<u8>, u64, u64)>);
        let (scanned, last, dangling, rows): Page = self
            .invoke(&invocation)
            .await
            .map_err(|e| self.redis_error(format!("listing objects under {prefix:?}"), e))?;
        if dangling > 0 {
            tracing::warn!(
                url = %self.url,
                count = dangling,
                "indexed paths without a manifest (evicted or edited by hand); not listed"
            );
        }
        let entries = rows
            .into_iter()
            .filter_map(|(path, size, ms)| {
                let path = match String::from_utf8(path) {
                    Ok(path) => path,
                    Err(e) => {
                        return Some(Err(StorageError::InvalidKey {
                            path: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                            reason: "not UTF-8".into(),
                        }));
                    }
                };
                // The lex range already bounds the page; this guards paths outside ASCII.
                if !path.starts_with(prefix) {
                    return None;
                }
                Some(Key::from_path(&path).map(|key| ListEntry {
                    key,
                    meta: ObjectMeta {
                        size,
                        modified: UNIX_EPOCH + Duration::from_millis(ms),
                    },
                }))
            })
            .collect();
        let next = (scanned >= LIST_PAGE).then(|| {
            let mut cursor = b"(".to_vec();
            cursor.extend_from_slice(&last);
            cursor
        });
        Ok((entries, next))
    }
}

/// A put's staged generation. Dropped while armed (an error, or the `put` future dropped midway)
/// it deletes the staged chunks, unless the generation was committed meanwhile.
struct Staging {
    inner: Arc<Inner>,
    generation: String,
    path: String,
    /// Chunk writes started so far (they may land in any order).
    issued: AtomicU64,
    /// Set once the staging marker is written (before it, nothing needs cleaning up: a marker
    /// whose reply was lost expires by itself), cleared once committed or cleaned up.
    armed: AtomicBool,
}

impl Staging {
    fn abort_invocation(&self) -> redis::ScriptInvocation<'_> {
        let mut invocation = self.inner.scripts.abort.prepare_invoke();
        invocation
            .key(self.inner.layout.marker(&self.generation))
            .arg(self.inner.layout.generation_prefix(&self.generation))
            .arg(self.issued.load(Ordering::SeqCst));
        invocation
    }

    /// Deletes the staged chunks now (after a failure the caller reports).
    async fn abort(self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let invocation = self.abort_invocation();
        match self.inner.invoke::<i64>(&invocation).await {
            Ok(_) => {}
            Err(e) => tracing::warn!(
                url = %self.inner.url,
                path = %self.path,
                generation = %self.generation,
                error = %e,
                "cannot delete the staging chunks of a failed put; they expire by themselves"
            ),
        }
        self.armed.store(false, Ordering::SeqCst);
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.armed.load(Ordering::SeqCst) {
            return;
        }
        // A dropped `put` future: clean up in the background. Commands already sent for this
        // generation are ahead of this one on the connection, so they cannot land after it.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let marker = inner.layout.marker(&self.generation);
        let prefix = inner.layout.generation_prefix(&self.generation);
        let issued = self.issued.load(Ordering::SeqCst);
        let path = std::mem::take(&mut self.path);
        runtime.spawn(async move {
            let mut invocation = inner.scripts.abort.prepare_invoke();
            invocation.key(&marker).arg(&prefix).arg(issued);
            if let Err(e) = inner.invoke::<i64>(&invocation).await {
                tracing::warn!(
                    url = %inner.url,
                    path = %path,
                    error = %e,
                    "cannot delete the staging chunks of a cancelled put; they expire by themselves"
                );
            }
        });
    }
}

/// Cuts a payload stream into chunks of exactly `chunk_size` bytes (the last one shorter),
/// checking the announced length. The final chunk is only yielded once the payload has ended
/// with the right length, so a payload that fails never completes its staging.
fn rechunk(
    payload: PutPayload,
    chunk_size: usize,
    path: String,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        input: ByteStream,
        expected: Option<u64>,
        chunk_size: usize,
        path: String,
        buf: BytesMut,
        rest: Bytes,
        received: u64,
        ended: bool,
        failed: bool,
    }
    let state = State {
        expected: payload.length(),
        input: payload.into_stream(),
        chunk_size,
        path,
        buf: BytesMut::new(),
        rest: Bytes::new(),
        received: 0,
        ended: false,
        failed: false,
    };
    stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        loop {
            if !st.rest.is_empty() {
                // Whole chunks of a large payload chunk are sliced out without copying.
                if st.buf.is_empty() && st.rest.len() >= st.chunk_size {
                    let chunk = st.rest.split_to(st.chunk_size);
                    return Some((Ok(chunk), st));
                }
                if st.buf.capacity() == 0 {
                    st.buf.reserve(st.chunk_size);
                }
                let take = (st.chunk_size - st.buf.len()).min(st.rest.len());
                st.buf.extend_from_slice(&st.rest.split_to(take));
                if st.buf.len() == st.chunk_size {
                    let chunk = st.buf.split().freeze();
                    return Some((Ok(chunk), st));
                }
                continue;
            }
            if st.ended {
                if st.buf.is_empty() {
                    return None;
                }
                let chunk = st.buf.split().freeze();
                return Some((Ok(chunk), st));
            }
            let mismatch = |st: &State| StorageError::LengthMismatch {
                key: st.path.clone(),
                expected: st.expected.unwrap_or(0),
                actual: st.received,
            };
            match st.input.next().await {
                Some(Ok(data)) => {
                    st.received += data.len() as u64;
                    // Stop at the first byte too many rather than storing a runaway stream.
                    if st.expected.is_some_and(|n| st.received > n) {
                        st.failed = true;
                        let err = mismatch(&st);
                        return Some((Err(err), st));
                    }
                    st.rest = data;
                }
                Some(Err(source)) => {
                    st.failed = true;
                    let err = StorageError::Payload {
                        key: st.path.clone(),
                        source,
                    };
                    return Some((Err(err), st));
                }
                None => {
                    if st.expected.is_some_and(|n| st.received != n) {
                        st.failed = true;
                        let err = mismatch(&st);
                        return Some((Err(err), st));
                    }
                    st.ended = true;
                }
            }
        }
    })
    .boxed()
}

/// A [`Storage`] in a Redis server. See the crate docs for the layout and guarantees.
///
/// Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RedisStorage {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStorage")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.layout.prefix)
            .field("chunk_size", &self.inner.chunk_size)
            .finish_non_exhaustive()
    }
}

impl RedisStorage {
    /// Connects to the server of `options.url` and prepares the store's scripts.
    ///
    /// Fails with a [`StorageError::Backend`] naming the URL (without its password) when the
    /// options are invalid, the URL cannot be parsed, or the server cannot be reached within
    /// about two [`RedisOptions::connect_timeout`]s.
    pub async fn open(options: RedisOptions) -> Result<RedisStorage> {
        let url = gomodproxy_redact::url(&options.url);
        let open_error = |message: String| {
            StorageError::backend(
                STORE,
                StoreError {
                    message,
                    url: url.clone(),
                },
            )
        };
        options
            .validate()
            .map_err(|e| open_error(format!("invalid Redis options: {e}")))?;
        let client = redis::Client::open(options.url.as_str())
            .map_err(|e| open_error(format!("invalid Redis URL: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        // The manager's own attempts are bounded by the connect timeout each; this bounds the
        // whole, backoff included, whatever the platform does with a silent host.
        let budget =
            options.connect_timeout * (RECONNECT_RETRIES as u32 + 1) + Duration::from_secs(2);
        let conn =
            match tokio::time::timeout(budget, ConnectionManager::new_with_config(client, config))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(open_error(format!("cannot connect to Redis: {e}"))),
                Err(_) => {
                    return Err(open_error(format!(
                        "cannot connect to Redis: no connection within {budget:?}"
                    )));
                }
            };
        let inner = Inner {
            conn,
            url: url.clone(),
            layout: Layout {
                prefix: options.key_prefix.clone(),
            },
            scripts: Scripts::new(),
            chunk_size: options.chunk_size,
            retries: options.retries,
            staging_ttl: options.staging_ttl,
            superseded_grace: options.superseded_grace,
            write_concurrency: options.write_concurrency,
            read_ahead: options.read_ahead,
        };
        // Loading the scripts now makes a server without scripting (or an ACL forbidding it)
        // fail at startup instead of on the first request.
        for (name, script) in inner.scripts.all() {
            let invocation = script.prepare_invoke();
            inner
                .retry(|mut conn| {
                    let invocation = &invocation;
                    async move { invocation.load_async(&mut conn).await }
                })
                .await
                .map_err(|e| inner.redis_error(format!("loading the {name} script"), e))?;
        }
        inner.warn_about_eviction().await;
        Ok(RedisStorage {
            inner: Arc::new(inner),
        })
    }

    /// The options' key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.inner.layout.prefix
    }
}

impl Inner {
    /// Logs a warning when the server may evict keys of live objects. `CONFIG` is often
    /// disabled on managed servers: then nothing is said.
    async fn warn_about_eviction(&self) {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        match self.query::<Vec<String>>(&cmd).await {
            Ok(reply) => {
                if let Some(policy) = reply.get(1)
                    && policy.starts_with("allkeys-")
                {
                    tracing::warn!(
                        url = %self.url,
                        policy = %policy,
                        "Redis may evict chunks of stored objects under memory pressure, which \
                         then fail to read; use maxmemory-policy noeviction or a volatile-* policy"
                    );
                }
            }
            Err(e) => tracing::debug!(url = %self.url, error = %e, "cannot read maxmemory-policy"),
        }
    }

    /// Stages the payload and commits it; the caller cleans up on error.
    async fn stage_and_commit(
        self: &Arc<Self>,
        staging: &Staging,
        payload: PutPayload,
    ) -> Result<ObjectMeta> {
        let path = staging.path.as_str();
        let generation = staging.generation.as_str();
        let marker = self.layout.marker(generation);

        let mut cmd = redis::cmd("SET");
        cmd.arg(&marker)
            .arg(format!("staging:{path}"))
            .arg("PX")
            .arg(millis(self.staging_ttl));
        self.query::<()>(&cmd)
            .await
            .map_err(|e| self.redis_error(format!("starting the put of {path}"), e))?;
        staging.armed.store(true, Ordering::SeqCst);

        let mut size = 0u64;
        let mut last_refresh = Instant::now();
        let refresh_every = self.staging_ttl / 3;
        let mut writes = rechunk(payload, self.chunk_size, path.to_string())
            .enumerate()
            .map(|(n, chunk)| {
                let n = n as u64;
                let refresh = last_refresh.elapsed() >= refresh_every;
                if refresh {
                    last_refresh = Instant::now();
                }
                if chunk.is_ok() {
                    staging.issued.fetch_max(n + 1, Ordering::SeqCst);
                }
                async move {
                    let chunk = chunk?;
                    let len = chunk.len() as u64;
                    if refresh {
                        self.refresh_staging(generation, n, path).await?;
                    }
                    self.write_chunk(generation, n, chunk, path).await?;
                    Ok::<u64, StorageError>(len)
                }
            })
            .buffered(self.write_concurrency);
        while let Some(written) = writes.next().await {
            size += written?;
        }
        drop(writes);
        let chunks = staging.issued.load(Ordering::SeqCst);

        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.layout.manifest(path))
            .key(self.layout.index())
            .key(&marker)
            .arg(path)
            .arg(generation)
            .arg(chunks)
            .arg(size)
            .arg(self.layout.chunk_prefix())
            .arg(millis(self.superseded_grace))
            .arg(millis(DONE_MARKER_TTL));
        let ms: u64 = self.invoke(&invocation).await.map_err(|e| {
            if e.code() == Some("STAGING_EXPIRED") {
                self.store_error(format!(
                    "the put of {path} took longer than staging_ttl allows ({:?}): {e}",
                    self.staging_ttl
                ))
            } else {
                self.redis_error(format!("committing the put of {path}"), e)
            }
        })?;
        Ok(ObjectMeta {
            size,
            modified: UNIX_EPOCH + Duration::from_millis(ms),
        })
    }
}

#[async_trait]
impl Storage for RedisStorage {
    async fn put(&self, key: &Key, payload: PutPayload) -> Result<ObjectMeta> {
        let staging = Staging {
            inner: self.inner.clone(),
            generation: random_token(),
            path: key.path(),
            issued: AtomicU64::new(0),
            armed: AtomicBool::new(false),
        };
        match self.inner.stage_and_commit(&staging, payload).await {
            Ok(meta) => {
                staging.armed.store(false, Ordering::SeqCst);
                Ok(meta)
            }
            Err(e) => {
                staging.abort().await;
                Err(e)
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<GetResult> {
        let inner = &self.inner;
        let path = key.path();
        let mut invocation = inner.scripts.get.prepare_invoke();
        invocation
            .key(inner.layout.manifest(&path))
            .arg(inner.layout.chunk_prefix());
        type Head = Option<(u64, u64, String, u64, Option<Bytes>)>;
        let head: Head = inner
            .invoke(&invocation)
            .await
            .map_err(|e| inner.redis_error(format!("reading the manifest of {path}"), e))?;
        let Some((size, ms, generation, chunks, first)) = head else {
            return Err(StorageError::NotFound { key: path });
        };
        let first = match (chunks, first) {
            (0, _) => None,
            (_, Some(first)) => Some(first),
            (_, None) => {
                return Err(inner.store_error(format!(
                    "the first chunk of {path} (generation {generation}) is missing: evicted or \
                     deleted outside gomodproxy"
                )));
            }
        };
        let read_ahead = inner.read_ahead;
        let rest = {
            let (inner, generation, path) = (inner.clone(), generation.clone(), path.clone());
            stream::iter(1..chunks)
                .map(move |n| {
                    let (inner, generation, path) =
                        (inner.clone(), generation.clone(), path.clone());
                    async move { inner.read_chunk(&generation, n, &path).await }
                })
                .buffered(read_ahead)
        };
        let chunks = stream::iter(first.map(Ok)).chain(rest).boxed();
        Ok(GetResult {
            meta: ObjectMeta {
                size,
                modified: UNIX_EPOCH + Duration::from_millis(ms),
            },
            body: checked_body(chunks, size, path),
        })
    }

    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        let inner = &self.inner;
        let path = key.path();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(inner.layout.manifest(&path))
            .arg("size")
            .arg("modified");
        let fields: (Option<u64>, Option<u64>) = inner
            .query(&cmd)
            .await
            .map_err(|e| inner.redis_error(format!("reading the manifest of {path}"), e))?;
        match fields {
            (Some(size), Some(ms)) => Ok(ObjectMeta {
                size,
                modified: UNIX_EPOCH + Duration::from_millis(ms),
            }),
            (None, None) => Err(StorageError::NotFound { key: path }),
            _ => Err(inner.store_error(format!("the manifest of {path} is incomplete"))),
        }
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let inner = &self.inner;
        let path = key.path();
        let mut invocation = inner.scripts.delete.prepare_invoke();
        invocation
            .key(inner.layout.manifest(&path))
            .key(inner.layout.index())
            .arg(&path)
            .arg(inner.layout.chunk_prefix())
            .arg(millis(inner.superseded_grace));
        inner
            .invoke::<i64>(&invocation)
            .await
            .map_err(|e| inner.redis_error(format!("deleting {path}"), e))?;
        Ok(())
    }

    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        let inner = self.inner.clone();
        let prefix = prefix.path_prefix();
        let (min, max) = if prefix.is_empty() {
            (b"-".to_vec(), b"+".to_vec())
        } else {
            // Key paths are ASCII, so every path starting with `prefix` sorts below prefix+0xff.
            let mut min = b"[".to_vec();
            min.extend_from_slice(prefix.as_bytes());
            let mut max = b"(".to_vec();
            max.extend_from_slice(prefix.as_bytes());
            max.push(0xff);
            (min, max)
        };
        stream::unfold(Some(min), move |cursor| {
            let (inner, max, prefix) = (inner.clone(), max.clone(), prefix.clone());
            async move {
                let min = cursor?;
                match inner.list_page(&min, &max, &prefix).await {
                    Ok((entries, next)) => Some((stream::iter(entries), next)),
                    Err(e) => Some((stream::iter(vec![Err(e)]), None)),
                }
            }
        })
        .flatten()
        .boxed()
    }

    async fn check(&self) -> Result<()> {
        let inner = &self.inner;
        let probe = inner.layout.probe(&random_token());
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&probe)
            .arg(PROBE)
            .arg("PX")
            .arg(60_000)
            .ignore()
            .cmd("GET")
            .arg(&probe)
            .cmd("DEL")
            .arg(&probe)
            .ignore();
        let (read,): (Option<Vec<u8>>,) = inner
            .retry(|mut conn| {
                let pipe = &pipe;
                async move { pipe.query_async(&mut conn).await }
            })
            .await
            .map_err(|e| inner.redis_error("writing and reading a probe key", e))?;
        if read.as_deref() != Some(PROBE) {
            return Err(inner.store_error(format!(
                "the probe key {probe} read back differently than written"
            )));
        }
        Ok(())
    }
}

/// Ends a body stream with an error when its chunks do not add up to the manifest's size, and
/// stops after the first error.
fn checked_body(
    chunks: BoxStream<'static, std::io::Result<Bytes>>,
    size: u64,
    path: String,
) -> ByteStream {
    stream::unfold(
        (chunks, 0u64, false),
        move |(mut chunks, received, done)| {
            let path = path.clone();
            async move {
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(Ok(data)) => {
                        let received = received + data.len() as u64;
                        if received > size {
                            let err = body_error(format!(
                                "{path}: the chunks hold more than the manifest's {size} bytes"
                            ));
                            return Some((Err(err), (chunks, received, true)));
                        }
                        Some((Ok(data), (chunks, received, false)))
                    }
                    Some(Err(e)) => Some((Err(e), (chunks, received, true))),
                    None if received != size => {
                        let err = body_error(format!(
                            "{path}: the chunks hold {received} bytes, the manifest says {size}"
                        ));
                        Some((Err(err), (chunks, received, true)))
                    }
                    None => None,
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_debug_hides_the_password() {
        let options = RedisOptions {
            url: "redis://:hunter2@127.0.0.1:6379/0".into(),
            ..RedisOptions::default()
        };
        let shown = format!("{options:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
    }

    #[test]
    fn invalid_options_are_rejected() {
        let bad = [
            RedisOptions {
                chunk_size: 0,
                ..RedisOptions::default()
            },
            RedisOptions {
                chunk_size: MAX_CHUNK_SIZE + 1,
                ..RedisOptions::default()
            },
            RedisOptions {
                response_timeout: Duration::ZERO,
                ..RedisOptions::default()
            },
            RedisOptions {
                connect_timeout: Duration::ZERO,
                ..RedisOptions::default()
            },
            RedisOptions {
                staging_ttl: Duration::from_millis(999),
                ..RedisOptions::default()
            },
            RedisOptions {
                write_concurrency: 0,
                ..RedisOptions::default()
            },
            RedisOptions {
                read_ahead: 0,
                ..RedisOptions::default()
            },
        ];
        for options in bad {
            assert!(options.validate().is_err(), "{options:?} was accepted");
        }
        assert_eq!(RedisOptions::default().validate(), Ok(()));
    }

    #[tokio::test]
    async fn open_rejects_invalid_options_naming_the_url() {
        let err = RedisStorage::open(RedisOptions {
            url: "redis://:hunter2@127.0.0.1:1/0".into(),
            chunk_size: 0,
            ..RedisOptions::default()
        })
        .await
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, StorageError::Backend { store: "redis", .. }),
            "{err:?}"
        );
        assert!(shown.contains("chunk_size"), "{shown}");
        assert!(shown.contains("redis://:***@127.0.0.1:1/0"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    async fn collect(stream: BoxStream<'static, Result<Bytes>>) -> Vec<Result<Bytes>> {
        stream.collect().await
    }

    fn payload(parts: &[&'static [u8]], length: Option<u64>) -> PutPayload {
        let items: Vec<std::io::Result<Bytes>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        PutPayload::Stream {
            stream: stream::iter(items).boxed(),
            length,
        }
    }

    #[tokio::test]
    async fn rechunk_cuts_exact_chunks() {
        let got = collect(rechunk(
            payload(&[b"ab", b"", b"cdefg", b"hijklmnopq", b"r"], Some(18)),
            4,
            "p".into(),
        ))
        .await;
        let got: Vec<Vec<u8>> = got.into_iter().map(|c| c.unwrap().to_vec()).collect();
        let want: Vec<&[u8]> = vec![b"abcd", b"efgh", b"ijkl", b"mnop", b"qr"];
        assert_eq!(got, want);
        assert!(
            collect(rechunk(payload(&[], Some(0)), 4, "p".into()))
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn rechunk_withholds_the_last_chunk_of_a_short_payload() {
        let got = collect(rechunk(payload(&[b"abcdef"], Some(7)), 4, "p".into())).await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().as_ref(), b"abcd");
        assert!(
            matches!(
                got[1],
                Err(StorageError::LengthMismatch {
                    expected: 7,
                    actual: 6,
                    ..
                })
            ),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn rechunk_stops_at_the_first_byte_too_many() {
        let got = collect(rechunk(
            payload(&[b"abc", b"de", b"f"], Some(4)),
            2,
            "p".into(),
        ))
        .await;
        let last = got.last().unwrap();
        assert!(
            matches!(
                last,
                Err(StorageError::LengthMismatch {
                    expected: 4,
                    actual: 5,
                    ..
                })
            ),
            "{got:?}"
        );
    }
}
