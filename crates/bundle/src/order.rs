//! The one order of objects in a bundle, and in which an import processes a directory.

/// The sort key of an object path in bundle order:
///
/// 1. every checksum-database object (`sumdb/…`) before any artifact, so that an import has
///    verified the records and tiles before it checks the artifacts against them in one pass;
/// 2. then everything else by path, byte-wise, except that a version's `.ziphash` sorts right
///    before its `.zip` (by plain byte order it would come after), so that the zip is checked
///    against the hash the source recorded when it arrives.
///
/// Within a version the order is therefore `.info`, `.mod`, `.ziphash`, `.zip`.
pub fn order_key(path: &str) -> (u8, String) {
    if path.starts_with("sumdb/") {
        return (0, path.to_string());
    }
    let key = if let Some(stem) = path.strip_suffix(".ziphash") {
        format!("{stem}.zip\u{0}")
    } else if let Some(stem) = path.strip_suffix(".zip") {
        format!("{stem}.zip\u{1}")
    } else {
        path.to_string()
    };
    (1, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sumdb_first_then_paths_with_ziphash_before_zip() {
        let mut paths = vec![
            "example.com/b/@v/list",
            "example.com/a/@v/v1.0.0.ziphash",
            "example.com/a/@v/v1.0.0.zip",
            "sumdb/sum.golang.org/tile/8/0/000",
            "example.com/a/@v/v1.0.0.mod",
            "example.com/a/@latest",
            "example.com/a/@v/v1.0.0.info",
            "sumdb/sum.golang.org/latest",
            "example.com/a/@v/v1.0.1.zip",
        ];
        paths.sort_by_key(|p| order_key(p));
        assert_eq!(
            paths,
            [
                "sumdb/sum.golang.org/latest",
                "sumdb/sum.golang.org/tile/8/0/000",
                "example.com/a/@latest",
                "example.com/a/@v/v1.0.0.info",
                "example.com/a/@v/v1.0.0.mod",
                "example.com/a/@v/v1.0.0.ziphash",
                "example.com/a/@v/v1.0.0.zip",
                "example.com/a/@v/v1.0.1.zip",
                "example.com/b/@v/list",
            ]
        );
    }
}
