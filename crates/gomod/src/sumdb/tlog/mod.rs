//! The checksum database's transparency log (`golang.org/x/mod/sumdb/tlog`), without I/O.
//!
//! The log is a Merkle tree (RFC 6962 hashing) over records. Every hash ever computed for it is a
//! *stored hash* with a fixed index ([`stored_hash_index`]); tiles are rows of stored hashes:
//! tile `(H, L, N, W)` holds `W` hashes at tree level `L·H`, starting at position `N·2^H` of that
//! level, and is served at [`Tile::path`] (`tile/8/0/x001/234.p/5`).
//!
//! A client trusts a signed [`Tree`] (size and root hash) and authenticates tiles against it.
//! [`TilePlan`] does that in two steps so that the I/O stays with the caller: the plan names the
//! tiles to fetch (the tiles whose hashes rebuild the root, plus each requested tile's parents),
//! and [`TilePlan::verify`] checks the fetched data — the rebuilt root must equal the tree's, and
//! every other tile must hash to the entry its parent holds for it — before returning the
//! requested hashes. This is the algorithm of Go's `tlog.TileHashReader`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::SumdbError;

/// Size of a hash in bytes.
pub const HASH_SIZE: usize = 32;

/// The tile height the Go checksum database uses.
pub const SUMDB_TILE_HEIGHT: u32 = 8;

/// A SHA-256 hash of the log.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl Hash {
    /// Reads a hash from exactly [`HASH_SIZE`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_SIZE]>::try_from(bytes).ok().map(Hash)
    }
}

/// The hash of a record: SHA-256(0x00 ‖ data).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The index of the stored hash for the subtree at `level` covering records
/// `n·2^level .. (n+1)·2^level`.
pub fn stored_hash_index(level: u32, n: i64) -> i64 {
    // Hashes written before the subtree's last record, then `level` more for that record.
    let mut n = n;
    for _ in 0..level {
        n = 2 * n + 1;
    }
    let mut i = 0i64;
    while n > 0 {
        i += n;
        n >>= 1;
    }
    i + i64::from(level)
}

/// The inverse of [`stored_hash_index`]: `(level, n)`.
pub fn split_stored_hash_index(index: i64) -> (u32, i64) {
    // Each record n adds 1 + trailing_zeros(n + 1) hashes; start from an under-estimate.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    loop {
        let next = index_n + 1 + i64::from((n + 1).trailing_zeros());
        if next > index {
            break;
        }
        n += 1;
        index_n = next;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// How many hashes a log of `n` records stores.
pub fn stored_hash_count(n: i64) -> i64 {
    if n == 0 {
        return 0;
    }
    let mut count = stored_hash_index(0, n - 1) + 1;
    let mut i = (n - 1) as u64;
    while i & 1 != 0 {
        count += 1;
        i >>= 1;
    }
    count
}

/// The stored hashes record `n` (0-based) adds to a log, given its record hash; `read` returns
/// already-stored hashes by index. Used to build a log (the test harness's database).
pub fn stored_hashes_for_record(
    n: i64,
    record: Hash,
    mut read: impl FnMut(i64) -> Hash,
) -> Vec<Hash> {
    let mut hashes = vec![record];
    let mut h = record;
    let m = (n + 1).trailing_zeros();
    for i in 0..m {
        // The left sibling at level i: the complete subtree just before this one.
        let left = read(stored_hash_index(i, (n >> i) - 1));
        h = node_hash(left, h);
        hashes.push(h);
    }
    hashes
}

/// The largest power of two strictly below `n`, and its log₂.
fn max_pow2(n: i64) -> (i64, u32) {
    let mut l = 0u32;
    while (1i64 << (l + 1)) < n {
        l += 1;
    }
    (1i64 << l, l)
}

/// The stored-hash indexes of the complete subtrees that make up records `lo..hi`, left to right.
pub fn sub_tree_index(lo: i64, hi: i64) -> Vec<i64> {
    let mut need = Vec::new();
    let mut lo = lo;
    while lo < hi {
        let (k, level) = max_pow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
    need
}

/// Combines the hashes of [`sub_tree_index`]`(0, n)` into the tree hash.
pub fn tree_hash_from_subtrees(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |h, left| node_hash(*left, h)))
}

/// The root hash of a log of `n` records; `read` returns stored hashes by index. The empty
/// tree's hash is all zeros, as in Go.
pub fn tree_hash(n: i64, mut read: impl FnMut(i64) -> Hash) -> Hash {
    let hashes: Vec<Hash> = sub_tree_index(0, n).into_iter().map(&mut read).collect();
    tree_hash_from_subtrees(&hashes).unwrap_or_default()
}

/// A signed tree head: the log's size and root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tree {
    /// Number of records.
    pub n: i64,
    /// Root hash.
    pub hash: Hash,
}

const TREE_PREFIX: &str = "go.sum database tree\n";

impl Tree {
    /// Parses the text of a tree note (`go.sum database tree\n<N>\n<base64 hash>\n`, extra lines
    /// ignored as Go does).
    pub fn parse(text: &str) -> Result<Tree, SumdbError> {
        let bad = || SumdbError::new("malformed tree note".to_string());
        if !text.starts_with(TREE_PREFIX)
            || text.matches('\n').count() < 3
            || text.len() > 1_000_000
        {
            return Err(bad());
        }
        let mut lines = text.splitn(4, '\n');
        lines.next();
        let n_text = lines.next().ok_or_else(bad)?;
        let n: i64 = n_text.parse().map_err(|_| bad())?;
        if n < 0 || n.to_string() != n_text {
            return Err(bad());
        }
        let hash = STANDARD
            .decode(lines.next().ok_or_else(bad)?)
            .ok()
            .and_then(|h| Hash::from_slice(&h))
            .ok_or_else(bad)?;
        Ok(Tree { n, hash })
    }

    /// The note text for this tree.
    pub fn format(&self) -> String {
        format!("{TREE_PREFIX}{}\n{}\n", self.n, self.hash)
    }
}

/// A tile: `w` hashes of level `l·h` (or records, for `l == -1`) starting at position `n·2^h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Height (1..=30); the Go checksum database uses 8.
    pub h: u32,
    /// Level in the tiling; -1 for a data tile (record contents).
    pub l: i32,
    /// Index within the level.
    pub n: i64,
    /// Width: how many entries (1..=2^h; 2^h is a full tile).
    pub w: u32,
}

impl Tile {
    /// Whether the tile holds all 2^h entries.
    pub fn is_full(&self) -> bool {
        self.w == 1 << self.h
    }

    /// Whether this is a data tile (`tile/H/data/…`).
    pub fn is_data(&self) -> bool {
        self.l == -1
    }

    /// The tile's path: `tile/<H>/<L>/<N>[.p/<W>]`, N in 3-digit groups each but the last
    /// prefixed with `x`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut n_str = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            n_str = format!("x{:03}/{n_str}", n % 1000);
        }
        let level = if self.l == -1 {
            "data".to_string()
        } else {
            self.l.to_string()
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        format!("tile/{}/{level}/{n_str}{partial}", self.h)
    }

    /// Parses a tile path, which must be exactly what [`Tile::path`] produces.
    pub fn parse_path(path: &str) -> Result<Tile, SumdbError> {
        let bad = || SumdbError::new(format!("malformed tile path {path:?}"));
        let mut f: Vec<&str> = path.split('/').collect();
        if f.len() < 4 || f[0] != "tile" {
            return Err(bad());
        }
        let h: u32 = f[1].parse().map_err(|_| bad())?;
        if !(1..=30).contains(&h) {
            return Err(bad());
        }
        let l: i32 = if f[2] == "data" {
            -1
        } else {
            f[2].parse().map_err(|_| bad())?
        };
        if !(-1..64).contains(&l) {
            return Err(bad());
        }
        let mut w = 1u32 << h;
        let last = f.len() - 1;
        if let Some(stem) = f[last - 1].strip_suffix(".p") {
            let width: u32 = f[last].parse().map_err(|_| bad())?;
            if width == 0 || width >= w {
                return Err(bad());
            }
            w = width;
            f[last - 1] = stem;
            f.pop();
        }
        let mut n = 0i64;
        for part in &f[3..] {
            let digits = part.strip_prefix('x').unwrap_or(part);
            let v: i64 = digits.parse().map_err(|_| bad())?;
            if !(0..1000).contains(&v) {
                return Err(bad());
            }
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(v))
                .ok_or_else(bad)?;
        }
        let tile = Tile { h, l, n, w };
        if tile.path() != path {
            return Err(bad());
        }
        Ok(tile)
    }

    /// The tile that holds stored hash `index`, with the width that just reaches it, and the
    /// byte range of the hashes under it within the tile's data.
    pub fn for_index(h: u32, index: i64) -> (Tile, std::ops::Range<usize>) {
        let (level, n) = split_stored_hash_index(index);
        let tile_l = level / h;
        let level_in_tile = level - tile_l * h;
        let tile_n = (n << level_in_tile) >> h;
        let n_in_tile = n - ((tile_n << h) >> level_in_tile);
        let w = ((n_in_tile + 1) << level_in_tile) as u32;
        let start = ((n_in_tile << level_in_tile) as usize) * HASH_SIZE;
        let end = (((n_in_tile + 1) << level_in_tile) as usize) * HASH_SIZE;
        (
            Tile {
                h,
                l: tile_l as i32,
                n: tile_n,
                w,
            },
            start..end,
        )
    }

    /// The ancestor `k` tile levels up, as it is in a tree of `tree_n` records (full, or partial
    /// at the tree's right edge); `None` if the tree has no such tile.
    pub fn parent(&self, k: u32, tree_n: i64) -> Option<Tile> {
        let mut t = *self;
        t.l += k as i32;
        t.n >>= k * t.h;
        t.w = 1 << t.h;
        let max = tree_n >> (t.l as u32 * t.h);
        if (t.n << t.h) + i64::from(t.w) >= max {
            if (t.n << t.h) >= max {
                return None;
            }
            t.w = (max - (t.n << t.h)) as u32;
        }
        Some(t)
    }

    /// This tile at another width (the same place in the tiling).
    pub fn with_width(&self, w: u32) -> Tile {
        Tile { w, ..*self }
    }

    /// The width of the tile at this tile's level and index in a tree of `tree_n` records;
    /// `None` if the tree does not reach it.
    pub fn width_in_tree(&self, tree_n: i64) -> Option<u32> {
        if self.l < 0 {
            return None;
        }
        let same = Tile { w: 1, ..*self };
        same.parent(0, tree_n).map(|t| t.w)
    }
}

/// A narrower tile cut from a wider one: tiles only grow at their end, so the tile
/// `tile/H/L/K.p/W` is the first `W` hashes of every tile at the same place (`H`, `L`, `K`) that
/// is at least `W` wide, partial or full. Returns the first `narrow.w` hashes of `data` (the
/// data of `wide`), or `None` if `wide` is not at the same place, is narrower, its data is not
/// exactly `wide.w` hashes, or the tiles are data tiles (records, not hashes).
pub fn derive_tile<'a>(wide: &Tile, data: &'a [u8], narrow: &Tile) -> Option<&'a [u8]> {
    let same_place = wide.h == narrow.h && wide.l == narrow.l && wide.n == narrow.n;
    if !same_place
        || wide.is_data()
        || narrow.w == 0
        || narrow.w > wide.w
        || data.len() != wide.w as usize * HASH_SIZE
    {
        return None;
    }
    Some(&data[..narrow.w as usize * HASH_SIZE])
}

/// The hash of a power-of-two run of hashes (a tile's data, or a slice of it).
fn tile_hash(data: &[u8]) -> Hash {
    if data.len() == HASH_SIZE {
        return Hash::from_slice(data).unwrap_or_default();
    }
    let half = data.len() / 2;
    node_hash(tile_hash(&data[..half]), tile_hash(&data[half..]))
}

/// Stored hash `index` from the data of `tile`, which must contain it.
pub fn hash_from_tile(tile: &Tile, data: &[u8], index: i64) -> Result<Hash, SumdbError> {
    if tile.l < 0 || tile.w == 0 || tile.w > 1 << tile.h {
        return Err(SumdbError::new(format!("invalid tile {}", tile.path())));
    }
    if data.len() < tile.w as usize * HASH_SIZE {
        return Err(SumdbError::new(format!(
            "tile {} data is {} bytes, too short",
            tile.path(),
            data.len()
        )));
    }
    let (t1, range) = Tile::for_index(tile.h, index);
    if tile.l != t1.l || tile.n != t1.n || tile.w < t1.w {
        return Err(SumdbError::new(format!(
            "stored hash {index} is in tile {}, not {}",
            t1.path(),
            tile.path()
        )));
    }
    Ok(tile_hash(&data[range]))
}

/// Which tiles authenticate a set of stored hashes against a tree, and how to check them.
#[derive(Debug, Clone)]
pub struct TilePlan {
    tree: Tree,
    tiles: Vec<Tile>,
    /// `sub_tree_index(0, n)`: the hashes that rebuild the root.
    stx: Vec<i64>,
    /// For each of `stx`, the position in `tiles` of the tile holding it.
    stx_tile: Vec<usize>,
    /// The requested indexes, and for each the position of its tile.
    indexes: Vec<i64>,
    index_tile: Vec<usize>,
}

impl TilePlan {
    /// Plans to read stored hashes `indexes` of `tree` with tiles of height `h`. Fails if an
    /// index is not in the tree.
    pub fn new(tree: Tree, h: u32, indexes: &[i64]) -> Result<TilePlan, SumdbError> {
        let bad_math = || SumdbError::new(format!("tile plan: bad math for tree size {}", tree.n));
        let mut tiles: Vec<Tile> = Vec::new();
        let position = |tiles: &Vec<Tile>, t: &Tile| tiles.iter().position(|x| x == t);

        let stx = sub_tree_index(0, tree.n);
        let mut stx_tile = Vec::with_capacity(stx.len());
        for &x in &stx {
            let tile = Tile::for_index(h, x)
                .0
                .parent(0, tree.n)
                .ok_or_else(bad_math)?;
            match position(&tiles, &tile) {
                Some(j) => stx_tile.push(j),
                None => {
                    stx_tile.push(tiles.len());
                    tiles.push(tile);
                }
            }
        }

        let limit = stored_hash_index(0, tree.n);
        let mut index_tile = Vec::with_capacity(indexes.len());
        for &x in indexes {
            if x < 0 || x >= limit {
                return Err(SumdbError::new(format!(
                    "stored hash {x} is not in a tree of {} records",
                    tree.n
                )));
            }
            let tile = Tile::for_index(h, x).0;
            // Walk up to the first ancestor already planned: it will be authenticated.
            let mut k = 0;
            loop {
                let parent = tile.parent(k, tree.n).ok_or_else(bad_math)?;
                if let Some(j) = position(&tiles, &parent) {
                    if k == 0 {
                        index_tile.push(j);
                    }
                    break;
                }
                k += 1;
            }
            // Then plan the tiles below it, parents before children.
            while k > 0 {
                k -= 1;
                let p = tile.parent(k, tree.n).ok_or_else(bad_math)?;
                if !p.is_full() {
                    // Only full tiles have parents holding their hash.
                    return Err(bad_math());
                }
                if k == 0 {
                    index_tile.push(tiles.len());
                }
                tiles.push(p);
            }
        }
        Ok(TilePlan {
            tree,
            tiles,
            stx,
            stx_tile,
            indexes: indexes.to_vec(),
            index_tile,
        })
    }

    /// Plans to authenticate one tile's data as it is in `tree`: `tile` must lie within the
    /// tree, at the width the tree gives it or narrower (a narrower tile is checked as a prefix
    /// of the tree's one, which is then in the plan).
    pub fn for_tile(tree: Tree, tile: &Tile) -> Result<TilePlan, SumdbError> {
        if tile.is_data() {
            return Err(SumdbError::new(
                "data tiles are not authenticated by hash tiles".to_string(),
            ));
        }
        let width = tile.width_in_tree(tree.n).unwrap_or(0);
        if width < tile.w {
            return Err(SumdbError::new(format!(
                "tile {} is beyond the tree of {} records",
                tile.path(),
                tree.n
            )));
        }
        let last = (tile.n << tile.h) + i64::from(tile.w) - 1;
        let index = stored_hash_index(tile.l as u32 * tile.h, last);
        TilePlan::new(tree, tile.h, &[index])
    }

    /// The tree the plan authenticates against.
    pub fn tree(&self) -> Tree {
        self.tree
    }

    /// The tiles to fetch, parents before children; pass their data to [`TilePlan::verify`] in
    /// this order.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Checks the fetched tile data (one entry per [`TilePlan::tiles`], each exactly `w` hashes)
    /// and returns the requested hashes in request order.
    pub fn verify<D: AsRef<[u8]>>(&self, data: &[D]) -> Result<Vec<Hash>, SumdbError> {
        if data.len() != self.tiles.len() {
            return Err(SumdbError::new(format!(
                "tile plan: {} tiles planned, {} supplied",
                self.tiles.len(),
                data.len()
            )));
        }
        for (tile, d) in self.tiles.iter().zip(data) {
            if d.as_ref().len() != tile.w as usize * HASH_SIZE {
                return Err(SumdbError::new(format!(
                    "tile {} is {} bytes, want {}",
                    tile.path(),
                    d.as_ref().len(),
                    tile.w as usize * HASH_SIZE
                )));
            }
        }
        // The tiles holding the subtree hashes must rebuild the root.
        let mut stx_hashes = Vec::with_capacity(self.stx.len());
        for (&x, &j) in self.stx.iter().zip(&self.stx_tile) {
            stx_hashes.push(hash_from_tile(&self.tiles[j], data[j].as_ref(), x)?);
        }
        let root = tree_hash_from_subtrees(&stx_hashes).unwrap_or_default();
        if root != self.tree.hash {
            return Err(SumdbError::new(format!(
                "tiles are inconsistent with the signed tree of {} records (root {} != {})",
                self.tree.n, root, self.tree.hash
            )));
        }
        // Every other tile is full and must hash to its parent's entry for it.
        let stx_tiles = self.stx_tile.iter().max().map_or(0, |m| m + 1);
        for i in stx_tiles..self.tiles.len() {
            let tile = &self.tiles[i];
            let parent = tile.parent(1, self.tree.n).ok_or_else(|| {
                SumdbError::new(format!("tile plan: {} has no parent", tile.path()))
            })?;
            let j = self.tiles[..i]
                .iter()
                .position(|t| *t == parent)
                .ok_or_else(|| {
                    SumdbError::new(format!("tile plan: lost the parent of {}", tile.path()))
                })?;
            let expected = hash_from_tile(
                &parent,
                data[j].as_ref(),
                stored_hash_index(parent.l as u32 * parent.h, tile.n),
            )?;
            if tile_hash(data[i].as_ref()) != expected {
                return Err(SumdbError::new(format!(
                    "tile {} is inconsistent with the signed tree of {} records",
                    tile.path(),
                    self.tree.n
                )));
            }
        }
        self.indexes
            .iter()
            .zip(&self.index_tile)
            .map(|(&x, &j)| hash_from_tile(&self.tiles[j], data[j].as_ref(), x))
            .collect()
    }
}

#[cfg(test)]
mod tests;
