//! Parsing a GOPROXY request path into a typed request.
//!
//! The server strips its mount prefix and the leading `/` and hands over the raw, still
//! percent-encoded path. Decoding happens in a fixed order: percent-decoding first (the go
//! command sends `!` as `%21`; curl and sumdb clients send it literally), then the `!`
//! case-unescaping, then validation of the module path and version. Anything that could escape a
//! storage prefix or confuse an upstream URL (`..`, encoded slashes, control characters,
//! non-ASCII, upper case, overlong input) is rejected here.

use crate::error::excerpt;
use crate::escape;
use crate::module::{self, Kind, MAX_VERSION_LEN};
use crate::sumdb::{SumdbName, SumdbPath};
use crate::{Error, ModulePath, Version};

/// Longest raw request path accepted, in bytes (escaping can double a module path and
/// percent-encoding triple some bytes, so this is generous next to the 1 KiB path cap).
pub const MAX_REQUEST_PATH: usize = 4096;

/// The version part of a `.info` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum InfoVersion {
    /// A canonical version: the answer must echo exactly this version.
    Canonical(Version),
    /// A query to resolve (`master`, `v1.2`, a commit hash prefix, `v1.2.3+meta`): unescaped,
    /// at most [`MAX_VERSION_LEN`] bytes of `[A-Za-z0-9._+-]`, not starting with `-`, and a
    /// valid file name element.
    Query(String),
}

/// One GOPROXY protocol request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProxyRequest {
    /// `<module>/@v/list`
    List {
        /// The module.
        module: ModulePath,
    },
    /// `<module>/@latest`
    Latest {
        /// The module.
        module: ModulePath,
    },
    /// `<module>/@v/<version>.info`
    Info {
        /// The module.
        module: ModulePath,
        /// A canonical version or a query.
        version: InfoVersion,
    },
    /// `<module>/@v/<version>.mod` (canonical versions only, as the go command sends)
    Mod {
        /// The module.
        module: ModulePath,
        /// The version.
        version: Version,
    },
    /// `<module>/@v/<version>.zip` (canonical versions only)
    Zip {
        /// The module.
        module: ModulePath,
        /// The version.
        version: Version,
    },
    /// `sumdb/<name>/<path>`: a checksum database request to proxy.
    Sumdb {
        /// The database name, like `sum.golang.org`.
        name: SumdbName,
        /// The rest after the name: `supported`, `latest`, `lookup/<mod>@<ver>` or `tile/…`.
        path: SumdbPath,
    },
}

impl ProxyRequest {
    /// Parses a raw (percent-encoded) request path without its leading `/`.
    pub fn parse(raw_path: &str) -> Result<ProxyRequest, Error> {
        if raw_path.len() > MAX_REQUEST_PATH {
            return Err(bad(format!(
                "path is longer than {MAX_REQUEST_PATH} bytes ({} bytes)",
                raw_path.len()
            )));
        }
        let path = percent_decode(raw_path)?;

        if let Some(rest) = path.strip_prefix("sumdb/") {
            return parse_sumdb(rest);
        }
        if let Some(module) = path.strip_suffix("/@latest") {
            return Ok(ProxyRequest::Latest {
                module: parse_module(module)?,
            });
        }
        let Some((module, file)) = path.split_once("/@v/") else {
            return Err(bad(format!(
                "{:?} is not <module>/@v/list, <module>/@v/<version>.(info|mod|zip), \
                 <module>/@latest or sumdb/<name>/<path>",
                excerpt(&path)
            )));
        };
        let module = parse_module(module)?;
        if file == "list" {
            return Ok(ProxyRequest::List { module });
        }
        if file.contains('/') {
            return Err(bad(format!(
                "unexpected '/' after @v/ in {:?}",
                excerpt(&path)
            )));
        }
        let Some((version, ext)) = file.rsplit_once('.') else {
            return Err(bad(format!(
                "{:?} is not list or <version>.(info|mod|zip)",
                excerpt(file)
            )));
        };
        if version.is_empty() {
            return Err(bad("empty version".into()));
        }
        match ext {
            "info" => Ok(ProxyRequest::Info {
                module,
                version: parse_info_version(version)?,
            }),
            "mod" => Ok(ProxyRequest::Mod {
                module,
                version: Version::from_escaped(version)?,
            }),
            "zip" => Ok(ProxyRequest::Zip {
                module,
                version: Version::from_escaped(version)?,
            }),
            _ => Err(bad(format!(
                "unknown file type {:?} (want .info, .mod or .zip)",
                excerpt(ext)
            ))),
        }
    }

    /// The module this request is about (`None` for checksum database requests).
    pub fn module(&self) -> Option<&ModulePath> {
        match self {
            ProxyRequest::List { module }
            | ProxyRequest::Latest { module }
            | ProxyRequest::Info { module, .. }
            | ProxyRequest::Mod { module, .. }
            | ProxyRequest::Zip { module, .. } => Some(module),
            ProxyRequest::Sumdb { .. } => None,
        }
    }
}

fn bad(reason: String) -> Error {
    Error::InvalidRequest { reason }
}

fn parse_module(escaped: &str) -> Result<ModulePath, Error> {
    if escaped.is_empty() {
        return Err(bad("empty module path".into()));
    }
    ModulePath::from_escaped(escaped)
}

/// Decodes `%XX` escapes. Both raw and decoded bytes must be visible ASCII (no space, control
/// character or non-ASCII byte), and `%2F` is refused so that an encoded slash can never become
/// a path separator after routing.
fn percent_decode(raw: &str) -> Result<String, Error> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            let Some(d) = hex.filter(|_| bytes[i + 1] != b'+' && bytes[i + 1] != b'-') else {
                return Err(bad(format!("invalid percent-encoding at byte {i}")));
            };
            if d == b'/' {
                return Err(bad("encoded slash (%2F) in path".into()));
            }
            if !d.is_ascii_graphic() {
                return Err(bad(format!(
                    "percent-encoded byte 0x{d:02X} is not a visible ASCII character"
                )));
            }
            out.push(d);
            i += 3;
        } else {
            if !b.is_ascii_graphic() {
                return Err(bad(format!(
                    "byte 0x{b:02X} at {i} is not a visible ASCII character"
                )));
            }
            out.push(b);
            i += 1;
        }
    }
    // Every byte is visible ASCII, so this cannot fail.
    String::from_utf8(out).map_err(|_| bad("not UTF-8".into()))
}

fn parse_info_version(escaped: &str) -> Result<InfoVersion, Error> {
    let v = escape::unescape(escaped)?;
    if let Ok(version) = Version::parse(&v) {
        return Ok(InfoVersion::Canonical(version));
    }
    let reject = |reason: String| Error::InvalidVersion {
        version: excerpt(&v),
        reason,
    };
    if v.len() > MAX_VERSION_LEN {
        return Err(reject(format!("longer than {MAX_VERSION_LEN} bytes")));
    }
    if let Some(c) = v
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
    {
        return Err(reject(format!("invalid char {c:?} in version query")));
    }
    // A leading dash could be taken for an option by whatever resolves the query.
    if v.starts_with('-') {
        return Err(reject("version query starts with '-'".into()));
    }
    module::check_elem(&v, Kind::File).map_err(reject)?;
    Ok(InfoVersion::Query(v))
}

fn parse_sumdb(rest: &str) -> Result<ProxyRequest, Error> {
    let Some((name, path)) = rest.split_once('/') else {
        return Err(bad(
            "sumdb request without a path after the database name".into()
        ));
    };
    Ok(ProxyRequest::Sumdb {
        name: SumdbName::parse(name)?,
        path: SumdbPath::parse(path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str) -> ModulePath {
        ModulePath::parse(p).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parses_every_endpoint() {
        let cases: Vec<(&str, ProxyRequest)> = vec![
            (
                "golang.org/x/text/@v/list",
                ProxyRequest::List {
                    module: m("golang.org/x/text"),
                },
            ),
            (
                "golang.org/x/text/@latest",
                ProxyRequest::Latest {
                    module: m("golang.org/x/text"),
                },
            ),
            (
                "golang.org/x/text/@v/v0.3.7.info",
                ProxyRequest::Info {
                    module: m("golang.org/x/text"),
                    version: InfoVersion::Canonical(v("v0.3.7")),
                },
            ),
            (
                "golang.org/x/text/@v/v0.3.7.mod",
                ProxyRequest::Mod {
                    module: m("golang.org/x/text"),
                    version: v("v0.3.7"),
                },
            ),
            (
                "golang.org/x/text/@v/v0.3.7.zip",
                ProxyRequest::Zip {
                    module: m("golang.org/x/text"),
                    version: v("v0.3.7"),
                },
            ),
            (
                "github.com/%21azure/go-autorest/@v/v1.0.0-%21r%21c1.zip",
                ProxyRequest::Zip {
                    module: m("github.com/Azure/go-autorest"),
                    version: v("v1.0.0-RC1"),
                },
            ),
            (
                "github.com/!azure/go-autorest/@v/list",
                ProxyRequest::List {
                    module: m("github.com/Azure/go-autorest"),
                },
            ),
            (
                "github.com/pkg/errors/@v/v2.0.0+incompatible.info",
                ProxyRequest::Info {
                    module: m("github.com/pkg/errors"),
                    version: InfoVersion::Canonical(v("v2.0.0+incompatible")),
                },
            ),
            (
                "example.com/m/@v/v0.0.0-20191109021931-daa7c04131f5.mod",
                ProxyRequest::Mod {
                    module: m("example.com/m"),
                    version: v("v0.0.0-20191109021931-daa7c04131f5"),
                },
            ),
            (
                "example.com/m/v2/@v/master.info",
                ProxyRequest::Info {
                    module: m("example.com/m/v2"),
                    version: InfoVersion::Query("master".into()),
                },
            ),
            (
                "example.com/m/@v/v1.2.info",
                ProxyRequest::Info {
                    module: m("example.com/m"),
                    version: InfoVersion::Query("v1.2".into()),
                },
            ),
            (
                "example.com/m/@v/v1.2.3+meta.info",
                ProxyRequest::Info {
                    module: m("example.com/m"),
                    version: InfoVersion::Query("v1.2.3+meta".into()),
                },
            ),
            (
                "example.com/m/@v/%21feature-%21x_1.info",
                ProxyRequest::Info {
                    module: m("example.com/m"),
                    version: InfoVersion::Query("Feature-X_1".into()),
                },
            ),
            (
                "example.com/m/@v/daa7c04131f5.info",
                ProxyRequest::Info {
                    module: m("example.com/m"),
                    version: InfoVersion::Query("daa7c04131f5".into()),
                },
            ),
            (
                "gopkg.in/yaml.v2/@v/list",
                ProxyRequest::List {
                    module: m("gopkg.in/yaml.v2"),
                },
            ),
            (
                "sumdb/sum.golang.org/supported",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("supported").unwrap(),
                },
            ),
            (
                "sumdb/sum.golang.org/latest",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("latest").unwrap(),
                },
            ),
            (
                "sumdb/sum.golang.org/lookup/github.com/!azure/go-autorest@v1.0.0",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("lookup/github.com/!azure/go-autorest@v1.0.0").unwrap(),
                },
            ),
            (
                "sumdb/sum.golang.org/lookup/github.com/%21azure/go-autorest@v1.0.0",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("lookup/github.com/!azure/go-autorest@v1.0.0").unwrap(),
                },
            ),
            (
                "sumdb/sum.golang.org/tile/8/0/x004/822.p/135",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("tile/8/0/x004/822.p/135").unwrap(),
                },
            ),
            (
                "sumdb/sum.golang.org/tile/8/data/000",
                ProxyRequest::Sumdb {
                    name: SumdbName::parse("sum.golang.org").unwrap(),
                    path: SumdbPath::parse("tile/8/data/000").unwrap(),
                },
            ),
        ];
        for (raw, want) in cases {
            let got = ProxyRequest::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(got, want, "{raw}");
        }
    }

    #[test]
    fn rejects_bad_paths() {
        let long_module = format!("example.com/{}/@v/list", "a".repeat(10 * 1024));
        let long_version = format!("example.com/m/@v/v1.0.0-{}.info", "a".repeat(300));
        let long_query = format!("example.com/m/@v/{}.info", "a".repeat(300));
        let cases: Vec<&str> = vec![
            // Shapes.
            "",
            "/",
            "/golang.org/x/text/@v/list",
            "golang.org/x/text",
            "golang.org/x/text/@v/",
            "golang.org/x/text/@v/list/",
            "golang.org/x/text/@v/v1.0.0",
            "golang.org/x/text/@v/.info",
            "golang.org/x/text/@v/v1.0.0.txt",
            "golang.org/x/text/@v/v1.0.0/x.info",
            "golang.org/x/text/@latest/",
            "golang.org/x/text/@v/v1.0.0.zip?x=1",
            "/@v/list",
            "@latest",
            // Traversal, literal and encoded.
            "../etc/passwd/@v/list",
            "golang.org/../x/text/@v/list",
            "golang.org/x/%2e%2e/@v/list",
            "golang.org/x/%2E%2E/@v/v1.0.0.zip",
            "golang.org/x/text/@v/..%2fetc.info",
            "golang.org/x/text/@v/%2e%2e.info",
            "golang.org/x/text/@v/...info",
            "golang.org%2fx%2ftext/@v/list",
            "golang.org/x//text/@v/list",
            "./golang.org/x/text/@v/list",
            // Encoding problems.
            "golang.org/x/text/@v/v1.0.0%00.info",
            "golang.org/x/text%00/@v/list",
            "golang.org/x/text/@v/v1.0.0%0a.info",
            "golang.org/x/text/@v/v1.0.0%.info",
            "golang.org/x/text/@v/v1.0.0%2.info",
            "golang.org/x/text/@v/v1.0.0%zz.info",
            "golang.org/x/text/@v/v1.0.0%+1.info",
            "golang.org/x/t\u{e9}xt/@v/list",
            "golang.org/x/t%C3%A9xt/@v/list",
            "golang.org/x/te xt/@v/list",
            "golang.org/x/te%20xt/@v/list",
            "golang.org/x/text/@v/v1.0.0\t.info",
            // Case and `!` escaping.
            "github.com/Azure/go-autorest/@v/list",
            "github.com/!Azure/go-autorest/@v/list",
            "github.com/!!azure/go-autorest/@v/list",
            "github.com/azure!/go-autorest/@v/list",
            "github.com/azure/go-autorest!/@v/list",
            "github.com/%21%21azure/x/@v/list",
            "example.com/m/@v/v1.0.0-RC1.zip",
            "example.com/m/@v/Master.info",
            "example.com/m/@v/!.info",
            // Invalid module paths and versions.
            "example/m/@v/list",
            "example.com/m/v1/@v/list",
            "-example.com/m/@v/list",
            "example.com/m/@v/v1.2.zip",
            "example.com/m/@v/v1.2.3+meta.mod",
            "example.com/m/@v/master.zip",
            "example.com/m/@v/latest.mod",
            "example.com/m/@v/-x.info",
            "example.com/m/@v/a*b.info",
            "example.com/m/@v/a:b.info",
            "example.com/m/@v/con.info",
            "example.com/m/@v/x..info",
            long_module.as_str(),
            long_version.as_str(),
            long_query.as_str(),
            // Sumdb.
            "sumdb/sum.golang.org",
            "sumdb/sum.golang.org/",
            "sumdb/sum.golang.org/unknown",
            "sumdb/sum.golang.org/../x",
            "sumdb/sum.golang.org/tile/../../x",
            "sumdb/sum.golang.org/tile/8",
            "sumdb/sum.golang.org/lookup/github.com/x/y",
            "sumdb/sum.golang.org/lookup/github.com/Azure/x@v1.0.0",
            "sumdb/sum.golang.org/lookup/github.com/x/y@v1/0",
            "sumdb/sum.golang.org/lookup/../x@v1.0.0",
            "sumdb/Sum.golang.org/latest",
            "sumdb/localhost/latest",
            "sumdb/.sum.golang.org/latest",
            "sumdb/sum..golang.org/latest",
            "sumdb/sum.golang.org:443/latest",
            "sumdb/sum.golang.org/latest%2f",
            "sumdb/sum.golang.org/tile//8/0/000",
        ];
        for raw in cases {
            let r = ProxyRequest::parse(raw);
            assert!(r.is_err(), "{raw:?} should be rejected, got {r:?}");
            let msg = r.unwrap_err().to_string();
            assert!(msg.len() < 400 && !msg.contains('\n'), "{raw:?}: {msg}");
        }
    }

    #[test]
    fn error_kinds() {
        assert!(matches!(
            ProxyRequest::parse("golang.org/x/text/@v/v1.0.0.txt"),
            Err(Error::InvalidRequest { .. })
        ));
        assert!(matches!(
            ProxyRequest::parse("golang.org/x/%2e%2e/@v/list"),
            Err(Error::InvalidPath { .. })
        ));
        assert!(matches!(
            ProxyRequest::parse("github.com/Azure/x/@v/list"),
            Err(Error::InvalidEscape { .. })
        ));
        assert!(matches!(
            ProxyRequest::parse("example.com/m/@v/v1.2.zip"),
            Err(Error::InvalidVersion { .. })
        ));
        let too_long = "a".repeat(MAX_REQUEST_PATH + 1);
        let err = ProxyRequest::parse(&too_long).unwrap_err();
        assert!(matches!(err, Error::InvalidRequest { .. }), "{err:?}");
        assert!(err.to_string().len() < 100, "{err}");
    }

    #[test]
    fn module_accessor() {
        let r = ProxyRequest::parse("golang.org/x/text/@v/list").unwrap();
        assert_eq!(r.module().unwrap().as_str(), "golang.org/x/text");
        let r = ProxyRequest::parse("sumdb/sum.golang.org/latest").unwrap();
        assert!(r.module().is_none());
    }

    #[test]
    fn plus_is_literal_and_percent_encoded_plus_decodes() {
        let want = ProxyRequest::Zip {
            module: m("github.com/pkg/errors"),
            version: v("v2.0.0+incompatible"),
        };
        assert_eq!(
            ProxyRequest::parse("github.com/pkg/errors/@v/v2.0.0+incompatible.zip").unwrap(),
            want
        );
        assert_eq!(
            ProxyRequest::parse("github.com/pkg/errors/@v/v2.0.0%2Bincompatible.zip").unwrap(),
            want
        );
    }
}
