//! From the syntax tree to a [`ModFile`] (`modfile/rule.go`): each directive checked and
//! turned into its typed entry, strictly or laxly.

use super::gover::*;
use super::lex::*;
use super::*;

pub(super) fn parse_file(name: &str, data: &[u8], strict: bool) -> Result<ModFile, ModFileError> {
    let syntax_error = |e: SyntaxError| ModFileError {
        name: name.to_string(),
        problems: vec![Problem {
            line: e.pos.line,
            column: e.pos.col,
            reason: e.msg,
        }],
    };
    let mut input = Input::new(name, data);
    let mut stmts = input
        .read_token()
        .and_then(|()| input.parse_file())
        .map_err(syntax_error)?;
    assign_suffix_comments(&mut stmts, std::mem::take(&mut input.comments));

    let mut b = Builder {
        file: ModFile::default(),
        problems: Vec::new(),
        strict,
    };
    for stmt in &stmts {
        match stmt {
            Stmt::Comments { .. } => {}
            Stmt::Line(l) => b.add(None, l, l.tokens[0], &l.tokens[1..]),
            Stmt::Block(x) => {
                const BLOCKS: &[&[u8]] = &[
                    b"module", b"godebug", b"require", b"exclude", b"replace", b"retract", b"tool",
                    b"ignore",
                ];
                if x.tokens.len() > 1 || !BLOCKS.contains(&x.tokens[0]) {
                    if strict {
                        let joined: Vec<String> = x.tokens.iter().map(|t| show(t)).collect();
                        b.problem(
                            x.start,
                            format!("unknown block type: {}", excerpt(&joined.join(" "))),
                        );
                    }
                    continue;
                }
                for l in &x.lines {
                    b.add(Some(x), l, x.tokens[0], &l.tokens);
                }
            }
        }
    }
    if b.problems.is_empty() {
        Ok(b.file)
    } else {
        Err(ModFileError {
            name: name.to_string(),
            problems: b.problems,
        })
    }
}

pub(super) struct Builder {
    pub(super) file: ModFile,
    pub(super) problems: Vec<Problem>,
    pub(super) strict: bool,
}

/// `strconv.Unquote` for a token starting with `"`; `None` is "invalid syntax".
pub(super) fn unquote(s: &[u8]) -> Option<Vec<u8>> {
    let inner = s.strip_prefix(b"\"")?;
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    loop {
        let c = *inner.get(i)?;
        match c {
            b'"' => {
                // The closing quote must end the token.
                return (i + 1 == inner.len()).then_some(out);
            }
            b'\n' => return None,
            b'\\' => {
                let e = *inner.get(i + 1)?;
                i += 2;
                let simple = match e {
                    b'a' => Some(7),
                    b'b' => Some(8),
                    b'f' => Some(12),
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    b'v' => Some(11),
                    b'\\' => Some(b'\\'),
                    b'"' => Some(b'"'),
                    _ => None,
                };
                if let Some(v) = simple {
                    out.push(v);
                    continue;
                }
                match e {
                    b'x' | b'u' | b'U' => {
                        let n = match e {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = inner.get(i..i + n)?;
                        let hex = std::str::from_utf8(hex).ok()?;
                        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                            return None;
                        }
                        let v = u32::from_str_radix(hex, 16).ok()?;
                        i += n;
                        if e == b'x' {
                            // A single byte, possibly not UTF-8.
                            out.push(u8::try_from(v).ok()?);
                        } else {
                            let ch = char::from_u32(v)?;
                            let mut buf = [0; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                    }
                    b'0'..=b'7' => {
                        let digits = inner.get(i..i + 2)?;
                        if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                            return None;
                        }
                        let v = u32::from(e - b'0') << 6
                            | u32::from(digits[0] - b'0') << 3
                            | u32::from(digits[1] - b'0');
                        i += 2;
                        out.push(u8::try_from(v).ok()?);
                    }
                    _ => return None,
                }
            }
            c if c < 0x80 => {
                out.push(c);
                i += 1;
            }
            _ => {
                // A multi-byte rune; an invalid byte becomes U+FFFD, as in Go.
                let (r, size) = decode_rune(&inner[i..]);
                let ch = char::from_u32(r).unwrap_or('\u{FFFD}');
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += size;
            }
        }
    }
}

/// Why a token's string value could not be taken (`parseString`'s errors, plus our UTF-8 rule).
pub(super) enum StrError {
    /// `strconv.Unquote` failed.
    Syntax,
    /// An unquoted token containing `"`, `'` or `` ` ``.
    Quote,
    /// The value is not UTF-8 (go would accept it).
    Utf8,
}

impl fmt::Display for StrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrError::Syntax => "invalid syntax",
            StrError::Quote => "unquoted string cannot contain quote",
            StrError::Utf8 => "invalid UTF-8",
        })
    }
}

/// `parseString`: a `"…"` token is unquoted; other tokens are taken as is but may not contain
/// quote characters (so `` `…` `` strings are refused).
pub(super) fn parse_string_bytes(tok: &[u8]) -> Result<Vec<u8>, StrError> {
    if tok.starts_with(b"\"") {
        unquote(tok).ok_or(StrError::Syntax)
    } else if tok.iter().any(|b| matches!(b, b'"' | b'\'' | b'`')) {
        Err(StrError::Quote)
    } else {
        Ok(tok.to_vec())
    }
}

pub(super) fn parse_string(tok: &[u8]) -> Result<String, StrError> {
    String::from_utf8(parse_string_bytes(tok)?).map_err(|_| StrError::Utf8)
}

/// A path argument's value, with go's message if it cannot be taken (or ours if it is not UTF-8).
pub(super) fn string_arg(tok: &[u8]) -> Result<String, String> {
    parse_string(tok).map_err(|e| match e {
        StrError::Utf8 => format!(
            "invalid UTF-8 in {}",
            go_quote(&String::from_utf8_lossy(tok))
        ),
        e => format!("invalid quoted string: {e}"),
    })
}

/// The text of a directive's comments, one trimmed line per comment (`parseDirectiveComment`):
/// the line's own comments, or its block's if the line has none.
pub(super) fn directive_comment(block: Option<&LineBlock<'_>>, line: &Line<'_>) -> String {
    let mut comments = &line.comments;
    if let Some(b) = block
        && comments.before.is_empty()
        && comments.suffix.is_empty()
    {
        comments = &b.comments;
    }
    let lines: Vec<String> = comments
        .before
        .iter()
        .chain(&comments.suffix)
        .filter_map(|c| c.text.strip_prefix(b"//"))
        .map(|t| String::from_utf8_lossy(t).trim().to_string())
        .collect();
    lines.join("\n")
}

/// The deprecation message in a directive comment: the first paragraph starting `Deprecated:`
/// (`(?s)(?:^|\n\n)Deprecated: *(.*?)(?:$|\n\n)`), without the prefix.
pub(super) fn deprecation(text: &str) -> Option<String> {
    const PREFIX: &str = "Deprecated:";
    let start = if text.starts_with(PREFIX) {
        0
    } else {
        // The leftmost paragraph break followed by the prefix ("\n\n\nDeprecated:" matches at 1).
        text.find("\n\nDeprecated:")? + 2
    };
    let msg = text[start + PREFIX.len()..].trim_start_matches(' ');
    let msg = msg.find("\n\n").map_or(msg, |end| &msg[..end]);
    Some(msg.to_string()).filter(|m| !m.is_empty())
}

/// Whether a requirement line carries `// indirect` (`isIndirect`): its first end-of-line
/// comment is exactly `indirect`, or starts with the word `indirect;`.
pub(super) fn is_indirect(line: &Line<'_>) -> bool {
    let Some(c) = line.comments.suffix.first() else {
        return false;
    };
    let text = c.text.strip_prefix(b"//").unwrap_or(c.text);
    let text = String::from_utf8_lossy(text);
    let f: Vec<&str> = text.split_whitespace().collect();
    (f.len() == 1 && f[0] == "indirect") || (f.len() > 1 && f[0] == "indirect;")
}

impl Builder {
    pub(super) fn problem(&mut self, pos: Pos, reason: String) {
        self.problems.push(Problem {
            line: pos.line,
            column: pos.col,
            reason,
        });
    }

    /// `parseVersion` without a fixer: a semantic version, canonicalized. `path` is the module
    /// path for the message (`verb path: version "x" invalid: …`).
    pub(super) fn version(&self, verb: &str, path: &str, tok: &[u8]) -> Result<Version, String> {
        let prefix = if path.is_empty() {
            format!("{verb}: ")
        } else {
            format!("{verb} {}: ", excerpt(path))
        };
        let t = parse_string_bytes(tok).map_err(|e| {
            format!(
                "{prefix}version {} invalid: {e}",
                go_quote(&String::from_utf8_lossy(tok))
            )
        })?;
        // Bytes that are not UTF-8 are no semantic version: the same error as in go.
        let t = String::from_utf8_lossy(&t);
        let cv = canonical_version(&t).ok_or_else(|| {
            format!(
                "{prefix}version {} invalid: must be of the form v1.2.3",
                go_quote(&t)
            )
        })?;
        Version::parse(&cv).map_err(|e| match e {
            crate::Error::InvalidVersion { reason, .. } => {
                format!("{prefix}version {} invalid: {reason}", go_quote(&cv))
            }
            other => format!("{prefix}{other}"),
        })
    }

    /// `module.CheckPathMajor` with go's message.
    pub(super) fn path_major(
        verb: &str,
        path: &str,
        v: &Version,
        major: &str,
    ) -> Result<(), String> {
        check_path_major(v.as_str(), major).map_err(|e| match e {
            crate::Error::InvalidVersion { reason, .. } => format!(
                "{verb} {}: version {} invalid: {reason}",
                excerpt(path),
                go_quote(v.as_str())
            ),
            other => format!("{verb} {}: {other}", excerpt(path)),
        })
    }

    /// `File.add`: interprets one directive line.
    pub(super) fn add(
        &mut self,
        block: Option<&LineBlock<'_>>,
        line: &Line<'_>,
        verb: &[u8],
        args: &[&[u8]],
    ) {
        // In dependencies, keep only what matters outside the main module; skip the rest,
        // including directives newer than this parser.
        if !self.strict
            && !matches!(
                verb,
                b"go" | b"module" | b"retract" | b"require" | b"ignore"
            )
        {
            return;
        }
        let at = line.start;
        let result = match verb {
            b"go" => self.add_go(args),
            b"toolchain" => self.add_toolchain(args),
            b"module" => self.add_module(block, line, args),
            b"godebug" => self.add_godebug(line, args),
            b"require" | b"exclude" => self.add_require_or_exclude(line, verb, args),
            b"replace" => self.add_replace(line, args),
            b"retract" => self.add_retract(block, line, args),
            b"tool" | b"ignore" => self.add_tool_or_ignore(line, verb, args),
            _ => Err(format!("unknown directive: {}", show(verb))),
        };
        if let Err(reason) = result {
            self.problem(at, reason);
        }
    }

    pub(super) fn add_go(&mut self, args: &[&[u8]]) -> Result<(), String> {
        if self.file.go.is_some() {
            return Err("repeated go statement".into());
        }
        let [v] = args else {
            return Err("go directive expects exactly one argument".into());
        };
        let v = if is_go_directive_version(v) {
            *v
        } else {
            match lax_go_version(v).filter(|_| !self.strict) {
                Some(fixed) => fixed,
                None => {
                    return Err(format!(
                        "invalid go version '{}': must match format 1.23.0",
                        show(v)
                    ));
                }
            }
        };
        // Both forms are ASCII.
        self.file.go = Some(String::from_utf8_lossy(v).into_owned());
        Ok(())
    }

    pub(super) fn add_toolchain(&mut self, args: &[&[u8]]) -> Result<(), String> {
        if self.file.toolchain.is_some() {
            return Err("repeated toolchain statement".into());
        }
        let [name] = args else {
            return Err("toolchain directive expects exactly one argument".into());
        };
        if !is_toolchain_name(name) {
            return Err(format!(
                "invalid toolchain version '{}': must match format go1.23.0 or default",
                show(name)
            ));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| format!("invalid toolchain version '{}': invalid UTF-8", show(name)))?;
        self.file.toolchain = Some(name.to_string());
        Ok(())
    }

    pub(super) fn add_module(
        &mut self,
        block: Option<&LineBlock<'_>>,
        line: &Line<'_>,
        args: &[&[u8]],
    ) -> Result<(), String> {
        if self.file.module.is_some() {
            return Err("repeated module statement".into());
        }
        // Set before checking the arguments, so a second bad one is "repeated", as in go.
        self.file.module = Some(Module {
            path: String::new(),
            deprecated: deprecation(&directive_comment(block, line)),
            line: line.start.line,
        });
        let [path] = args else {
            return Err("usage: module module/path".into());
        };
        let path = string_arg(path)?;
        if let Some(m) = &mut self.file.module {
            m.path = path;
        }
        Ok(())
    }

    pub(super) fn add_godebug(&mut self, line: &Line<'_>, args: &[&[u8]]) -> Result<(), String> {
        let usage = || "usage: godebug key=value".to_string();
        let [kv] = args else { return Err(usage()) };
        if kv.iter().any(|b| matches!(b, b'"' | b'`' | b'\'' | b',')) {
            return Err(usage());
        }
        let kv = std::str::from_utf8(kv)
            .map_err(|_| format!("invalid godebug setting '{}': invalid UTF-8", show(kv)))?;
        let (key, value) = kv.split_once('=').ok_or_else(usage)?;
        self.file.godebug.push(Godebug {
            key: key.to_string(),
            value: value.to_string(),
            line: line.start.line,
        });
        Ok(())
    }

    pub(super) fn add_require_or_exclude(
        &mut self,
        line: &Line<'_>,
        verb: &[u8],
        args: &[&[u8]],
    ) -> Result<(), String> {
        let verb = if verb == b"require" {
            "require"
        } else {
            "exclude"
        };
        let [path, version] = args else {
            return Err(format!("usage: {verb} module/path v1.2.3"));
        };
        let path = string_arg(path)?;
        let version = self.version(verb, &path, version)?;
        let (_, major) = split_path_version(&path).ok_or("invalid module path")?;
        Self::path_major(verb, &path, &version, major)?;
        if verb == "require" {
            self.file.require.push(Require {
                path,
                version,
                indirect: is_indirect(line),
                line: line.start.line,
            });
        } else {
            self.file.exclude.push(Exclude {
                path,
                version,
                line: line.start.line,
            });
        }
        Ok(())
    }

    /// `parseReplace`.
    pub(super) fn add_replace(&mut self, line: &Line<'_>, args: &[&[u8]]) -> Result<(), String> {
        let arrow = if args.len() >= 2 && args[1] == b"=>" {
            1
        } else {
            2
        };
        if args.len() < arrow + 2 || args.len() > arrow + 3 || args[arrow] != b"=>" {
            return Err("usage: replace module/path [v1.2.3] => other/module v1.4 \
                        or replace module/path [v1.2.3] => ../local/directory"
                .into());
        }
        let old_path = string_arg(args[0])?;
        let (_, major) = split_path_version(&old_path)
            .ok_or_else(|| format!("replace {}: invalid module path", excerpt(&old_path)))?;
        let old_version = if arrow == 2 {
            let v = self.version("replace", &old_path, args[1])?;
            Self::path_major("replace", &old_path, &v, major)?;
            Some(v)
        } else {
            None
        };
        let new_path = string_arg(args[arrow + 1])?;
        let new = if args.len() == arrow + 2 {
            if !is_directory_path(&new_path) {
                if new_path.contains('@') {
                    return Err("replacement module must match format 'path version', \
                                not 'path@version'"
                        .into());
                }
                return Err("replacement module without version must be directory path \
                            (rooted or starting with . or ..)"
                    .into());
            }
            if std::path::MAIN_SEPARATOR == '/' && new_path.contains('\\') {
                return Err(
                    "replacement directory appears to be Windows path (on a non-windows system)"
                        .into(),
                );
            }
            Replacement::Dir(new_path)
        } else {
            let version = self.version("replace", &new_path, args[arrow + 2])?;
            if is_directory_path(&new_path) {
                return Err(format!(
                    "replacement module directory path {} cannot have version",
                    go_quote(&new_path)
                ));
            }
            Replacement::Module {
                path: new_path,
                version,
            }
        };
        self.file.replace.push(Replace {
            old_path,
            old_version,
            new,
            line: line.start.line,
        });
        Ok(())
    }

    /// `retract v` or `retract [lo, hi]`, versions kept as written (`parseVersionInterval`
    /// with go's no-op retract fixer).
    pub(super) fn add_retract(
        &mut self,
        block: Option<&LineBlock<'_>>,
        line: &Line<'_>,
        args: &[&[u8]],
    ) -> Result<(), String> {
        let rationale = directive_comment(block, line);
        let version = |tok: &[u8]| -> Result<String, String> {
            let b = parse_string_bytes(tok).map_err(|e| {
                format!(
                    "retract: version {} invalid: {e}",
                    go_quote(&String::from_utf8_lossy(tok))
                )
            })?;
            // Not UTF-8 is not a semantic version either, which is all that matters here.
            Ok(String::from_utf8_lossy(&b).into_owned())
        };
        let interval = (|| -> Result<(String, String, &[&[u8]]), String> {
            match args {
                [] | [b"(", ..] => Err("expected '[' or version".into()),
                [b"[", rest @ ..] => {
                    let [lo, rest @ ..] = rest else {
                        return Err("expected version after '['".into());
                    };
                    let lo = version(lo)?;
                    let [b",", rest @ ..] = rest else {
                        return Err("expected ',' after version".into());
                    };
                    let [hi, rest @ ..] = rest else {
                        return Err("expected version after ','".into());
                    };
                    let hi = version(hi)?;
                    let [b"]", rest @ ..] = rest else {
                        return Err("expected ']' after version".into());
                    };
                    Ok((lo, hi, rest))
                }
                [v, rest @ ..] => {
                    let v = version(v)?;
                    Ok((v.clone(), v, rest))
                }
            }
        })();
        let (low, high, rest) = match interval {
            Ok(i) => i,
            // A dependency may use interval syntax newer than this parser: skip it.
            Err(_) if !self.strict => return Ok(()),
            Err(e) => return Err(e),
        };
        if let (Some(extra), true) = (rest.first(), self.strict) {
            return Err(format!(
                "unexpected token after version: {}",
                go_quote(&String::from_utf8_lossy(extra))
            ));
        }
        self.file.retract.push(Retract {
            low,
            high,
            rationale,
            line: line.start.line,
        });
        Ok(())
    }

    pub(super) fn add_tool_or_ignore(
        &mut self,
        line: &Line<'_>,
        verb: &[u8],
        args: &[&[u8]],
    ) -> Result<(), String> {
        let tool = verb == b"tool";
        let [path] = args else {
            return Err(if tool {
                "tool directive expects exactly one argument".into()
            } else {
                "ignore directive expects exactly one argument".into()
            });
        };
        let path = string_arg(path)?;
        let line = line.start.line;
        if tool {
            self.file.tool.push(Tool { path, line });
        } else {
            self.file.ignore.push(Ignore { path, line });
        }
        Ok(())
    }
}
