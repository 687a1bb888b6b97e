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
//! records share a level-0 tile. The log is `gomodproxy-test-support`'s [`TestLog`], built with
//! the project's own `gomod::sumdb` code (record and node hashes, stored-hash indexes, tree hash,
//! tree note, signer); the real `go` command is the independent judge of the result.
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

use gomod::sumdb::tlog::{self, Tile, Tree};
use gomod::sumdb::{Lookup, SumdbName, SumdbPath};
use gomodproxy_test_support::TestLog;
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

pub use gomodproxy_test_support::ModuleRecord;

/// The record of a fixture module version, hashed with the independent `h1:` oracle of
/// [`fixtures`] over the bytes the fixture upstream serves.
pub fn fixture_record(fx: &Fixtures, mv: &ModuleVersion) -> ModuleRecord {
    ModuleRecord::new(
        &mv.module,
        &mv.version,
        &fixtures::h1_zip(&fx.zip_bytes(&mv.module, &mv.version)),
        &fixtures::h1_go_mod(&fx.mod_bytes(&mv.module, &mv.version)),
    )
}

/// The records of every fixture module version of [`Fixtures::shared`], in fixture order
/// (computed once per process: hashing the large fixture zip takes a moment).
pub fn fixture_records() -> &'static [ModuleRecord] {
    static RECORDS: OnceLock<Vec<ModuleRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let fx = Fixtures::shared();
        fx.versions()
            .iter()
            .map(|mv| fixture_record(fx, mv))
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

#[derive(Default)]
struct Faults {
    by_path: HashMap<String, SumdbFault>,
    global: Option<SumdbFault>,
}

struct State {
    name: String,
    log: RwLock<TestLog>,
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
        let mut log = TestLog::from_seed(name, seed);
        let vkey = log.vkey();
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
        self.state.log.read().unwrap().tree()
    }

    /// The signed note of the current tree (what `/latest` serves, and what a client stores in
    /// `$GOPATH/pkg/sumdb/<name>/latest`).
    pub fn latest_note(&self) -> String {
        String::from_utf8(self.state.log.read().unwrap().note().to_vec()).expect("a note is text")
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
        log.tree()
    }

    /// Rewrites history: record `id` gets `text` (its lookup serves the new text too) and the
    /// tree is recomputed and signed at the same size. A client that verified an older tree
    /// now sees a fork. Returns the new tree.
    pub fn rewrite_record(&self, id: i64, text: &str) -> Tree {
        let mut log = self.state.log.write().unwrap();
        log.rewrite(id, text);
        log.tree()
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
        SumdbPath::Supported | SumdbPath::Tree(_) => text(404, "not found"),
        SumdbPath::Latest => Answer {
            status: 200,
            content_type: TEXT,
            body: log.note().to_vec(),
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
                body: lookup.format_with_note(&log.note()),
            }
        }
        SumdbPath::Tile(tile) => {
            let Some(mut data) = log.tile(&tile) else {
                return text(
                    404,
                    &format!("not found: {} (tree size {})", tile.path(), log.tree().n),
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
