//! The `/lookup/<module>@<version>` answer: `<id>\n<record text>\n<signed tree note>`.

use super::SumdbError;

/// A parsed lookup answer. The record (`id` and `text`) is immutable; the signed tree note
/// attached to it may be any signed tree that contains the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The record's index in the log.
    pub id: i64,
    /// The record text: go.sum lines, each ending in a newline, no blank lines.
    pub text: String,
    /// The signed tree note that followed (unverified here).
    pub note: Vec<u8>,
}

/// Whether `text` is a record's text: UTF-8, no control characters but newlines, no blank
/// line, ending in a newline.
fn is_valid_record_text(text: &str) -> bool {
    text.ends_with('\n')
        && !text.contains("\n\n")
        && !text.starts_with('\n')
        && !text.chars().any(|c| c < ' ' && c != '\n')
}

impl Lookup {
    /// Splits a lookup answer into record and note (as Go's `tlog.ParseRecord`).
    pub fn parse(body: &[u8]) -> Result<Lookup, SumdbError> {
        let bad = |why: &str| SumdbError::new(format!("malformed lookup answer: {why}"));
        let nl = body
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("no record id line"))?;
        let id_text = std::str::from_utf8(&body[..nl]).map_err(|_| bad("record id"))?;
        let id: i64 = id_text.parse().map_err(|_| bad("record id"))?;
        if id < 0 || id.to_string() != id_text {
            return Err(bad("record id"));
        }
        let rest = &body[nl + 1..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or_else(|| bad("no blank line after the record"))?;
        let text = std::str::from_utf8(&rest[..end + 1]).map_err(|_| bad("record is not UTF-8"))?;
        if !is_valid_record_text(text) {
            return Err(bad("invalid record text"));
        }
        Ok(Lookup {
            id,
            text: text.to_string(),
            note: rest[end + 2..].to_vec(),
        })
    }

    /// The answer with `note` (a signed tree note) attached to this record.
    pub fn format_with_note(&self, note: &[u8]) -> Vec<u8> {
        let mut out = format!("{}\n{}\n", self.id, self.text).into_bytes();
        out.extend_from_slice(note);
        out
    }

    /// The record's go.sum lines for `module` (unescaped) at `version`.
    pub fn record(&self, module: &str, version: &str) -> Record {
        Record::from_text(&self.text, module, version)
    }
}

/// The hashes a record holds for one module version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `h1:` of the zip (`<module> <version> h1:…`).
    pub zip: Option<String>,
    /// `h1:` of the go.mod (`<module> <version>/go.mod h1:…`).
    pub go_mod: Option<String>,
}

impl Record {
    /// Reads the go.sum lines of `module` at `version` from a record's text.
    pub fn from_text(text: &str, module: &str, version: &str) -> Record {
        let mut record = Record::default();
        for line in text.lines() {
            let mut fields = line.split(' ');
            let (Some(m), Some(v), Some(h), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if m != module {
                continue;
            }
            if v == version {
                record.zip = Some(h.to_string());
            } else if v.strip_suffix("/go.mod") == Some(version) {
                record.go_mod = Some(h.to_string());
            }
        }
        record
    }

    /// The record text the database stores for these hashes.
    pub fn to_text(&self, module: &str, version: &str) -> String {
        let mut text = String::new();
        if let Some(h) = &self.zip {
            text.push_str(&format!("{module} {version} {h}\n"));
        }
        if let Some(h) = &self.go_mod {
            text.push_str(&format!("{module} {version}/go.mod {h}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reformats() {
        let body = b"42\ngolang.org/x/text v0.3.7 h1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=\ngolang.org/x/text v0.3.7/go.mod h1:u+2+/6zg+i71rQMx5EYifcz6MCKuco9NR6JIITiCfzQ=\n\ngo.sum database tree\n43\nAAAA\n\n\xe2\x80\x94 x y\n";
        let l = Lookup::parse(body).unwrap();
        assert_eq!(l.id, 42);
        assert!(l.note.starts_with(b"go.sum database tree\n43\n"));
        let r = l.record("golang.org/x/text", "v0.3.7");
        assert_eq!(
            r.zip.as_deref(),
            Some("h1:olpwvP2KacW1ZWvsR7uQhoyTYvKAupfQrRGBFM352Gk=")
        );
        assert_eq!(
            r.go_mod.as_deref(),
            Some("h1:u+2+/6zg+i71rQMx5EYifcz6MCKuco9NR6JIITiCfzQ=")
        );
        assert_eq!(r.to_text("golang.org/x/text", "v0.3.7"), l.text);
        assert_eq!(l.format_with_note(&l.note), body.to_vec());
        assert_eq!(l.record("golang.org/x/text", "v0.3.8"), Record::default());
        for bad in [
            &b""[..],
            b"x\n",
            b"1\nno blank line\n",
            b"01\na b c\n\nnote",
            b"1\n\n\nnote",
        ] {
            assert!(
                Lookup::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
