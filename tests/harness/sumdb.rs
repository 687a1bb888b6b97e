//! A Go checksum database for the tests: its own Ed25519 key, a real transparency log of
//! module hashes, and the database's HTTP API on 127.0.0.1, so that the real `go` command can
//! verify downloads with checksum verification on, without leaving the machine.
//!
//! # The log
//!
//! Every record is the go.sum lines of one module version, exactly as sum.golang.org stores
//! them: `"<module> <version> <h1 zip>\n<module> <version>/go.mod <h1 go.mod>\n"`, the module
//! path unescaped. [`SumdbServer::start`] takes the records of interest ([`ModuleRecord`],
//! usually [`fixture_records`]) and a number of *filler* records (made-up modules
//! `filler.example/m<i> v1.0.0` with made-up hashes) and spreads the records of interest evenly
//! among the fillers, so that with [`FIXTURE_LOG_SIZE`] records the tree has hundreds of full
//! level-0 tiles, a full and a partial level-1 tile and a level-2 tile, and no two fixture
//! records share a level-0 tile. The log is built with the project's own `gomod::sumdb` code
//! (record and node hashes, stored-hash indexes, tree hash, tree note, signer); the real `go`
//! command is the independent judge of the result.
//!
//! The signing key is derived from the database name (seed = SHA-256 of a fixed prefix and the
//! name), so a database's [`SumdbServer::vkey`] is the same on every run.
//!
//! # HTTP
//!
//! The server answers on both path forms the go command uses:
//!
//! - the database's own: `<url>/latest`, `<url>/lookup/<module>@<version>`, `<url>/tile/…`
//!   (reached with `GOSUMDB="<vkey> <url>"`, see [`SumdbServer::gosumdb`]);
//! - a proxy's: `<url>/sumdb/<name>/supported` (200, empty body) and
//!   `<url>/sumdb/<name>/{latest,lookup/…,tile/…}` (reached with `GOSUMDB="<vkey>"` and
//!   `GOPROXY="<url>,<module proxy>"`: the go command asks each GOPROXY entry for `supported`).
//!
//! Every other path is 404, so the server can sit first in a GOPROXY list and module requests
//! fall through to the next entry. Answers:
//!
//! - `lookup`: `<id>\n<record>\n<signed note of the current tree>` (text/plain), as Go's
//!   `sumdb.Server`; an unknown module version is 404 with a one-line body, a malformed path 400.
//! - `tile/8/<L>/<N>[.p/<W>]`: the `W` stored hashes of that tile (application/octet-stream),
//!   served whenever the current tree has at least `W` entries there — a narrower `.p/W` than
//!   the tree's width is served as the prefix, as sum.golang.org does, so a client holding an
//!   older tree still gets its tiles; beyond the tree, 404. Other heights are 404.
//! - `tile/8/data/<N>[.p/<W>]`: data tiles as Go's `sumdb.Server` serves them: the `W` record
//!   texts, each followed by a blank line (text/plain).
//! - `latest`: the signed note of the current tree.
//!
//! The log can grow ([`SumdbServer::append`]) and its history can be rewritten
//! ([`SumdbServer::rewrite_record`], a fork that an honest database never makes). Requests are
//! counted per path, and faults ([`SumdbFault`]) make single paths misbehave.
//!
//! The HTTP is written by hand on tokio (one request per connection), like the fixture
//! upstream's, so that the bytes on the wire are exactly the ones the tests decide.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gomod::sumdb::note::Signer;
use gomod::sumdb::tlog::{self, Hash, Tile, Tree};
use gomod::sumdb::{Lookup, SumdbName, SumdbPath};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::{self, Fixtures, ModuleVersion};
use crate::upstream::percent_decode;

/// The tile height of the database (the Go checksum database's).
pub const TILE_HEIGHT: u32 = tlog::SUMDB_TILE_HEIGHT;

/// The log size [`SumdbServer::with_fixtures`] builds: 273 full level-0 tiles and a partial one,
/// one full and one partial level-1 tile, a level-2 tile.
pub const FIXTURE_LOG_SIZE: usize = 70_000;

/// The go.sum lines of one module version: one record of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRecord {
    /// The module path, unescaped (original case).
    pub module: String,
    /// The version.
    pub version: String,
    /// The `h1:` of the module zip.
    pub zip: String,
    /// The `h1:` of the go.mod.
    pub go_mod: String,
}

impl ModuleRecord {
    /// A record with these hashes.
    pub fn new(module: &str, version: &str, zip: &str, go_mod: &str) -> ModuleRecord {
        ModuleRecord {
            module: module.to_string(),
            version: version.to_string(),
            zip: zip.to_string(),
            go_mod: go_mod.to_string(),
        }
    }

    /// The record of a fixture module version, hashed with the independent `h1:` oracle of
    /// [`fixtures`] over the bytes the fixture upstream serves.
    pub fn of_fixture(fx: &Fixtures, mv: &ModuleVersion) -> ModuleRecord {
        ModuleRecord::new(
            &mv.module,
            &mv.version,
            &fixtures::h1_zip(&fx.zip_bytes(&mv.module, &mv.version)),
            &fixtures::h1_go_mod(&fx.mod_bytes(&mv.module, &mv.version)),
        )
    }

    /// The record text the log holds (and hashes): two go.sum lines.
    pub fn text(&self) -> String {
        let (m, v) = (&self.module, &self.version);
        format!("{m} {v} {}\n{m} {v}/go.mod {}\n", self.zip, self.go_mod)
    }

    /// The `i`-th filler record: a made-up module with made-up, well-formed hashes (32
    /// pseudo-random bytes each, from a cheap mix of `i`: building a log must stay fast).
    pub fn filler(i: u64) -> ModuleRecord {
        let h1 = |salt: u64| {
            let mut bytes = [0u8; 32];
            for (k, chunk) in bytes.chunks_mut(8).enumerate() {
                chunk.copy_from_slice(
                    &splitmix64(i ^ salt.rotate_left(k as u32 * 16)).to_le_bytes(),
                );
            }
            format!("h1:{}", STANDARD.encode(bytes))
        };
        ModuleRecord::new(
            &format!("filler.example/m{i}"),
            "v1.0.0",
            &h1(0x5a17_0000_0000_0001),
            &h1(0x6d0d_0000_0000_0002),
        )
    }
}

/// SplitMix64's output function: a bijective mix of 64 bits.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The records of every fixture module version of [`Fixtures::shared`], in fixture order
/// (computed once per process: hashing the large fixture zip takes a moment).
pub fn fixture_records() -> &'static [ModuleRecord] {
    static RECORDS: OnceLock<Vec<ModuleRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let fx = Fixtures::shared();
        fx.versions()
            .iter()
            .map(|mv| ModuleRecord::of_fixture(fx, mv))
            .collect()
    })
}

/// How the database misbehaves for a path (see [`SumdbServer::set_fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumdbFault {
    /// Answer with this status and a one-line text body.
    Status(u16),
    /// Serve the tile with the byte at this offset inverted (the offset is taken modulo the
    /// served length, so a tampered tile never goes out intact). Tiles only.
    FlipTileByte(usize),
    /// Serve the lookup with its record's first hash changed (one base64 character), while the
    /// log keeps the honest record: the answer no longer matches the log. Lookups only.
    TamperRecord,
}

/// One request the database received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The request path as received, percent-decoded (`/sumdb/<name>/lookup/…` or `/lookup/…`).
    pub path: String,
    /// The database-relative path (`/lookup/…`, `/tile/…`, `/latest`, `/supported`), or `None`
    /// for a path that is not the database's.
    pub db_path: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// A record of the log: a filler (its text is regenerated from its number when needed, so a
/// large log holds no filler strings) or a text.
#[derive(Debug, Clone)]
enum Entry {
    Filler(u64),
    Text(String),
}

/// Filler module paths are `<FILLER_PREFIX><number>`.
const FILLER_PREFIX: &str = "filler.example/m";

/// The log: records, every stored hash, the current tree and its signed note.
struct Log {
    signer: Signer,
    entries: Vec<Entry>,
    /// Record ids of the records of interest.
    ids: HashMap<(String, String), i64>,
    /// Record ids of the fillers, by filler number.
    filler_ids: Vec<i64>,
    stored: Vec<Hash>,
    tree: Tree,
    note: String,
}

impl Log {
    fn new(signer: Signer) -> Log {
        let mut log = Log {
            signer,
            entries: Vec::new(),
            ids: HashMap::new(),
            filler_ids: Vec::new(),
            stored: Vec::new(),
            tree: Tree {
                n: 0,
                hash: Hash::default(),
            },
            note: String::new(),
        };
        log.sign();
        log
    }

    fn text(&self, id: i64) -> String {
        match &self.entries[id as usize] {
            Entry::Filler(i) => ModuleRecord::filler(*i).text(),
            Entry::Text(text) => text.clone(),
        }
    }

    /// The record id of `module@version`.
    fn id(&self, module: &str, version: &str) -> Option<i64> {
        if let Some(&id) = self.ids.get(&(module.to_string(), version.to_string())) {
            return Some(id);
        }
        let i: u64 = module.strip_prefix(FILLER_PREFIX)?.parse().ok()?;
        let filler = ModuleRecord::filler(i);
        if filler.module != module || filler.version != version {
            return None;
        }
        self.filler_ids.get(i as usize).copied()
    }

    /// Adds a record and its stored hashes.
    fn push(&mut self, entry: Entry, text: &str) {
        let id = self.entries.len() as i64;
        let record = tlog::record_hash(text.as_bytes());
        let stored = &self.stored;
        let new = tlog::stored_hashes_for_record(id, record, |x| stored[x as usize]);
        self.stored.extend(new);
        self.entries.push(entry);
    }

    fn push_record(&mut self, record: &ModuleRecord) {
        assert!(
            !record.module.starts_with(FILLER_PREFIX),
            "sumdb: {} is a filler's module path",
            record.module
        );
        let id = self.entries.len() as i64;
        let key = (record.module.clone(), record.version.clone());
        if self.ids.insert(key, id).is_some() {
            panic!(
                "sumdb: {}@{} is already in the log (a checksum database has one record per \
                 module version)",
                record.module, record.version
            );
        }
        let text = record.text();
        self.push(Entry::Text(text.clone()), &text);
    }

    fn push_filler(&mut self) {
        let i = self.filler_ids.len() as u64;
        self.filler_ids.push(self.entries.len() as i64);
        self.push(Entry::Filler(i), &ModuleRecord::filler(i).text());
    }

    /// Appends `records` spread evenly among `fillers` new filler records, then signs.
    fn append(&mut self, records: &[ModuleRecord], fillers: usize) {
        let r = records.len() as i64;
        let total = r + fillers as i64;
        let mut next = 0i64;
        for i in 0..total {
            // Record k goes to position (2k+1)·total/(2r): strictly increasing (total ≥ r), the
            // first one half a gap in, the last one half a gap before the end.
            if next < r && i == (2 * next + 1) * total / (2 * r) {
                self.push_record(&records[next as usize]);
                next += 1;
            } else {
                self.push_filler();
            }
        }
        assert_eq!(next, r, "sumdb: record placement lost a record");
        self.sign();
    }

    /// Replaces a record's text and recomputes every stored hash from it on.
    fn rewrite(&mut self, id: i64, text: &str) {
        let n = self.entries.len() as i64;
        assert!((0..n).contains(&id), "sumdb: no record {id}");
        assert!(
            text.ends_with('\n') && !text.starts_with('\n') && !text.contains("\n\n"),
            "sumdb: {text:?} is not a record text"
        );
        self.entries[id as usize] = Entry::Text(text.to_string());
        let rest = self.entries.split_off(id as usize);
        self.stored
            .truncate(tlog::stored_hash_index(0, id) as usize);
        for entry in rest {
            let text = match &entry {
                Entry::Filler(i) => ModuleRecord::filler(*i).text(),
                Entry::Text(text) => text.clone(),
            };
            self.push(entry, &text);
        }
        self.sign();
    }

    fn sign(&mut self) {
        let n = self.entries.len() as i64;
        assert_eq!(self.stored.len() as i64, tlog::stored_hash_count(n));
        let stored = &self.stored;
        self.tree = Tree {
            n,
            hash: tlog::tree_hash(n, |x| stored[x as usize]),
        };
        self.note = self
            .signer
            .sign(&self.tree.format())
            .expect("sign tree note");
    }

    /// The tile's data if the current tree has it at this width (or wider).
    fn tile(&self, tile: &Tile) -> Option<Vec<u8>> {
        if tile.h != TILE_HEIGHT {
            return None;
        }
        let start = tile.n.checked_mul(1 << tile.h)?;
        let end = start + i64::from(tile.w);
        if tile.l == -1 {
            if end > self.tree.n {
                return None;
            }
            let mut data = Vec::new();
            for id in start..end {
                data.extend_from_slice(self.text(id).as_bytes());
                data.push(b'\n');
            }
            return Some(data);
        }
        // Hashes at level L·H exist for every complete subtree of 2^(L·H) records.
        let level = tile.l as u32 * tile.h;
        if level >= 63 || end > self.tree.n >> level {
            return None;
        }
        let mut data = Vec::with_capacity(tile.w as usize * tlog::HASH_SIZE);
        for i in start..end {
            data.extend_from_slice(&self.stored[tlog::stored_hash_index(level, i) as usize].0);
        }
        Some(data)
    }
}

#[derive(Default)]
struct Faults {
    by_path: HashMap<String, SumdbFault>,
    global: Option<SumdbFault>,
}

struct State {
    name: String,
    log: RwLock<Log>,
    faults: Mutex<Faults>,
    hits: Mutex<HashMap<String, u64>>,
    requests: Mutex<Vec<Request>>,
}

/// A running checksum database. Dropping it (or [`SumdbServer::stop`]) closes the port.
pub struct SumdbServer {
    addr: SocketAddr,
    vkey: String,
    state: Arc<State>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for SumdbServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumdbServer")
            .field("name", &self.state.name)
            .field("url", &self.url())
            .field("tree", &self.tree())
            .finish()
    }
}

impl SumdbServer {
    /// Starts database `name` (a host-like name such as `sum.e2e.test`, which the proxy under
    /// test accepts; the key is derived from it) on a free loopback port. The log holds
    /// `records` spread evenly among `fillers` filler records (see the module docs). Panics if
    /// a module version appears twice.
    pub fn start(name: &str, records: &[ModuleRecord], fillers: usize) -> SumdbServer {
        if let Err(e) = SumdbName::parse(name) {
            panic!("sumdb: bad database name {name:?}: {e}");
        }
        let seed: [u8; 32] = Sha256::digest(format!("gomodproxy-tests sumdb key {name}")).into();
        let signer = Signer::from_seed(name, seed).expect("sumdb signer");
        let vkey = signer.verifier_key();
        let mut log = Log::new(signer);
        log.append(records, fillers);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sumdb")
            .enable_all()
            .build()
            .expect("sumdb runtime");
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind sumdb");
        let addr = listener.local_addr().expect("sumdb addr");
        let state = Arc::new(State {
            name: name.to_string(),
            log: RwLock::new(log),
            faults: Mutex::new(Faults::default()),
            hits: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = handle(stream, &st).await;
                });
            }
        });
        SumdbServer {
            addr,
            vkey,
            state,
            runtime: Some(runtime),
        }
    }

    /// [`SumdbServer::start`] with every fixture module version ([`fixture_records`]) spread
    /// over a log of [`FIXTURE_LOG_SIZE`] records.
    pub fn with_fixtures(name: &str) -> SumdbServer {
        let records = fixture_records();
        SumdbServer::start(name, records, FIXTURE_LOG_SIZE - records.len())
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The base URL, `http://127.0.0.1:PORT`: the database's own URL, and also a GOPROXY entry
    /// that serves `/sumdb/<name>/`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The verifier key, `<name>+<hash>+<key>`: `GOSUMDB` for reaching the database through a
    /// GOPROXY entry that serves `/sumdb/<name>/` (this server, or a proxy in front of it).
    pub fn vkey(&self) -> String {
        self.vkey.clone()
    }

    /// `GOSUMDB` naming this server's URL: `"<vkey> http://127.0.0.1:PORT"`. The go command
    /// accepts a plain-http URL here because it is explicit (`web.DefaultSecurity`; GOINSECURE
    /// plays no part), with or without a trailing `/`, and then talks to this URL only,
    /// bypassing GOPROXY. Without the scheme (`"<vkey> 127.0.0.1:PORT"`) it refuses: "invalid
    /// GOSUMDB URL: … first path segment in URL cannot contain colon".
    pub fn gosumdb(&self) -> String {
        format!("{} {}", self.vkey, self.url())
    }

    /// The current tree (size and root hash).
    pub fn tree(&self) -> Tree {
        self.state.log.read().unwrap().tree
    }

    /// The signed note of the current tree (what `/latest` serves, and what a client stores in
    /// `$GOPATH/pkg/sumdb/<name>/latest`).
    pub fn latest_note(&self) -> String {
        self.state.log.read().unwrap().note.clone()
    }

    /// The record id of `module@version` (unescaped), if the log has it.
    pub fn record_id(&self, module: &str, version: &str) -> Option<i64> {
        self.state.log.read().unwrap().id(module, version)
    }

    /// The text of record `id`; panics if there is none.
    pub fn record_text(&self, id: i64) -> String {
        self.state.log.read().unwrap().text(id)
    }

    /// The honest data of a tile in the current tree (no fault applied), or `None` where the
    /// server answers 404.
    pub fn tile_data(&self, tile: &Tile) -> Option<Vec<u8>> {
        self.state.log.read().unwrap().tile(tile)
    }

    /// Appends `records` spread evenly among `fillers` new fillers and signs the grown tree,
    /// which every later answer carries. Returns the new tree.
    pub fn append(&self, records: &[ModuleRecord], fillers: usize) -> Tree {
        let mut log = self.state.log.write().unwrap();
        log.append(records, fillers);
        log.tree
    }

    /// Rewrites history: record `id` gets `text` (its lookup serves the new text too) and the
    /// tree is recomputed and signed at the same size. A client that verified an older tree
    /// now sees a fork. Returns the new tree.
    pub fn rewrite_record(&self, id: i64, text: &str) -> Tree {
        let mut log = self.state.log.write().unwrap();
        log.rewrite(id, text);
        log.tree
    }

    /// Makes one database path misbehave until cleared. `path` is database-relative, as the
    /// database's own form spells it, and applies to both URL forms: `/latest`,
    /// `/lookup/<escaped module>@<escaped version>`, `/tile/8/<L>/<N>[.p/<W>]`, `/supported`
    /// (the proxy form's probe). A tile path without `.p/<W>` covers that tile at every width.
    /// Panics if the fault cannot apply to the path.
    pub fn set_fault(&self, path: &str, fault: SumdbFault) {
        match &fault {
            SumdbFault::FlipTileByte(_) => assert!(
                path.starts_with("/tile/"),
                "FlipTileByte applies to tiles, not {path}"
            ),
            SumdbFault::TamperRecord => assert!(
                path.starts_with("/lookup/"),
                "TamperRecord applies to lookups, not {path}"
            ),
            SumdbFault::Status(_) => {}
        }
        let mut faults = self.state.faults.lock().unwrap();
        faults.by_path.insert(path.to_string(), fault);
    }

    /// Makes `path` behave again.
    pub fn clear_fault(&self, path: &str) {
        self.state.faults.lock().unwrap().by_path.remove(path);
    }

    /// Makes every database request without its own fault misbehave (`None` clears):
    /// `Status` applies to every database path, `FlipTileByte` to every tile, `TamperRecord`
    /// to every lookup. Paths that are not the database's stay 404.
    pub fn set_global_fault(&self, fault: Option<SumdbFault>) {
        self.state.faults.lock().unwrap().global = fault;
    }

    /// Requests received for `path` as sent (percent-decoded), e.g.
    /// `/sumdb/<name>/lookup/example.com/!upper/!case@v1.0.0` or `/tile/8/0/022`.
    pub fn hits(&self, path: &str) -> u64 {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests received in total.
    pub fn total_hits(&self) -> u64 {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Database-relative paths (either URL form) answered 200 whose path starts with `prefix`
    /// (`/tile/`, `/lookup/`), with how many times each was.
    pub fn served(&self, prefix: &str) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for r in self.state.requests.lock().unwrap().iter() {
            if let Some(p) = &r.db_path
                && r.status == 200
                && p.starts_with(prefix)
            {
                *out.entry(p.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Stops serving: the port is closed and open connections are dropped.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for SumdbServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// An answer: status, content type, body.
struct Answer {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: u16, line: &str) -> Answer {
    Answer {
        status,
        content_type: TEXT,
        body: format!("{line}\n").into_bytes(),
    }
}

/// The database-relative path of a request (`/latest`, `/supported`, …), or `None` if the path
/// is not the database's in either form.
fn db_path(name: &str, path: &str) -> Option<String> {
    match path.strip_prefix("/sumdb/") {
        Some(rest) => {
            let rest = rest.strip_prefix(name)?.strip_prefix('/')?;
            Some(format!("/{rest}"))
        }
        None => ["/latest", "/lookup/", "/tile/"]
            .iter()
            .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)))
            .then(|| path.to_string()),
    }
}

/// Changes one base64 character of the record's first hash.
fn tamper_record(text: &str) -> String {
    let at = text.find(" h1:").expect("record has a hash") + 4;
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII record")
}

fn answer(st: &State, db: &str) -> Answer {
    let fault = {
        let faults = st.faults.lock().unwrap();
        let mut own = faults.by_path.get(db).cloned();
        if own.is_none()
            && let Ok(SumdbPath::Tile(t)) = SumdbPath::parse(&db[1..])
        {
            let full = Tile { w: 1 << t.h, ..t };
            own = faults.by_path.get(&format!("/{}", full.path())).cloned();
        }
        own.or_else(|| faults.global.clone())
    };
    if let Some(SumdbFault::Status(code)) = fault {
        return text(code, &format!("sumdb: injected status {code}"));
    }
    if db == "/supported" {
        return Answer {
            status: 200,
            content_type: TEXT,
            body: Vec::new(),
        };
    }
    let parsed = match SumdbPath::parse(&db[1..]) {
        Ok(p) => p,
        Err(e) if db.starts_with("/lookup/") || db.starts_with("/tile/") => {
            return text(400, &format!("invalid request: {e}"));
        }
        Err(_) => return text(404, "not found"),
    };
    let log = st.log.read().unwrap();
    match parsed {
        SumdbPath::Supported => text(404, "not found"),
        SumdbPath::Latest => Answer {
            status: 200,
            content_type: TEXT,
            body: log.note.clone().into_bytes(),
        },
        SumdbPath::Lookup { module, version } => {
            let (module, version) = (module.as_str(), version.as_str());
            let Some(id) = log.id(module, version) else {
                return text(404, &format!("not found: {module}@{version}"));
            };
            let mut record = log.text(id);
            if fault == Some(SumdbFault::TamperRecord) {
                record = tamper_record(&record);
            }
            let lookup = Lookup {
                id,
                text: record,
                note: Vec::new(),
            };
            Answer {
                status: 200,
                content_type: TEXT,
                body: lookup.format_with_note(log.note.as_bytes()),
            }
        }
        SumdbPath::Tile(tile) => {
            let Some(mut data) = log.tile(&tile) else {
                return text(
                    404,
                    &format!("not found: {} (tree size {})", tile.path(), log.tree.n),
                );
            };
            if let Some(SumdbFault::FlipTileByte(offset)) = fault
                && !data.is_empty()
            {
                let at = offset % data.len();
                data[at] = !data[at];
            }
            Answer {
                status: 200,
                content_type: if tile.is_data() {
                    TEXT
                } else {
                    "application/octet-stream"
                },
                body: data,
            }
        }
    }
}

async fn handle(mut stream: TcpStream, st: &State) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 64 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let path = String::from_utf8_lossy(&percent_decode(target.split('?').next().unwrap_or("")))
        .to_string();

    let db = db_path(&st.name, &path);
    let answer = if method != "GET" && method != "HEAD" {
        text(405, "method not allowed")
    } else {
        match &db {
            Some(db) => answer(st, db),
            None => text(404, "not found"),
        }
    };

    *st.hits.lock().unwrap().entry(path.clone()).or_insert(0) += 1;
    st.requests.lock().unwrap().push(Request {
        path,
        db_path: db,
        status: answer.status,
    });

    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.status,
        reason(answer.status),
        answer.content_type,
        answer.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(&answer.body).await?;
    }
    stream.flush().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
