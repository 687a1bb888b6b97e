//! Fixtures and assertions shared by the behaviours: per-run key prefixes, deterministic bodies,
//! payload streams that misbehave on purpose, and reads that check what a store returns.

use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use gomod::sumdb::SumdbName;
use gomod::{ModulePath, Version};

use crate::{ByteStream, Key, ListEntry, ListPrefix, ObjectMeta, Storage, StorageError};

/// The message of the error injected into failing payload streams, looked for in the store's
/// error to show that the cause was kept.
pub(super) const INJECTED: &str = "conformance: injected payload failure";

/// The modules one behaviour writes, all under a random prefix so that runs never collide and a
/// shared store can be reused; `cleanup` deletes exactly these modules' objects.
pub(super) struct Run {
    /// The behaviour's name, for messages.
    pub name: &'static str,
    tag: String,
    modules: Vec<ModulePath>,
    sumdbs: Vec<SumdbName>,
}

impl Run {
    pub fn new(name: &'static str) -> Self {
        Run {
            name,
            tag: format!("{:016x}", rand::random::<u64>()),
            modules: Vec::new(),
            sumdbs: Vec::new(),
        }
    }

    /// `conformance.test/r<random>/<suffix>`.
    pub fn module(&mut self, suffix: &str) -> ModulePath {
        let path = format!("conformance.test/r{}/{suffix}", self.tag);
        self.register(path)
    }

    /// A `gopkg.in/<user>/<pkg>.vN` module (its own path rules), made unique by the run's tag.
    pub fn gopkg_module(&mut self) -> ModulePath {
        let path = format!("gopkg.in/c{}/yaml.v3", self.tag);
        self.register(path)
    }

    /// A checksum database name unique to this run: `c<random>.sumdb.test`.
    pub fn sumdb(&mut self) -> SumdbName {
        let name = format!("c{}.sumdb.test", self.tag);
        let db = SumdbName::parse(&name).unwrap_or_else(|e| {
            panic!("conformance test data: sumdb name {name:?} rejected by gomod: {e}")
        });
        if !self.sumdbs.contains(&db) {
            self.sumdbs.push(db.clone());
        }
        db
    }

    fn register(&mut self, path: String) -> ModulePath {
        let module = ModulePath::parse(&path).unwrap_or_else(|e| {
            panic!("conformance test data: module path {path:?} rejected by gomod: {e}")
        });
        if !self.modules.contains(&module) {
            self.modules.push(module.clone());
        }
        module
    }

    /// Every module this run has written to.
    pub fn modules(&self) -> &[ModulePath] {
        &self.modules
    }

    /// Deletes every object of this run's modules and checksum databases, then checks that none
    /// is left.
    pub async fn cleanup(self, store: &dyn Storage) {
        let prefixes = self
            .modules
            .iter()
            .map(|m| ListPrefix::Module(m.clone()))
            .chain(self.sumdbs.iter().map(|db| ListPrefix::Sumdb(db.clone())));
        for prefix in prefixes {
            for entry in list(store, &prefix, self.name).await {
                if let Err(e) = store.delete(&entry.key).await {
                    panic!(
                        "{}: cleanup: delete {} failed: {}",
                        self.name,
                        entry.key,
                        describe(&e)
                    );
                }
            }
            let left = list(store, &prefix, self.name).await;
            assert!(
                left.is_empty(),
                "{}: cleanup: objects under {:?} still listed after deleting them: {:?}",
                self.name,
                prefix.path_prefix(),
                left.iter().map(|e| e.key.path()).collect::<Vec<_>>()
            );
        }
    }
}

/// A canonical version from test data.
pub(super) fn version(v: &str) -> Version {
    Version::parse(v)
        .unwrap_or_else(|e| panic!("conformance test data: version {v:?} rejected by gomod: {e}"))
}

/// An error with both its message and its variant.
pub(super) fn describe(e: &StorageError) -> String {
    format!("{e} [{e:?}]")
}

/// A xorshift64 generator: fast, deterministic pseudo-random bytes for bodies.
pub(super) struct XorShift64(u64);

impl XorShift64 {
    pub fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        XorShift64(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// FNV-1a, to seed a body from a tag.
fn seed_of(tag: &str) -> u64 {
    tag.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `len` pseudo-random bytes determined by `tag`: different tags give different bodies.
pub(super) fn body(tag: &str, len: usize) -> Bytes {
    let mut buf = vec![0u8; len];
    XorShift64::new(seed_of(tag)).fill(&mut buf);
    Bytes::from(buf)
}

/// `data` as a stream of chunks whose sizes cycle through `sizes` (zeros give empty chunks). Each
/// chunk is preceded by a yield to the runtime, so that concurrent puts really interleave.
pub(super) fn chunked(data: Bytes, sizes: &[usize]) -> ByteStream {
    assert!(
        sizes.iter().any(|&s| s > 0),
        "chunk sizes must not all be zero"
    );
    let mut chunks = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        chunks.push(data.slice(at..end));
        at = end;
    }
    stream::iter(chunks)
        .then(|chunk| async move {
            tokio::task::yield_now().await;
            Ok(chunk)
        })
        .boxed()
}

/// The first `fail_after` bytes of `data` in chunks, then an error.
pub(super) fn failing(data: Bytes, fail_after: usize) -> ByteStream {
    let head = data.slice(..fail_after.min(data.len()));
    let sizes = [4096, 1000];
    let good = if head.is_empty() {
        stream::empty().boxed()
    } else {
        chunked(head, &sizes)
    };
    good.chain(stream::once(async { Err(io::Error::other(INJECTED)) }))
        .boxed()
}

/// Collects a listing, failing the test on any error entry.
pub(super) async fn list(store: &dyn Storage, prefix: &ListPrefix, ctx: &str) -> Vec<ListEntry> {
    let results: Vec<_> = store.list(prefix).collect().await;
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|e| {
                panic!("{ctx}: list {prefix:?} yielded an error: {}", describe(&e))
            })
        })
        .collect()
}

/// Reads a whole body, failing the test if the store errs or yields a different number of bytes
/// than its metadata says.
pub(super) async fn read(store: &dyn Storage, key: &Key, ctx: &str) -> (ObjectMeta, Vec<u8>) {
    let got = store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: get {key} failed: {}", describe(&e)));
    let meta = got.meta;
    let body = read_stream(got.body)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: reading the body of {key} failed: {e}"));
    assert_eq!(
        body.len() as u64,
        meta.size,
        "{ctx}: get {key}: body has {} bytes but meta.size says {}",
        body.len(),
        meta.size
    );
    (meta, body)
}

/// Drains a body stream.
pub(super) async fn read_stream(mut body: ByteStream) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Checks that `key` holds exactly `expected` (through `get` and `head`) and returns its meta.
pub(super) async fn assert_body(
    store: &dyn Storage,
    key: &Key,
    expected: &[u8],
    ctx: &str,
) -> ObjectMeta {
    let (meta, got) = read(store, key, ctx).await;
    assert_same_bytes(&got, expected, &format!("{ctx}: get {key}"));
    let head = store
        .head(key)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: head {key} failed: {}", describe(&e)));
    assert_eq!(
        head.size,
        expected.len() as u64,
        "{ctx}: head {key}: wrong size"
    );
    meta
}

/// Compares bodies without dumping them.
pub(super) fn assert_same_bytes(got: &[u8], expected: &[u8], ctx: &str) {
    if got != expected {
        let at = got
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(expected.len()));
        panic!(
            "{ctx}: body differs: got {} bytes, expected {}, first difference at byte {at}",
            got.len(),
            expected.len()
        );
    }
}

/// Checks that `get` and `head` of `key` both report [`StorageError::NotFound`] naming the key.
pub(super) async fn assert_missing(store: &dyn Storage, key: &Key, ctx: &str) {
    let path = key.path();
    match store.get(key).await {
        Err(StorageError::NotFound { key: k }) => {
            assert_eq!(k, path, "{ctx}: get {key}: NotFound names the wrong key")
        }
        Err(e) => panic!("{ctx}: get {key}: expected NotFound, got {}", describe(&e)),
        Ok(got) => panic!(
            "{ctx}: get {key}: expected NotFound, got an object ({:?})",
            got.meta
        ),
    }
    match store.head(key).await {
        Err(e) if e.is_not_found() => {}
        Err(e) => panic!("{ctx}: head {key}: expected NotFound, got {}", describe(&e)),
        Ok(meta) => panic!("{ctx}: head {key}: expected NotFound, got {meta:?}"),
    }
}

/// Checks that two reports of one object's store time agree within `slack`.
pub(super) fn assert_close(a: SystemTime, b: SystemTime, slack: Duration, ctx: &str) {
    let diff = a
        .duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default();
    assert!(
        diff <= slack,
        "{ctx}: times {a:?} and {b:?} differ by {diff:?}, more than {slack:?}"
    );
}

/// Checks that `t` lies within `[before - slack, after + slack]`.
pub(super) fn assert_recent(
    t: SystemTime,
    before: SystemTime,
    after: SystemTime,
    slack: Duration,
    ctx: &str,
) {
    assert!(
        t + slack >= before && t <= after + slack,
        "{ctx}: modified {t:?} is not between {before:?} and {after:?} (slack {slack:?})"
    );
}
