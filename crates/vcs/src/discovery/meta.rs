//! `<meta name="go-import" content="prefix vcs repo-root [subdir]">` tags, read as
//! `cmd/go/internal/vcs/discovery.go` reads them: a forgiving scan of the document up to
//! `<body>` or `</head>`, element and attribute names compared case-insensitively, and with
//! module-aware lookups the `mod` entries first, hiding other entries for the same prefix.

/// One go-import tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaImport {
    pub prefix: String,
    pub vcs: String,
    pub repo_root: String,
    pub subdir: String,
}

/// Decodes the character references Go's XML decoder (non-strict) decodes in attribute values:
/// the five XML entities and numeric references; anything else is kept as written.
fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest[1..].find(';').map(|e| e + 1).filter(|&e| e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let name = &rest[1..end];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32),
            n if n.starts_with('#') => n[1..].parse::<u32>().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The local part of a possibly prefixed XML name (`x:meta` → `meta`).
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// A start tag's attributes, parsed from the text after the element name up to `>`.
fn attributes(mut s: &str) -> Vec<(String, String)> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if s.is_empty() {
            return attrs;
        }
        let name_len = s
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/')
            .unwrap_or(s.len());
        let name = &s[..name_len];
        s = s[name_len..].trim_start();
        let value;
        if let Some(rest) = s.strip_prefix('=') {
            let rest = rest.trim_start();
            if let Some(q) = rest.chars().next().filter(|&c| c == '"' || c == '\'') {
                let body = &rest[1..];
                let end = body.find(q).unwrap_or(body.len());
                value = decode_entities(&body[..end]);
                s = body.get(end + 1..).unwrap_or("");
            } else {
                let end = rest
                    .find(|c: char| c.is_ascii_whitespace())
                    .unwrap_or(rest.len());
                value = decode_entities(&rest[..end]);
                s = &rest[end..];
            }
        } else {
            // A bare attribute: non-strict XML gives it its own name as value.
            value = name.to_string();
        }
        if !name.is_empty() {
            attrs.push((name.to_string(), value));
        }
    }
}

/// `attrValue`: the value of the attribute named `name` (case-insensitive), or empty.
fn attr_value<'a>(attrs: &'a [(String, String)], name: &str) -> &'a str {
    attrs
        .iter()
        .find(|(k, _)| local(k).eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

/// `parseMetaGoImports` with `PreferMod`.
pub(crate) fn parse(html: &str) -> Vec<MetaImport> {
    let mut imports = Vec::new();
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        if let Some(after) = rest.strip_prefix("![CDATA[") {
            rest = after.find("]]>").map_or("", |e| &after[e + 3..]);
            continue;
        }
        if rest.starts_with('!') || rest.starts_with('?') {
            rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
            continue;
        }
        let end_tag = rest.starts_with('/');
        let body = if end_tag { &rest[1..] } else { rest };
        let name_len = body
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(body.len());
        let name = &body[..name_len];
        if name.is_empty() {
            continue;
        }
        let tag_end = tag_end(&body[name_len..]);
        let inside = &body[name_len..name_len + tag_end.min(body.len() - name_len)];
        rest = body.get(name_len + tag_end + 1..).unwrap_or("");
        let local = local(name);
        if end_tag {
            if local.eq_ignore_ascii_case("head") {
                break;
            }
            continue;
        }
        if local.eq_ignore_ascii_case("body") {
            break;
        }
        if !local.eq_ignore_ascii_case("meta") {
            continue;
        }
        let attrs = attributes(inside);
        if attr_value(&attrs, "name") != "go-import" {
            continue;
        }
        let fields: Vec<&str> = attr_value(&attrs, "content").split_whitespace().collect();
        if fields.len() == 3 || fields.len() == 4 {
            imports.push(MetaImport {
                prefix: fields[0].to_string(),
                vcs: fields[1].to_string(),
                repo_root: fields[2].to_string(),
                subdir: fields.get(3).map_or(String::new(), |s| s.to_string()),
            });
        }
    }

    // Module proxy (`mod`) entries first; other entries for a prefix with a `mod` entry are
    // dropped.
    let mods: Vec<MetaImport> = imports.iter().filter(|m| m.vcs == "mod").cloned().collect();
    let mut list = mods.clone();
    for m in imports {
        if m.vcs != "mod" && !mods.iter().any(|x| x.prefix == m.prefix) {
            list.push(m);
        }
    }
    list
}

/// Offset of the `>` closing a tag, skipping quoted attribute values.
fn tag_end(s: &str) -> usize {
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return i,
            _ => {}
        }
    }
    s.len()
}

/// `matchGoImport`: the one tag whose prefix is a path prefix of `import_path`. With `mod`
/// entries first, a matching `mod` entry wins over later non-`mod` matches.
pub(crate) fn match_go_import(
    imports: &[MetaImport],
    import_path: &str,
) -> Result<MetaImport, String> {
    let mut matched: Option<&MetaImport> = None;
    let mut mismatches = Vec::new();
    for im in imports {
        if !crate::modrules::has_path_prefix(import_path, &im.prefix) {
            mismatches.push(format!(
                "meta tag {} did not match import path {import_path}",
                im.prefix
            ));
            continue;
        }
        if let Some(m) = matched {
            if m.vcs == "mod" && im.vcs != "mod" {
                break;
            }
            return Err(format!(
                "multiple meta tags match import path {import_path:?}"
            ));
        }
        matched = Some(im);
    }
    matched.cloned().ok_or_else(|| mismatches.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mi(prefix: &str, vcs: &str, root: &str) -> MetaImport {
        MetaImport {
            prefix: prefix.into(),
            vcs: vcs.into(),
            repo_root: root.into(),
            subdir: String::new(),
        }
    }

    #[test]
    fn go_discovery_vectors() {
        // From cmd/go/internal/vcs/discovery_test.go.
        assert_eq!(
            parse(
                r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#
            ),
            vec![mi("foo/bar", "git", "https://github.com/rsc/foo/bar")]
        );
        assert_eq!(
            parse(
                r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
                <meta name="go-import" content="baz/quux git http://github.com/rsc/baz/quux">"#
            ),
            vec![
                mi("foo/bar", "git", "https://github.com/rsc/foo/bar"),
                mi("baz/quux", "git", "http://github.com/rsc/baz/quux"),
            ]
        );
        assert_eq!(
            parse(
                r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
                <meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">"#
            ),
            vec![mi("foo/bar", "mod", "http://github.com/rsc/baz/quux")]
        );
        assert_eq!(
            parse(
                r#"<head>
                <meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
                </head>
                <meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">"#
            ),
            vec![mi("foo/bar", "git", "https://github.com/rsc/foo/bar")]
        );
        assert_eq!(
            parse(
                r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">
                <body>
                <meta name="go-import" content="foo/bar mod http://github.com/rsc/baz/quux">"#
            ),
            vec![mi("foo/bar", "git", "https://github.com/rsc/foo/bar")]
        );
        assert_eq!(
            parse(
                r#"<!doctype html><meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar">"#
            ),
            vec![mi("foo/bar", "git", "https://github.com/rsc/foo/bar")]
        );
        // XML doesn't like <div style=position:relative>.
        assert_eq!(
            parse(
                r#"<!doctype html><title>Page Not Found</title><meta name=go-import content="chitin.io/chitin git https://github.com/chitin-io/chitin"><div style=position:relative>DRAFT</div>"#
            ),
            vec![mi(
                "chitin.io/chitin",
                "git",
                "https://github.com/chitin-io/chitin"
            )]
        );
        assert_eq!(
            parse(
                r#"<meta name="go-import" content="myitcv.io git https://github.com/myitcv/x">
	        <meta name="go-import" content="myitcv.io/blah2 mod https://raw.githubusercontent.com/myitcv/pubx/master">"#
            ),
            vec![
                mi(
                    "myitcv.io/blah2",
                    "mod",
                    "https://raw.githubusercontent.com/myitcv/pubx/master"
                ),
                mi("myitcv.io", "git", "https://github.com/myitcv/x"),
            ]
        );
        let four = parse(
            r#"<meta name="go-import" content="foo/bar git https://github.com/rsc/foo/bar subdir">"#,
        );
        assert_eq!(four[0].subdir, "subdir");
        assert_eq!(
            parse(r#"<META NAME="go-import" CONTENT="a git b">"#).len(),
            1
        );
        assert_eq!(
            parse(r#"<meta name="GO-IMPORT" content="a git b">"#).len(),
            0
        );
        assert_eq!(
            parse(r#"<meta name="go-import" content="a git b c d">"#).len(),
            0
        );
    }

    #[test]
    fn matching() {
        let imports = vec![
            mi("example.com/a", "git", "https://x/a"),
            mi("example.com/b", "git", "https://x/b"),
        ];
        assert_eq!(
            match_go_import(&imports, "example.com/a/sub")
                .unwrap()
                .repo_root,
            "https://x/a"
        );
        assert!(
            match_go_import(&imports, "example.com/c")
                .unwrap_err()
                .contains("did not match")
        );
        let dup = vec![
            mi("example.com", "git", "https://x"),
            mi("example.com/a", "git", "https://y"),
        ];
        assert!(
            match_go_import(&dup, "example.com/a")
                .unwrap_err()
                .contains("multiple")
        );
        let with_mod = vec![
            mi("example.com", "mod", "https://proxy"),
            mi("example.com", "git", "https://y"),
        ];
        assert_eq!(
            match_go_import(&parse_back(&with_mod), "example.com/x")
                .unwrap()
                .vcs,
            "mod"
        );
    }

    fn parse_back(v: &[MetaImport]) -> Vec<MetaImport> {
        v.to_vec()
    }
}
