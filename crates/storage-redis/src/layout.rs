//! Names of this store's Redis keys (see the crate docs for the table), and the small values
//! they are built from.

use std::time::Duration;

/// Names of this store's Redis keys (see the crate docs).
pub(crate) struct Layout {
    pub(crate) prefix: String,
}

impl Layout {
    pub(crate) fn index(&self) -> String {
        format!("{}index", self.prefix)
    }
    pub(crate) fn manifest_prefix(&self) -> String {
        format!("{}m:", self.prefix)
    }
    pub(crate) fn manifest(&self, path: &str) -> String {
        format!("{}m:{path}", self.prefix)
    }
    pub(crate) fn chunk_prefix(&self) -> String {
        format!("{}c:", self.prefix)
    }
    pub(crate) fn generation_prefix(&self, generation: &str) -> String {
        format!("{}c:{generation}:", self.prefix)
    }
    pub(crate) fn chunk(&self, generation: &str, n: u64) -> String {
        format!("{}c:{generation}:{n}", self.prefix)
    }
    pub(crate) fn marker(&self, generation: &str) -> String {
        format!("{}s:{generation}", self.prefix)
    }
    pub(crate) fn probe(&self, token: &str) -> String {
        format!("{}check:{token}", self.prefix)
    }
}

/// Milliseconds of a duration, for `PX`/`PEXPIRE` arguments.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A fresh random token (generation or probe name).
pub(crate) fn random_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
