//! A Go checksum database's transparency log, for tests.
//!
//! Every record is the go.sum lines of one module version, exactly as sum.golang.org stores
//! them: `"<module> <version> <h1 zip>\n<module> <version>/go.mod <h1 go.mod>\n"`, the module
//! path unescaped. Besides the records a test cares about, a log holds *fillers*: made-up
//! modules `filler.example/m<i> v1.0.0` with made-up, well-formed hashes, whose text is
//! regenerated from their number when needed, so that a log of tens of thousands of records
//! holds no filler strings.
//!
//! The log is signed after every change: [`TestLog::tree`] and [`TestLog::note`] are always those
//! of the current records.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gomod::sumdb::Lookup;
use gomod::sumdb::note::Signer;
use gomod::sumdb::tlog::{self, Hash, Tile, Tree};

/// Filler module paths are `<FILLER_PREFIX><number>`.
pub const FILLER_PREFIX: &str = "filler.example/m";

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
            &format!("{FILLER_PREFIX}{i}"),
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

/// A record of the log: a filler (by number) or a text.
#[derive(Debug, Clone)]
enum Entry {
    Filler(u64),
    Text(String),
}

impl Entry {
    fn text(&self) -> String {
        match self {
            Entry::Filler(i) => ModuleRecord::filler(*i).text(),
            Entry::Text(text) => text.clone(),
        }
    }
}

/// A signed transparency log of go.sum records (see the module docs).
#[derive(Clone)]
pub struct TestLog {
    signer: Signer,
    entries: Vec<Entry>,
    /// Record ids of the records added as texts, by (module, version).
    ids: HashMap<(String, String), i64>,
    /// Record ids of the fillers, by filler number.
    filler_ids: Vec<i64>,
    /// Every stored hash (`tlog`'s layout).
    stored: Vec<Hash>,
    tree: Tree,
    note: Bytes,
}

impl std::fmt::Debug for TestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLog")
            .field("vkey", &self.vkey())
            .field("tree", &self.tree)
            .finish()
    }
}

impl TestLog {
    /// An empty log signed by `signer`.
    pub fn new(signer: Signer) -> TestLog {
        let mut log = TestLog {
            signer,
            entries: Vec::new(),
            ids: HashMap::new(),
            filler_ids: Vec::new(),
            stored: Vec::new(),
            tree: Tree {
                n: 0,
                hash: Hash::default(),
            },
            note: Bytes::new(),
        };
        log.sign();
        log
    }

    /// An empty log of database `name`, signed by the key derived from `seed`.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> TestLog {
        TestLog::new(Signer::from_seed(name, seed).expect("test signer"))
    }

    /// The same records, signed by `signer` (an impostor's tree head of the same log).
    pub fn signed_by(&self, signer: Signer) -> TestLog {
        let mut log = TestLog {
            signer,
            ..self.clone()
        };
        log.sign();
        log
    }

    /// The first `n` records, as the log was when it had `n` records.
    pub fn prefix(&self, n: i64) -> TestLog {
        assert!((0..=self.n()).contains(&n), "no prefix of {n} records");
        let mut log = TestLog {
            signer: self.signer.clone(),
            entries: self.entries[..n as usize].to_vec(),
            ids: self
                .ids
                .iter()
                .filter(|(_, id)| **id < n)
                .map(|(mv, id)| (mv.clone(), *id))
                .collect(),
            filler_ids: self
                .filler_ids
                .iter()
                .copied()
                .filter(|id| *id < n)
                .collect(),
            stored: self.stored[..tlog::stored_hash_count(n) as usize].to_vec(),
            tree: self.tree,
            note: Bytes::new(),
        };
        log.sign();
        log
    }

    /// The verifier key (`<name>+<hash>+<key>`), as `GOSUMDB` and a proxy's configuration name
    /// the database.
    pub fn vkey(&self) -> String {
        self.signer.verifier_key()
    }

    /// The number of records.
    pub fn n(&self) -> i64 {
        self.entries.len() as i64
    }

    /// The current tree (size and root hash).
    pub fn tree(&self) -> Tree {
        self.tree
    }

    /// The signed note of the current tree (what `latest` serves).
    pub fn note(&self) -> Bytes {
        self.note.clone()
    }

    /// Adds the record of `module@version` with these hashes; returns its id.
    pub fn add(&mut self, module: &str, version: &str, zip_h1: &str, mod_h1: &str) -> i64 {
        let id = self.push_record(&ModuleRecord::new(module, version, zip_h1, mod_h1));
        self.sign();
        id
    }

    /// Adds `count` fillers.
    pub fn fillers(&mut self, count: usize) {
        for _ in 0..count {
            self.push_filler();
        }
        self.sign();
    }

    /// Appends `records` spread evenly among `fillers` new fillers: the first half a gap in,
    /// the last half a gap before the end.
    pub fn append(&mut self, records: &[ModuleRecord], fillers: usize) {
        let r = records.len() as i64;
        let total = r + fillers as i64;
        let mut next = 0i64;
        for i in 0..total {
            // Record k goes to position (2k+1)·total/(2r): strictly increasing (total ≥ r).
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

    /// Rewrites history: record `id` gets `text`, every stored hash from it on is recomputed,
    /// and the tree of the same size is signed — a fork.
    pub fn rewrite(&mut self, id: i64, text: &str) {
        let n = self.n();
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
            let text = entry.text();
            self.push(entry, &text);
        }
        self.sign();
    }

    /// The record id of `module@version` (unescaped; a record or a filler), if the log has it.
    pub fn id(&self, module: &str, version: &str) -> Option<i64> {
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

    /// The text of record `id`; panics if there is none.
    pub fn text(&self, id: i64) -> String {
        self.entries[id as usize].text()
    }

    /// The module versions added as records (not the fillers), in no particular order.
    pub fn recorded(&self) -> impl Iterator<Item = (&str, &str)> {
        self.ids.keys().map(|(m, v)| (m.as_str(), v.as_str()))
    }

    /// The lookup answer for `module@version`: `<id>\n<record>\n<signed note>`. Panics if the
    /// log has no such record.
    pub fn lookup_body(&self, module: &str, version: &str) -> Bytes {
        self.lookup_body_with_note(module, version, &self.note)
    }

    /// The lookup answer for `module@version` with another note attached (the tree of another
    /// day, or of another key).
    pub fn lookup_body_with_note(&self, module: &str, version: &str, note: &[u8]) -> Bytes {
        let id = self
            .id(module, version)
            .unwrap_or_else(|| panic!("sumdb: no record of {module}@{version}"));
        let lookup = Lookup {
            id,
            text: self.text(id),
            note: Vec::new(),
        };
        Bytes::from(lookup.format_with_note(note))
    }

    /// The tile's data if the current tree has it at this width (or wider; a narrower tile is
    /// the prefix, as sum.golang.org serves it): the stored hashes of a hash tile, the record
    /// texts of a data tile (each followed by a blank line). `None` beyond the tree or for
    /// another height.
    pub fn tile(&self, tile: &Tile) -> Option<Vec<u8>> {
        if tile.h != tlog::SUMDB_TILE_HEIGHT {
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

    /// The data of a tile of the current tree; panics if the tree does not have it.
    pub fn tile_data(&self, tile: &Tile) -> Bytes {
        let data = self
            .tile(tile)
            .unwrap_or_else(|| panic!("sumdb: the tree of {} has no {}", self.n(), tile.path()));
        Bytes::from(data)
    }

    /// Every hash tile of the current tree, each at the tree's width (the last one of a level
    /// partial).
    pub fn tiles(&self) -> Vec<Tile> {
        let h = tlog::SUMDB_TILE_HEIGHT;
        let n = self.n();
        let mut out = Vec::new();
        for l in 0.. {
            let width = n >> (h * l as u32);
            if width == 0 {
                break;
            }
            for k in 0..(width + (1 << h) - 1) >> h {
                let w = (width - (k << h)).min(1 << h) as u32;
                out.push(Tile { h, l, n: k, w });
            }
        }
        out
    }

    /// Adds a record and its stored hashes (unsigned).
    fn push(&mut self, entry: Entry, text: &str) {
        let id = self.n();
        let record = tlog::record_hash(text.as_bytes());
        let stored = &self.stored;
        let new = tlog::stored_hashes_for_record(id, record, |x| stored[x as usize]);
        self.stored.extend(new);
        self.entries.push(entry);
    }

    fn push_record(&mut self, record: &ModuleRecord) -> i64 {
        assert!(
            !record.module.starts_with(FILLER_PREFIX),
            "sumdb: {} is a filler's module path",
            record.module
        );
        let id = self.n();
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
        id
    }

    fn push_filler(&mut self) {
        let i = self.filler_ids.len() as u64;
        self.filler_ids.push(self.n());
        self.push(Entry::Filler(i), &ModuleRecord::filler(i).text());
    }

    fn sign(&mut self) {
        let n = self.n();
        assert_eq!(self.stored.len() as i64, tlog::stored_hash_count(n));
        let stored = &self.stored;
        self.tree = Tree {
            n,
            hash: tlog::tree_hash(n, |x| stored[x as usize]),
        };
        self.note = Bytes::from(
            self.signer
                .sign(&self.tree.format())
                .expect("sign tree note"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> TestLog {
        TestLog::from_seed("sum.test.example", [1; 32])
    }

    #[test]
    fn a_prefix_is_the_log_as_it_was() {
        let mut grown = log();
        grown.fillers(300);
        grown.add("example.com/m", "v1.0.0", "h1:a", "h1:b");
        let before = grown.clone();
        grown.fillers(20);
        let prefix = grown.prefix(before.n());
        assert_eq!(prefix.tree(), before.tree());
        assert_eq!(prefix.note(), before.note());
        assert_eq!(prefix.id("example.com/m", "v1.0.0"), Some(300));
        assert_eq!(grown.prefix(300).id("example.com/m", "v1.0.0"), None);
    }

    #[test]
    fn another_key_signs_the_same_tree() {
        let mut honest = log();
        honest.fillers(10);
        let impostor = honest.signed_by(Signer::from_seed("sum.test.example", [2; 32]).unwrap());
        assert_eq!(impostor.tree(), honest.tree());
        assert_ne!(impostor.note(), honest.note());
        assert_ne!(impostor.vkey(), honest.vkey());
    }

    #[test]
    fn tiles_cover_the_tree_and_rewriting_forks_it() {
        let mut log = log();
        log.fillers(600);
        let tiles = log.tiles();
        // Level 0: two full tiles and one of 88; level 1: one of 2.
        let widths: Vec<(i32, u32)> = tiles.iter().map(|t| (t.l, t.w)).collect();
        assert_eq!(widths, [(0, 256), (0, 256), (0, 88), (1, 2)]);
        for t in &tiles {
            assert_eq!(log.tile_data(t).len(), t.w as usize * tlog::HASH_SIZE);
        }
        assert!(log.tile(&Tile { w: 89, ..tiles[2] }).is_none());
        let before = log.tree();
        log.rewrite(
            3,
            "example.com/forged v1.0.0 h1:x\nexample.com/forged v1.0.0/go.mod h1:y\n",
        );
        assert_eq!(log.tree().n, before.n);
        assert_ne!(log.tree().hash, before.hash);
    }
}
