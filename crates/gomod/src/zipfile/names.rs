//! The entry names of a module zip, kept compactly, and x/mod's collision rules checked on them
//! by sorting once instead of with a map of strings.
//!
//! Per entry this keeps the name after the `module@version/` prefix in one arena and an 8-byte
//! record; checking collisions sorts a 4-byte index per entry in place.

use std::cmp::Ordering;

use crate::unicode_tables;

/// What an entry is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The entry `module@version/` itself: hashed, exempt from the name rules (as in x/mod).
    Root,
    /// A name ending in `/`.
    Dir,
    File,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    start: u32,
    len: u16,
    kind: Kind,
}

/// The names of all entries, in entry order.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// Names after the prefix, exactly as in the zip (a directory keeps its trailing `/`).
    arena: String,
    records: Vec<Record>,
}

/// Why two names cannot both be in a module zip.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Collision {
    /// The entry (index in zip order) the error is reported on: the later of the two.
    pub(super) entry: usize,
    pub(super) reason: String,
}

impl Names {
    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// Bytes of names held.
    pub(super) fn name_bytes(&self) -> usize {
        self.arena.len()
    }

    /// Adds the next entry's name (after the prefix); false if it does not fit: names are at
    /// most 65,535 bytes (as in any zip) and 4 GiB in total (the caller caps them far lower).
    pub(super) fn push(&mut self, name: &str, kind: Kind) -> bool {
        let (Ok(start), Ok(len)) = (u32::try_from(self.arena.len()), u16::try_from(name.len()))
        else {
            return false;
        };
        if start.checked_add(u32::from(len)).is_none() {
            return false;
        }
        self.arena.push_str(name);
        self.records.push(Record { start, len, kind });
        true
    }

    /// Entry `i`'s name after the prefix, as in the zip.
    pub(super) fn name(&self, i: usize) -> &str {
        let r = self.records[i];
        &self.arena[r.start as usize..r.start as usize + usize::from(r.len)]
    }

    /// Entry `i`'s kind.
    pub(super) fn kind(&self, i: usize) -> Kind {
        self.records[i].kind
    }

    /// Entry `i`'s path for the collision rules: no trailing `/`.
    fn path(&self, i: usize) -> &str {
        let name = self.name(i);
        name.strip_suffix('/').unwrap_or(name)
    }

    /// Entry indexes sorted by name, byte-wise: the order of the `h1:` hash's lines.
    pub(super) fn hash_order(&self) -> Vec<u32> {
        let mut order = self.indexes(|_| true);
        order.sort_unstable_by(|&a, &b| {
            self.name(a as usize)
                .cmp(self.name(b as usize))
                .then(a.cmp(&b))
        });
        order
    }

    fn indexes(&self, keep: impl Fn(Kind) -> bool) -> Vec<u32> {
        (0..self.records.len())
            .filter(|&i| keep(self.records[i].kind))
            .map(|i| i as u32)
            .collect()
    }

    /// x/mod's `collisionChecker` over all entries but the root: no two paths equal under
    /// Unicode case folding unless they are byte-equal, no path both a file and a directory
    /// (every parent of an entry is a directory), no file twice. The same directory twice is
    /// fine, as in x/mod (and both copies are hashed).
    ///
    /// Sorting by folded path, with `/` below every other character, puts every path right
    /// before the paths below it, and makes the entries sharing any folded prefix contiguous; so
    /// any conflict shows between two neighbours, and only neighbours are compared.
    pub(super) fn check_collisions(&self) -> Result<(), Collision> {
        let mut order = self.indexes(|k| k != Kind::Root);
        order.sort_unstable_by(|&a, &b| {
            fold_cmp(self.path(a as usize), self.path(b as usize)).then(a.cmp(&b))
        });
        order
            .windows(2)
            .try_for_each(|w| self.check_neighbours(w[0] as usize, w[1] as usize))
    }

    /// Compares the paths of entries `a` and `b` (neighbours in folded order, `a` first) along
    /// their common folded prefix.
    fn check_neighbours(&self, a: usize, b: usize) -> Result<(), Collision> {
        let (pa, pb) = (self.path(a), self.path(b));
        let (mut ca, mut cb) = (pa.char_indices(), pb.char_indices());
        loop {
            match (ca.next(), cb.next()) {
                (Some((ia, x)), Some((ib, y))) => {
                    if fold_key(x) != fold_key(y) {
                        return Ok(());
                    }
                    // `/` folds only to itself: both are at the end of a directory's path.
                    if x == '/' {
                        self.same_case(a, &pa[..ia], b, &pb[..ib])?;
                    }
                }
                (None, None) => {
                    self.same_case(a, pa, b, pb)?;
                    let later = a.max(b);
                    return match (self.kind(a), self.kind(b)) {
                        (Kind::File, Kind::File) => Err(Collision {
                            entry: later,
                            reason: format!("multiple entries for file {pa:?}"),
                        }),
                        (Kind::File, _) | (_, Kind::File) => Err(Collision {
                            entry: later,
                            reason: format!("entry {pa:?} is both a file and a directory"),
                        }),
                        _ => Ok(()),
                    };
                }
                // One path is a parent directory of the other (under folding).
                (None, Some((ib, '/'))) => return self.parent(a, pa, b, &pb[..ib]),
                (Some((ia, '/')), None) => return self.parent(b, pb, a, &pa[..ia]),
                _ => return Ok(()),
            }
        }
    }

    /// `path` (entry `e`'s whole path) folds to `dir`, a parent directory of entry `other`.
    fn parent(&self, e: usize, path: &str, other: usize, dir: &str) -> Result<(), Collision> {
        self.same_case(e, path, other, dir)?;
        if self.kind(e) == Kind::File {
            return Err(Collision {
                entry: e.max(other),
                reason: format!("entry {path:?} is both a file and a directory"),
            });
        }
        Ok(())
    }

    /// Paths `pa` (of entry `a`) and `pb` (of entry `b`) fold to the same path: they must be
    /// the same bytes. The message names the earlier entry's path first, as x/mod does.
    fn same_case(&self, a: usize, pa: &str, b: usize, pb: &str) -> Result<(), Collision> {
        if pa == pb {
            return Ok(());
        }
        let (first, second) = if a < b { (pa, pb) } else { (pb, pa) };
        Err(Collision {
            entry: a.max(b),
            reason: format!("case-insensitive file name collision: {first:?} and {second:?}"),
        })
    }
}

/// Orders paths by their folded characters, `/` first: `strings.EqualFold` paths compare equal.
fn fold_cmp(a: &str, b: &str) -> Ordering {
    // Names in a module share long directory prefixes: skip the identical bytes first.
    let same = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let mut start = same;
    while !a.is_char_boundary(start) {
        start -= 1;
    }
    a[start..]
        .chars()
        .map(fold_key)
        .cmp(b[start..].chars().map(fold_key))
}

/// A character's sort key: 0 for `/`, else 1 + its folded form.
fn fold_key(c: char) -> u32 {
    if c == '/' { 0 } else { fold_char(c) as u32 + 1 }
}

/// The smallest member of `c`'s `unicode.SimpleFold` orbit (from Go's tables), with A–Z then
/// lowered: `strings.EqualFold(s, t)` iff `s` and `t` fold to the same characters.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    unicode_tables::FOLD_MIN
        .binary_search_by_key(&(c as u32), |&(r, _)| r)
        .ok()
        .and_then(|i| char::from_u32(unicode_tables::FOLD_MIN[i].1))
        .unwrap_or(c)
        .to_ascii_lowercase()
}

/// A string `s'` with `strings.EqualFold(s, t)` iff `str_to_fold(s) == str_to_fold(t)`: `s`
/// folded as [`fold_char`] does, character by character.
pub(super) fn str_to_fold(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return s.to_string();
    }
    s.chars().map(fold_char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(entries: &[&str]) -> Names {
        let mut n = Names::default();
        for e in entries {
            let kind = if e.is_empty() {
                Kind::Root
            } else if e.ends_with('/') {
                Kind::Dir
            } else {
                Kind::File
            };
            assert!(n.push(e, kind));
        }
        n
    }

    fn check(entries: &[&str]) -> Result<(), String> {
        names(entries)
            .check_collisions()
            .map_err(|c| format!("{}: {}", c.entry, c.reason))
    }

    #[test]
    fn slash_sorts_before_everything() {
        let mut v = vec!["a.go", "a/b", "a-x", "a", "A/c", "a b"];
        v.sort_by(|a, b| fold_cmp(a, b));
        assert_eq!(v, ["a", "a/b", "A/c", "a b", "a-x", "a.go"]);
        assert_eq!(fold_cmp("\u{212A}/x", "k/x"), Ordering::Equal);
        assert_eq!(fold_cmp("ab/c", "aB/c"), Ordering::Equal);
    }

    #[test]
    fn collisions_match_x_mod() {
        assert_eq!(check(&["a.go", "b/c.go", "b/d.go", "b/", ""]), Ok(()));
        assert_eq!(
            check(&["README", "readme"]),
            Err(r#"1: case-insensitive file name collision: "README" and "readme""#.into())
        );
        // Parents collide too, whichever entry comes first, far apart in byte order.
        assert_eq!(
            check(&["dir/b.go", "x.go", "Dir/a.go"]),
            Err(r#"2: case-insensitive file name collision: "dir" and "Dir""#.into())
        );
        assert_eq!(
            check(&["a", "a-b", "a.go", "a/b.go"]),
            Err(r#"3: entry "a" is both a file and a directory"#.into())
        );
        assert_eq!(
            check(&["a/b/c.go", "a/b"]),
            Err(r#"1: entry "a/b" is both a file and a directory"#.into())
        );
        assert_eq!(
            check(&["a/", "a"]),
            Err(r#"1: entry "a" is both a file and a directory"#.into())
        );
        assert_eq!(
            check(&["x", "a.go", "a.go"]),
            Err(r#"2: multiple entries for file "a.go""#.into())
        );
        // A file under a differently-cased directory entry.
        assert_eq!(
            check(&["A/", "a/b.go"]),
            Err(r#"1: case-insensitive file name collision: "A" and "a""#.into())
        );
        // The same directory any number of times, explicit or implied, is fine.
        assert_eq!(check(&["a/", "a/", "a/b/", "a/b/c", "a/", "", ""]), Ok(()));
        // A file and a directory entry with one name, with other entries between them in
        // byte order but not in folded order.
        assert_eq!(
            check(&["a", "a-z/x", "a/"]),
            Err(r#"2: entry "a" is both a file and a directory"#.into())
        );
    }

    #[test]
    fn sorting_agrees_with_the_incremental_checker() {
        // x/mod's checker (what crates/vcs uses) and the sort-based check accept exactly the
        // same sets of entries, over random sets from names that fold together.
        let parts = [
            "a", "A", "b", "k", "K", "\u{212A}", "\u{3c3}", "\u{3c2}", "a.b",
        ];
        let mut state = 7u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let entries: Vec<String> = (0..1 + next(5))
                .map(|_| {
                    let depth = 1 + next(3);
                    let path: Vec<&str> = (0..depth).map(|_| parts[next(parts.len())]).collect();
                    let dir = if next(3) == 0 { "/" } else { "" };
                    format!("{}{dir}", path.join("/"))
                })
                .collect();
            let mut incremental = super::super::Collisions::default();
            let ok_incremental = entries.iter().fold(true, |ok, e| {
                let path = e.strip_suffix('/').unwrap_or(e);
                incremental.check(path, e.ends_with('/')).is_ok() && ok
            });
            let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
            let ok_sorted = check(&refs).is_ok();
            assert_eq!(ok_incremental, ok_sorted, "{entries:?}");
            if ok_sorted {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(accepted > 1000 && rejected > 1000, "{accepted} {rejected}");
    }

    #[test]
    fn folding_matches_go_equal_fold() {
        assert_eq!(str_to_fold("ABC/def"), "abc/def");
        assert_eq!(str_to_fold("\u{212A}"), "k");
        assert_eq!(str_to_fold("\u{17F}"), "s");
        assert_eq!(str_to_fold("ΣΑΣ"), str_to_fold("σας"));
        assert_ne!(str_to_fold("a"), str_to_fold("b"));
        assert_eq!(str_to_fold("ß"), str_to_fold("ẞ"));
        assert!(check(&["\u{3c3}.txt", "\u{3c2}.txt"]).is_err());
        assert!(check(&["k.go", "\u{212A}.go"]).is_err());
    }
}
