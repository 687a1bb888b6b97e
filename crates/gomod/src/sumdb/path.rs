//! Validated checksum-database names and request paths.

use std::fmt;

use super::tlog::Tile;
use crate::error::excerpt;
use crate::{Error, ModulePath, Version};

/// Longest database name accepted (a DNS name's limit).
const MAX_NAME: usize = 253;

fn bad(reason: String) -> Error {
    Error::InvalidRequest { reason }
}

/// A checksum database name, like `sum.golang.org`: a lower-case host name with a dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SumdbName(String);

impl SumdbName {
    /// Validates a name.
    pub fn parse(name: &str) -> Result<SumdbName, Error> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.contains('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !name.starts_with(['.', '-'])
            && !name.ends_with(['.', '-'])
            && !name.contains("..");
        if ok {
            Ok(SumdbName(name.to_string()))
        } else {
            Err(bad(format!(
                "invalid checksum database name {:?}",
                excerpt(name)
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SumdbName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path under `/sumdb/<name>/`, as the go command requests it and as it is cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SumdbPath {
    /// `supported`: whether the proxy serves this database.
    Supported,
    /// `latest`: the signed tree head.
    Latest,
    /// `lookup/<module>@<version>` (both `!`-escaped): a record and a signed tree head.
    Lookup {
        /// The module.
        module: ModulePath,
        /// Its canonical version.
        version: Version,
    },
    /// `tile/<H>/<L>/<N>[.p/<W>]`: a hash tile, or a data tile for `L = data`.
    Tile(Tile),
    /// `tree/<N>`: the signed tree head of `N` records that a proxy trusted, handed to clients
    /// or was told clients remember. Not an endpoint of a checksum database: an object of the
    /// proxy's store (its history of tree heads, which every later tree head must be proven to
    /// extend), which a proxy answers 404 for.
    Tree(i64),
}

impl SumdbPath {
    /// Parses a path (percent-decoded, still `!`-escaped); it must be exactly in the form the
    /// database serves (no `.` or `..` elements, canonical tile numbers).
    pub fn parse(path: &str) -> Result<SumdbPath, Error> {
        if let Some(c) = path.chars().find(|&c| {
            !(c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '.' | '_' | '~' | '+' | '@' | '!' | '/' | '-'))
        }) {
            return Err(bad(format!("invalid char {c:?} in sumdb path")));
        }
        if path
            .split('/')
            .any(|e| e.is_empty() || e == "." || e == "..")
        {
            return Err(bad(format!(
                "sumdb path {:?} has an empty, '.' or '..' element",
                excerpt(path)
            )));
        }
        match path {
            "supported" => return Ok(SumdbPath::Supported),
            "latest" => return Ok(SumdbPath::Latest),
            _ => {}
        }
        if let Some(lookup) = path.strip_prefix("lookup/") {
            let (module, version) = lookup
                .rsplit_once('@')
                .ok_or_else(|| bad("sumdb lookup without @version".into()))?;
            let module = ModulePath::from_escaped(module)?;
            let version = Version::from_escaped(version)?;
            return Ok(SumdbPath::Lookup { module, version });
        }
        if let Some(n) = path.strip_prefix("tree/") {
            return match n.parse::<i64>() {
                Ok(size) if size >= 0 && size.to_string() == n => Ok(SumdbPath::Tree(size)),
                _ => Err(bad(format!(
                    "sumdb tree path {:?}: want tree/<number of records>",
                    excerpt(path)
                ))),
            };
        }
        if path.starts_with("tile/") {
            let tile = Tile::parse_path(path).map_err(|e| bad(e.to_string()))?;
            return Ok(SumdbPath::Tile(tile));
        }
        Err(bad(format!(
            "unknown sumdb path {:?} (want supported, latest, lookup/…, tile/… or tree/…)",
            excerpt(path)
        )))
    }

    /// The path, as requested from a database and as stored.
    pub fn render(&self) -> String {
        match self {
            SumdbPath::Supported => "supported".to_string(),
            SumdbPath::Latest => "latest".to_string(),
            SumdbPath::Lookup { module, version } => {
                format!("lookup/{}@{}", module.escaped(), version.escaped())
            }
            SumdbPath::Tile(tile) => tile.path(),
            SumdbPath::Tree(n) => format!("tree/{n}"),
        }
    }
}

impl fmt::Display for SumdbPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for p in [
            "supported",
            "latest",
            "lookup/github.com/!azure/go-autorest@v1.0.0",
            "lookup/example.com/old@v2.0.0+incompatible",
            "tile/8/0/x004/822.p/135",
            "tile/8/data/000",
            "tile/8/2/000.p/18",
            "tree/0",
            "tree/69959272",
        ] {
            assert_eq!(SumdbPath::parse(p).unwrap().render(), p);
        }
        for bad in [
            "lookup/github.com/x/y",
            "lookup/github.com/Azure/x@v1.0.0",
            "lookup/x@v1.0.0",
            "lookup/github.com/x/y@v1.0",
            "tile/8/0/4822",
            "tile/../x",
            "unknown",
            "latest/",
            "tree/",
            "tree/012",
            "tree/-1",
            "tree/1/2",
        ] {
            assert!(SumdbPath::parse(bad).is_err(), "{bad}");
        }
        assert!(SumdbName::parse("sum.golang.org").is_ok());
        for bad in ["Sum.golang.org", "sum", "", ".sum.org", "sum..org", "a/b.c"] {
            assert!(SumdbName::parse(bad).is_err(), "{bad}");
        }
    }
}
