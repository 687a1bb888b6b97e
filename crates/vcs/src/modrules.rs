//! Small x/mod and cmd/go rules the code repository needs that `gomod` does not export:
//! pseudo-version construction, `modfile.ModulePath`, `module.PathMajorPrefix`,
//! `str.HasPathPrefix`, `path.Join`, `modfile.AutoQuote` and the go.mod `go` language version.

use crate::revinfo::pseudo_timestamp;

/// `str.HasPathPrefix`: `s` is `prefix` or starts with `prefix/`.
pub(crate) fn has_path_prefix(s: &str, prefix: &str) -> bool {
    if s.len() == prefix.len() {
        return s == prefix;
    }
    if s.len() > prefix.len() {
        if prefix.ends_with('/') {
            return s.starts_with(prefix);
        }
        return s.as_bytes()[prefix.len()] == b'/' && s.starts_with(prefix);
    }
    false
}

/// `path.Join` of two clean relative paths.
pub(crate) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (false, true) => a.to_string(),
        _ => format!("{a}/{b}"),
    }
}

/// `module.PathMajorPrefix`: `/v2` → `v2`, `.v2-unstable` → `v2`, `` → ``.
pub(crate) fn path_major_prefix(path_major: &str) -> String {
    if path_major.is_empty() {
        return String::new();
    }
    let mut m = path_major;
    if m.starts_with(".v") {
        m = m.strip_suffix("-unstable").unwrap_or(m);
    }
    m[1..].to_string()
}

/// `module.PseudoVersion(major, older, t, rev)`.
pub(crate) fn pseudo_version(major: &str, older: &str, time: i64, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{}-{rev}", pseudo_timestamp(time));
    let build = gomod::semver::build(older).unwrap_or("");
    let Some(older) = gomod::semver::canonical(older) else {
        return format!("{major}.0.0-{segment}");
    };
    if gomod::semver::prerelease(&older).is_some() {
        return format!("{older}.0.{segment}");
    }
    let i = older.rfind('.').map_or(0, |i| i + 1);
    let (v, patch) = older.split_at(i);
    format!("{v}{}-0.{segment}{build}", inc_decimal(patch))
}

/// Adds one to a decimal string.
fn inc_decimal(decimal: &str) -> String {
    let mut digits: Vec<u8> = decimal.bytes().collect();
    let mut i = digits.len();
    loop {
        if i == 0 {
            digits.insert(0, b'1');
            break;
        }
        i -= 1;
        if digits[i] == b'9' {
            digits[i] = b'0';
        } else {
            digits[i] += 1;
            break;
        }
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// `modfile.ModulePath`: the module path of a go.mod, found the quick way (the first line that
/// starts with `module` after `//` comments are cut), or empty.
pub(crate) fn go_mod_module_path(gomod: &[u8]) -> String {
    for raw in gomod.split(|&b| b == b'\n') {
        let mut line = raw;
        if let Some(i) = find(line, b"//") {
            line = &line[..i];
        }
        let line = trim_space(line);
        let Some(rest) = line.strip_prefix(b"module") else {
            continue;
        };
        let n = rest.len();
        let rest = trim_space(rest);
        if rest.len() == n || rest.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(rest) else {
            return String::new();
        };
        if text.starts_with('"') || text.starts_with('`') {
            return go_unquote(text).unwrap_or_default();
        }
        return text.to_string();
    }
    String::new()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `bytes.TrimSpace` (ASCII and the Unicode spaces Go trims).
fn trim_space(b: &[u8]) -> &[u8] {
    let s = match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(_) => return b.trim_ascii(),
    };
    s.trim_matches(|c: char| c.is_whitespace()).as_bytes()
}

/// `strconv.Unquote` for the forms a go.mod module path can take.
fn go_unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`') {
        let body = raw.strip_suffix('`')?;
        if body.contains('`') || body.contains('\n') {
            return None;
        }
        return Some(body.replace('\r', ""));
    }
    let body = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\n' => return None,
            '\\' => {
                let e = chars.next()?;
                match e {
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'v' => out.push('\u{b}'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => return None,
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                        if hex.len() != n {
                            return None;
                        }
                        let v = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(v)?);
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8)?;
                        for _ in 0..2 {
                            v = v * 8 + chars.next()?.to_digit(8)?;
                        }
                        if v > 255 {
                            return None;
                        }
                        out.push(char::from_u32(v)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `modfile.MustQuote` for a module path.
fn must_quote(s: &str) -> bool {
    for c in s.chars() {
        match c {
            ' ' | '"' | '\'' | '`' => return true,
            '(' | ')' | '[' | ']' | '{' | '}' | ',' if s.len() > 1 => return true,
            c if c.is_control() => return true,
            _ => {}
        }
    }
    s.is_empty() || s.contains("//") || s.contains("/*")
}

/// `modfetch.LegacyGoMod`: the go.mod the go command synthesizes for a module without one.
pub(crate) fn legacy_go_mod(mod_path: &str) -> Vec<u8> {
    let path = if must_quote(mod_path) {
        let mut q = String::new();
        crate::revinfo::json_string(&mut q, mod_path);
        q
    } else {
        mod_path.to_string()
    };
    format!("module {path}\n").into_bytes()
}

/// `version.Lang` of the `go` line of a go.mod parsed leniently, as x/mod/zip reads it to
/// decide the vendor rules: `1.24.1` → `1.24`; `None` without a usable `go` line.
pub(crate) fn go_mod_lang(gomod: &[u8]) -> Option<String> {
    let file = gomod::modfile::ModFile::parse_lax("go.mod", gomod).ok()?;
    let go = file.go.as_deref()?;
    lang(go)
}

/// `go/version.Lang` without the `go` prefix: major.minor of a valid Go version.
fn lang(v: &str) -> Option<String> {
    if !gomod::modfile::is_valid_go_version(v) {
        return None;
    }
    let mut parts = v.splitn(3, '.');
    let major = parts.next()?;
    let minor: String = match parts.next() {
        Some(m) => m.chars().take_while(|c| c.is_ascii_digit()).collect(),
        None => return Some(major.chars().take_while(|c| c.is_ascii_digit()).collect()),
    };
    if minor.is_empty() {
        return Some(major.to_string());
    }
    Some(format!("{major}.{minor}"))
}

/// Whether a `version.Lang` result is at least Go 1.24 (x/mod/zip's vendor rule change).
pub(crate) fn lang_at_least_1_24(lang: Option<&str>) -> bool {
    lang.is_some_and(|l| gomod::modfile::compare_go_versions(l, "1.24") != std::cmp::Ordering::Less)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_versions() {
        let t = 1_677_726_245; // 2023-03-02T03:04:05Z
        assert_eq!(
            pseudo_version("", "", t, "1d37fedeafb1"),
            "v0.0.0-20230302030405-1d37fedeafb1"
        );
        assert_eq!(
            pseudo_version("v2", "", t, "1d37fedeafb1"),
            "v2.0.0-20230302030405-1d37fedeafb1"
        );
        assert_eq!(
            pseudo_version("", "v1.1.0", t, "1d37fedeafb1"),
            "v1.1.1-0.20230302030405-1d37fedeafb1"
        );
        assert_eq!(
            pseudo_version("", "v1.9.9", t, "abc"),
            "v1.9.10-0.20230302030405-abc"
        );
        assert_eq!(
            pseudo_version("", "v1.2.0-rc.1", t, "abc"),
            "v1.2.0-rc.1.0.20230302030405-abc"
        );
    }

    #[test]
    fn module_paths() {
        assert_eq!(
            go_mod_module_path(b"// x\nmodule  example.com/m // c\n"),
            "example.com/m"
        );
        assert_eq!(
            go_mod_module_path(b"module \"example.com/q\"\n"),
            "example.com/q"
        );
        assert_eq!(go_mod_module_path(b"module\nmodule x"), "x");
        assert_eq!(go_mod_module_path(b"modulex y\n"), "");
        assert_eq!(go_mod_module_path(b"go 1.21\n"), "");
        assert_eq!(legacy_go_mod("example.com/m"), b"module example.com/m\n");
    }

    #[test]
    fn path_prefixes() {
        assert!(has_path_prefix("a/b", "a"));
        assert!(has_path_prefix("a", "a"));
        assert!(!has_path_prefix("ab", "a"));
        assert_eq!(path_major_prefix(".v2-unstable"), "v2");
        assert_eq!(path_major_prefix("/v3"), "v3");
    }

    #[test]
    fn go_langs() {
        assert_eq!(lang("1.24.1").as_deref(), Some("1.24"));
        assert_eq!(lang("1.24rc1").as_deref(), Some("1.24"));
        assert_eq!(lang("1.21").as_deref(), Some("1.21"));
        assert!(lang_at_least_1_24(Some("1.24")));
        assert!(!lang_at_least_1_24(Some("1.23")));
        assert!(!lang_at_least_1_24(None));
        assert_eq!(
            go_mod_lang(b"module m\n\ngo 1.24.0\n").as_deref(),
            Some("1.24")
        );
    }
}
