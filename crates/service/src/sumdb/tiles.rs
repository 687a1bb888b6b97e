//! Hash tiles: served from the store, cut from a wider stored tile, or fetched and
//! authenticated against the trusted tree; and the words of an offline proxy that lacks one.
//!
//! A partial tile `tile/H/L/K.p/W` is the first `W` hashes of every wider tile at the same place
//! (tiles only grow at their end), so a client that remembers an older tree — and asks for the
//! tiles on that tree's right edge, narrower than the proxy's — is served a prefix of the tile
//! the proxy verified for its own tree, or of the full tile. Nothing new is trusted by cutting:
//! the wider tile was authenticated when it was stored. Derived tiles are not stored (they are
//! derivable), and online they save an upstream request.

use bytes::Bytes;
use gomod::sumdb::SumdbPath;
use gomod::sumdb::tlog::{Tile, TilePlan, derive_tile};
use gomodproxy_storage::StorageExt;

use super::{Database, MAX_TILE_SIZE, Trusted, security};
use crate::{Inner, ServiceError};

/// One tile of a plan's data, and whether it came from upstream (then it is stored once the
/// plan verifies).
pub(super) struct PlanTile {
    pub(super) data: Bytes,
    pub(super) fetched: bool,
}

impl Database {
    /// A stored tile, exactly as asked.
    async fn stored_tile(&self, inner: &Inner, tile: &Tile) -> Result<Option<Bytes>, ServiceError> {
        let key = self.key(SumdbPath::Tile(*tile));
        match inner.storage.get_bytes(&key, MAX_TILE_SIZE).await {
            Ok((_, data)) => Ok(Some(data)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(ServiceError::storage(&key, e)),
        }
    }

    /// `tile` cut from a wider stored tile at the same place: the one of the trusted tree (what
    /// sealing stores for every recorded tree's right edge), else the full tile.
    async fn derived_tile(
        &self,
        inner: &Inner,
        trusted: Option<&Trusted>,
        tile: &Tile,
    ) -> Result<Option<Bytes>, ServiceError> {
        if tile.is_data() || tile.is_full() {
            return Ok(None);
        }
        let mut widths = Vec::with_capacity(2);
        if let Some(w) = trusted.and_then(|t| tile.width_in_tree(t.tree.n))
            && w > tile.w
        {
            widths.push(w);
        }
        let full = 1u32 << tile.h;
        if !widths.contains(&full) {
            widths.push(full);
        }
        for w in widths {
            let wide = tile.with_width(w);
            if let Some(data) = self.stored_tile(inner, &wide).await?
                && let Some(cut) = derive_tile(&wide, &data, tile)
            {
                return Ok(Some(Bytes::copy_from_slice(cut)));
            }
        }
        Ok(None)
    }

    /// The data of every tile of a plan: stored, cut from a stored wider tile, else fetched
    /// (unverified until the plan checks them).
    pub(super) async fn plan_data(
        &self,
        inner: &Inner,
        plan: &TilePlan,
    ) -> Result<Vec<PlanTile>, ServiceError> {
        let trusted = self.current();
        let fetches = plan
            .tiles()
            .iter()
            .map(|tile| self.raw_tile(inner, trusted.as_ref(), tile));
        futures::future::try_join_all(fetches).await
    }

    async fn raw_tile(
        &self,
        inner: &Inner,
        trusted: Option<&Trusted>,
        tile: &Tile,
    ) -> Result<PlanTile, ServiceError> {
        if let Some(data) = self.stored_tile(inner, tile).await? {
            return Ok(PlanTile {
                data,
                fetched: false,
            });
        }
        if let Some(data) = self.derived_tile(inner, trusted, tile).await? {
            return Ok(PlanTile {
                data,
                fetched: false,
            });
        }
        if self.source.is_none() {
            return Err(self.offline_tile_miss(trusted, tile));
        }
        let data = self.fetch(inner, &tile.path(), MAX_TILE_SIZE).await?;
        Ok(PlanTile {
            data,
            fetched: true,
        })
    }

    /// Stores the tiles of a verified plan that came from upstream.
    pub(super) async fn store_tiles(
        &self,
        inner: &Inner,
        plan: &TilePlan,
        data: &[PlanTile],
    ) -> Result<(), ServiceError> {
        for (tile, got) in plan.tiles().iter().zip(data) {
            if !got.fetched {
                continue;
            }
            let key = self.key(SumdbPath::Tile(*tile));
            inner
                .storage
                .put_bytes(&key, got.data.clone())
                .await
                .map_err(|e| ServiceError::storage(&key, e))?;
        }
        Ok(())
    }

    /// Checks a plan's data; a failure is a security refusal.
    pub(super) fn verify_plan(
        &self,
        plan: &TilePlan,
        data: &[PlanTile],
    ) -> Result<Vec<gomod::sumdb::tlog::Hash>, ServiceError> {
        let bytes: Vec<&[u8]> = data.iter().map(|t| t.data.as_ref()).collect();
        plan.verify(&bytes).map_err(|e| {
            security(
                &self.name,
                format!("tiles of {} fail verification: {e}", self.name),
            )
        })
    }

    /// A hash tile, verified: from storage, cut from a wider stored tile, else (online) fetched
    /// with the tiles that authenticate it in the trusted tree, and stored.
    pub(super) async fn tile(&self, inner: &Inner, tile: Tile) -> Result<Bytes, ServiceError> {
        if let Some(data) = self.stored_tile(inner, &tile).await? {
            return Ok(data);
        }
        if tile.is_data() {
            return Err(ServiceError::NotFound(format!(
                "sumdb/{}/{}: data tiles are not proxied (the go command never asks for them)",
                self.name,
                tile.path()
            )));
        }
        let trusted = self.trusted(inner).await?;
        if let Some(data) = self.derived_tile(inner, trusted.as_ref(), &tile).await? {
            return Ok(data);
        }
        if self.source.is_none() {
            return Err(self.offline_tile_miss(trusted.as_ref(), &tile));
        }
        // The smallest tree that has this tile at this width.
        let level_shift = tile.l as u32 * tile.h;
        let needed = ((tile.n << tile.h) + i64::from(tile.w))
            .checked_shl(level_shift)
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ServiceError::NotFound(format!("sumdb/{}/{}: no such tile", self.name, tile.path()))
            })?;
        let trusted = self.tree_at_least(inner, needed, false).await?;
        let plan = TilePlan::for_tile(trusted.tree, &tile)
            .map_err(|e| ServiceError::NotFound(format!("sumdb/{}: {e}", self.name)))?;
        let data = self.plan_data(inner, &plan).await?;
        self.verify_plan(&plan, &data)?;
        self.store_tiles(inner, &plan, &data).await?;
        // The plan holds the tile at the tree's width; a narrower request is its prefix.
        let (wide, wide_data) = plan
            .tiles()
            .iter()
            .zip(&data)
            .find(|(t, _)| t.l == tile.l && t.n == tile.n)
            .ok_or_else(|| {
                ServiceError::BadUpstream(format!(
                    "sumdb/{}: tile plan lost {}",
                    self.name,
                    tile.path()
                ))
            })?;
        derive_tile(wide, &wide_data.data, &tile)
            .map(Bytes::copy_from_slice)
            .ok_or_else(|| {
                ServiceError::BadUpstream(format!(
                    "sumdb/{}: the verified tile {} is {} bytes, not {} hashes",
                    self.name,
                    wide.path(),
                    wide_data.data.len(),
                    wide.w
                ))
            })
    }

    /// The 404 of an offline proxy for a tile it has not got, in words that say what happened
    /// and what to do (the go command prints the answer's first line): a go command asks for
    /// tiles it has not cached when it proves that the tree it remembers
    /// (`$GOPATH/pkg/sumdb/<name>/latest`) and the proxy's are one log. One line of at most
    /// 500 bytes, what the HTTP layer sends.
    pub(super) fn offline_tile_miss(&self, trusted: Option<&Trusted>, tile: &Tile) -> ServiceError {
        let (name, path) = (&self.name, tile.path());
        let Some(trusted) = trusted else {
            return ServiceError::NotFound(format!(
                "offline mode: sumdb/{name}/{path} is not in the cache, nor is any tree head of {name}: \
                 import a bundle made with the checksum database"
            ));
        };
        let n = trusted.tree.n;
        let width = tile.width_in_tree(n).unwrap_or(0);
        let what = if width < tile.w {
            "a newer tree of"
        } else if width > tile.w {
            "an older tree of"
        } else {
            // The proxy's own width: a proof of the proxy's tree for some client's tree (or a
            // store that was never sealed).
            "a tree of"
        };
        ServiceError::NotFound(format!(
            "offline mode: sumdb/{name}/{path} is not in the cache: the client remembers {what} {name} \
             that this proxy (tree of {n} records) cannot prove. Fix: the operator prewarms with \
             --sumdb-known-tree FILE (the client's $GOPATH/pkg/sumdb/{name}/latest) and imports a new \
             bundle, or the user deletes that file (go then trusts this proxy's tree unchecked)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use gomod::sumdb::tlog::{Hash, Tree};

    use super::*;

    #[test]
    fn the_offline_words_fit_in_one_error_line() {
        let db = Database::for_test("sum.golang.org");
        let trusted = Trusted {
            tree: Tree {
                n: 69_959_272,
                hash: Hash::default(),
            },
            note: Bytes::new(),
            fetched: std::time::SystemTime::now(),
            loaded: std::time::Instant::now(),
        };
        let tiles = [
            (
                Tile::parse_path("tile/8/0/x001/x234/067.p/5").unwrap(),
                "a newer tree",
            ),
            (
                Tile::parse_path("tile/8/0/x273/281.p/1").unwrap(),
                "a newer tree",
            ),
            (
                Tile::parse_path("tile/8/0/x273/000.p/5").unwrap(),
                "an older tree",
            ),
            (
                Tile::parse_path("tile/8/3/000.p/4").unwrap(),
                "remembers a tree",
            ),
        ];
        for (tile, says) in tiles {
            let msg = db.offline_tile_miss(Some(&trusted), &tile).to_string();
            assert!(
                msg.len() <= 500 && !msg.contains('\n'),
                "{} bytes: {msg}",
                msg.len()
            );
            assert!(
                msg.contains(says) && msg.contains("--sumdb-known-tree"),
                "{msg}"
            );
        }
    }
}
