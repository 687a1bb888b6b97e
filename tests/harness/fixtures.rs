//! Fixture modules written in GOPROXY directory layout, and the `example.com/app` project that
//! imports a package from each of them.
//!
//! The zips are built here, entry by entry, the way `go` expects them (every entry under
//! `<module>@<version>/`, no directory entries, deflate), so that a test can compare the `h1:`
//! hashes the go command computes with the hashes of these exact bytes.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

/// The timestamp written into `.info` files and zip entries of release versions.
const RELEASE_TIME: &str = "2024-01-02T03:04:05Z";

/// The pseudo-version of `example.com/pseudo` (its only version, absent from its list).
pub const PSEUDO_VERSION: &str = "v0.0.0-20240102030405-abcdefabcdef";

/// Default size of the incompressible file in `example.com/big`, in MiB (`E2E_BIG_MIB` overrides).
pub const DEFAULT_BIG_MIB: usize = 64;

/// The name of the large file inside `example.com/big@v1.0.0`.
pub const BIG_FILE: &str = "data.bin";

/// One version of one fixture module.
#[derive(Debug, Clone)]
pub struct ModuleVersion {
    /// The module path, original case.
    pub module: String,
    /// The canonical version.
    pub version: String,
    /// Whether the version appears in the module's `@v/list`.
    pub listed: bool,
    /// The `go.mod` shipped in the zip, if any.
    pub go_mod: Option<String>,
    /// The non-go.mod files of the zip, relative to the module root.
    pub files: Vec<(String, FileContent)>,
}

/// The content of a file in a fixture zip.
#[derive(Debug, Clone)]
pub enum FileContent {
    /// Literal text.
    Text(String),
    /// `len` pseudo-random (incompressible) bytes from a fixed seed.
    Random {
        /// Size in bytes.
        len: usize,
        /// RNG seed, so that the bytes are the same on every run.
        seed: u64,
    },
}

impl ModuleVersion {
    /// The `.mod` bytes: the go.mod, or exactly `module <path>\n` when the zip has none.
    pub fn mod_bytes(&self) -> Vec<u8> {
        match &self.go_mod {
            Some(text) => text.clone().into_bytes(),
            None => format!("module {}\n", self.module).into_bytes(),
        }
    }

    /// The `.info` JSON.
    pub fn info_json(&self) -> String {
        let time = if self.version == PSEUDO_VERSION {
            // A pseudo-version's time is the one encoded in it.
            "2024-01-02T03:04:05Z"
        } else {
            RELEASE_TIME
        };
        serde_json::json!({ "Version": self.version, "Time": time }).to_string()
    }

    /// The zip entry prefix `<module>@<version>/`.
    pub fn prefix(&self) -> String {
        format!("{}@{}/", self.module, self.version)
    }

    /// The URL path of one artifact (`ext` is `info`, `mod` or `zip`), as a client sends it
    /// after `!`-escaping (the `!` is literal here; go percent-encodes it as `%21`).
    pub fn url_path(&self, ext: &str) -> String {
        artifact_path(&self.module, &self.version, ext)
    }
}

/// The escaped URL path `/<module>/@v/<version>.<ext>`.
pub fn artifact_path(module: &str, version: &str, ext: &str) -> String {
    format!("/{}/@v/{}.{}", escape(module), escape(version), ext)
}

/// The storage-relative path `<module>/@v/<version>.<ext>` (GOPROXY layout, escaped).
pub fn storage_rel_path(module: &str, version: &str, ext: &str) -> String {
    artifact_path(module, version, ext)[1..].to_string()
}

/// Case-escapes a module path or version: every upper-case letter becomes `!` + lower case.
/// Written here independently of `gomod::escape` so that the tests do not trust the code under
/// test to build their expectations.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn go_file(package: &str, body: &str) -> (String, FileContent) {
    (
        format!("{package}.go"),
        FileContent::Text(format!("package {package}\n\n{body}\n")),
    )
}

fn hello_func(id: &str) -> String {
    format!(
        "// Hello identifies the module version that was compiled in.\nfunc Hello() string {{ return \"{id}\" }}"
    )
}

/// The fixture module versions (without the large file's bytes materialized).
pub fn module_versions(big_mib: usize) -> Vec<ModuleVersion> {
    let simple =
        |module: &str, version: &str, package: &str, go_mod: Option<String>| ModuleVersion {
            module: module.into(),
            version: version.into(),
            listed: true,
            go_mod,
            files: vec![
                go_file(package, &hello_func(&format!("{module}@{version}"))),
                (
                    "README.md".into(),
                    FileContent::Text(format!("# {module}\n\nFixture module.\n")),
                ),
            ],
        };
    let mut out = vec![
        // Upper-case path elements: escaped as example.com/!upper/!case.
        simple(
            "example.com/Upper/Case",
            "v1.0.0",
            "casepkg",
            Some("module example.com/Upper/Case\n\ngo 1.21\n".into()),
        ),
        // example.com/lib v1.1.0 is unpruned (go 1.16), so the go command loads the go.mod of its
        // requirement example.com/dep v1.0.0 for the module graph, but never that version's zip
        // because the project selects dep v1.1.0.
        simple(
            "example.com/lib",
            "v1.0.0",
            "lib",
            Some("module example.com/lib\n\ngo 1.16\n".into()),
        ),
        simple(
            "example.com/lib",
            "v1.1.0",
            "lib",
            Some("module example.com/lib\n\ngo 1.16\n\nrequire example.com/dep v1.0.0\n".into()),
        ),
        simple(
            "example.com/lib",
            "v1.2.0",
            "lib",
            Some("module example.com/lib\n\ngo 1.21\n".into()),
        ),
        simple(
            "example.com/lib/v2",
            "v2.0.0",
            "lib",
            Some("module example.com/lib/v2\n\ngo 1.21\n".into()),
        ),
        simple(
            "example.com/dep",
            "v1.0.0",
            "dep",
            Some("module example.com/dep\n\ngo 1.16\n".into()),
        ),
        // dep v1.1.0 requires lib v1.0.0: another version needed only for its go.mod.
        simple(
            "example.com/dep",
            "v1.1.0",
            "dep",
            Some("module example.com/dep\n\ngo 1.16\n\nrequire example.com/lib v1.0.0\n".into()),
        ),
        // +incompatible: a v2 tag without a go.mod (the .mod is synthesized).
        simple(
            "example.com/old",
            "v1.0.0",
            "old",
            Some("module example.com/old\n\ngo 1.16\n".into()),
        ),
        simple("example.com/old", "v2.0.0+incompatible", "old", None),
    ];

    // Only a pseudo-version, which is never listed.
    let mut pseudo = simple(
        "example.com/pseudo",
        PSEUDO_VERSION,
        "pseudo",
        Some("module example.com/pseudo\n\ngo 1.21\n".into()),
    );
    pseudo.listed = false;
    out.push(pseudo);

    let mut big = simple(
        "example.com/big",
        "v1.0.0",
        "big",
        Some("module example.com/big\n\ngo 1.21\n".into()),
    );
    big.files.push((
        BIG_FILE.into(),
        FileContent::Random {
            len: big_mib * 1024 * 1024,
            seed: 0x0b16,
        },
    ));
    out.push(big);
    out
}

/// A generated fixture tree in GOPROXY directory layout.
#[derive(Debug)]
pub struct Fixtures {
    root: PathBuf,
    versions: Vec<ModuleVersion>,
}

impl Fixtures {
    /// Writes every fixture module into `root` (`<escaped module>/@v/{list,<v>.info,.mod,.zip}`).
    pub fn generate(root: &Path, big_mib: usize) -> std::io::Result<Fixtures> {
        let versions = module_versions(big_mib);
        let mut lists: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for mv in &versions {
            let dir = root.join(escape(&mv.module)).join("@v");
            fs::create_dir_all(&dir)?;
            let base = dir.join(escape(&mv.version));
            fs::write(with_ext(&base, "info"), mv.info_json())?;
            fs::write(with_ext(&base, "mod"), mv.mod_bytes())?;
            let zip_file = fs::File::create(with_ext(&base, "zip"))?;
            write_zip(mv, std::io::BufWriter::new(zip_file))?;
            let list = lists.entry(mv.module.clone()).or_default();
            if mv.listed {
                list.push(mv.version.clone());
            }
        }
        for (module, list) in lists {
            let mut text = list.join("\n");
            if !text.is_empty() {
                text.push('\n');
            }
            fs::write(root.join(escape(&module)).join("@v").join("list"), text)?;
        }
        Ok(Fixtures {
            root: root.to_path_buf(),
            versions,
        })
    }

    /// The process-wide fixture set, generated once into a temp dir removed at exit.
    /// Tests only read it, so they can share it; each test still gets its own upstream server.
    pub fn shared() -> &'static Fixtures {
        static SHARED: OnceLock<Fixtures> = OnceLock::new();
        SHARED.get_or_init(|| {
            let big_mib = std::env::var("E2E_BIG_MIB")
                .ok()
                .map(|v| v.parse().expect("E2E_BIG_MIB must be a number of MiB"))
                .unwrap_or(DEFAULT_BIG_MIB);
            let dir = tempfile::Builder::new()
                .prefix("gomodproxy-e2e-fixtures-")
                .tempdir()
                .expect("create fixture dir")
                .keep();
            crate::util::remove_at_exit(dir.clone());
            Fixtures::generate(&dir, big_mib).expect("generate fixtures")
        })
    }

    /// The GOPROXY-layout root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every fixture module version.
    pub fn versions(&self) -> &[ModuleVersion] {
        &self.versions
    }

    /// One module version; panics if it is not a fixture.
    pub fn get(&self, module: &str, version: &str) -> &ModuleVersion {
        self.versions
            .iter()
            .find(|m| m.module == module && m.version == version)
            .unwrap_or_else(|| panic!("no fixture {module}@{version}"))
    }

    /// The on-disk path of one artifact.
    pub fn file(&self, module: &str, version: &str, ext: &str) -> PathBuf {
        self.root.join(storage_rel_path(module, version, ext))
    }

    /// The zip bytes of one module version.
    pub fn zip_bytes(&self, module: &str, version: &str) -> Vec<u8> {
        fs::read(self.file(module, version, "zip")).expect("read fixture zip")
    }

    /// The `.mod` bytes of one module version.
    pub fn mod_bytes(&self, module: &str, version: &str) -> Vec<u8> {
        fs::read(self.file(module, version, "mod")).expect("read fixture mod")
    }
}

fn with_ext(base: &Path, ext: &str) -> PathBuf {
    // Versions contain dots, so Path::with_extension would cut them; append instead.
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

fn zip_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::from_date_and_time(2024, 1, 2, 3, 4, 5).expect("date"))
        .large_file(false)
}

/// Writes the module zip of `mv`: files sorted, no directory entries, deflate.
pub fn write_zip<W: Write + Seek>(mv: &ModuleVersion, out: W) -> std::io::Result<()> {
    let mut files: Vec<(String, &FileContent)> =
        mv.files.iter().map(|(n, c)| (n.clone(), c)).collect();
    let go_mod_content = mv.go_mod.clone().map(FileContent::Text);
    if let Some(c) = &go_mod_content {
        files.push(("go.mod".into(), c));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut zip = zip::ZipWriter::new(out);
    for (name, content) in files {
        let big = matches!(content, FileContent::Random { len, .. } if *len >= (1 << 31));
        zip.start_file(
            format!("{}{}", mv.prefix(), name),
            zip_options().large_file(big),
        )
        .map_err(std::io::Error::other)?;
        match content {
            FileContent::Text(text) => zip.write_all(text.as_bytes())?,
            FileContent::Random { len, seed } => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(*seed);
                let mut chunk = vec![0u8; 1 << 20];
                let mut left = *len;
                while left > 0 {
                    let n = left.min(chunk.len());
                    rng.fill_bytes(&mut chunk[..n]);
                    zip.write_all(&chunk[..n])?;
                    left -= n;
                }
            }
        }
    }
    zip.finish().map_err(std::io::Error::other)?.flush()
}

/// A valid module zip for `module@version` whose single extra file is `len` incompressible
/// bytes: larger than a small size cap, otherwise acceptable.
pub fn oversize_zip(module: &str, version: &str, len: usize) -> Vec<u8> {
    let mv = ModuleVersion {
        module: module.into(),
        version: version.into(),
        listed: true,
        go_mod: Some(format!("module {module}\n")),
        files: vec![("filler.bin".into(), FileContent::Random { len, seed: 7 })],
    };
    let mut buf = Cursor::new(Vec::new());
    write_zip(&mv, &mut buf).expect("build oversize zip");
    buf.into_inner()
}

/// Byte offsets inside the compressed data of the largest entry of `zip_bytes`: flipping one
/// of them breaks that entry's deflate stream or CRC while leaving every header intact, so only
/// a reader that decompresses and checks the data notices.
pub fn data_offsets(zip_bytes: &[u8]) -> Vec<usize> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).expect("parse zip");
    let mut best: Option<(u64, u64)> = None;
    for i in 0..archive.len() {
        let f = archive.by_index_raw(i).expect("entry");
        let start = f.data_start();
        let size = f.compressed_size();
        if best.is_none_or(|(_, s)| size > s) {
            best = Some((start, size));
        }
    }
    let (start, size) = best.expect("zip has entries");
    assert!(size >= 4, "entry too small to corrupt");
    vec![(start + size / 2) as usize, (start + size / 2 + 1) as usize]
}

/// The dirhash `h1:` of a set of (name, content) files, computed here independently of the
/// `gomod` crate: sha256 per file, lines `hex  name\n` sorted by name, sha256, base64.
pub fn h1_of_files<'a>(files: impl IntoIterator<Item = (String, &'a [u8])>) -> String {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, content)| {
            assert!(!name.contains('\n'), "file name with newline");
            let mut h = Sha256::new();
            h.update(content);
            (name.clone(), format!("{:x}  {}\n", h.finalize(), name))
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let mut summary = Sha256::new();
    for (_, line) in &lines {
        summary.update(line.as_bytes());
    }
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    )
}

/// The `h1:` of a module zip (every entry, full names).
pub fn h1_zip(zip_bytes: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).expect("parse zip");
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).expect("entry");
        let mut content = Vec::new();
        f.read_to_end(&mut content).expect("read entry");
        files.push((f.name().to_string(), content));
    }
    h1_of_files(files.iter().map(|(n, c)| (n.clone(), c.as_slice())))
}

/// The `h1:` of a go.mod (one file named `go.mod`), as in `<mod> <ver>/go.mod h1:…` lines.
pub fn h1_go_mod(bytes: &[u8]) -> String {
    h1_of_files([("go.mod".to_string(), bytes)])
}

/// SHA-256 of bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// What the fixture app prints when built against the fixture modules: one line per import.
pub const APP_EXPECTED_OUTPUT: &[&str] = &[
    "example.com/Upper/Case@v1.0.0",
    "example.com/lib@v1.1.0",
    "example.com/lib/v2@v2.0.0",
    "example.com/dep@v1.1.0",
    "example.com/old@v2.0.0+incompatible",
    "example.com/pseudo@v0.0.0-20240102030405-abcdefabcdef",
    "example.com/big@v1.0.0",
];

/// Writes the `example.com/app` project (go.mod + main.go) into `dir`. It requires a package
/// from every fixture module; `println` keeps the build free of heavy standard packages.
pub fn write_app(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("go.mod"),
        format!(
            "module example.com/app\n\ngo 1.21\n\nrequire (\n\
             \texample.com/Upper/Case v1.0.0\n\
             \texample.com/big v1.0.0\n\
             \texample.com/dep v1.1.0\n\
             \texample.com/lib v1.1.0\n\
             \texample.com/lib/v2 v2.0.0\n\
             \texample.com/old v2.0.0+incompatible\n\
             \texample.com/pseudo {PSEUDO_VERSION}\n\
             )\n"
        ),
    )?;
    fs::write(
        dir.join("main.go"),
        "package main\n\nimport (\n\
         \tcasepkg \"example.com/Upper/Case\"\n\
         \t\"example.com/big\"\n\
         \t\"example.com/dep\"\n\
         \t\"example.com/lib\"\n\
         \tlibv2 \"example.com/lib/v2\"\n\
         \t\"example.com/old\"\n\
         \t\"example.com/pseudo\"\n\
         )\n\n\
         func main() {\n\
         \tprintln(casepkg.Hello())\n\
         \tprintln(lib.Hello())\n\
         \tprintln(libv2.Hello())\n\
         \tprintln(dep.Hello())\n\
         \tprintln(old.Hello())\n\
         \tprintln(pseudo.Hello())\n\
         \tprintln(big.Hello())\n\
         }\n",
    )
}

/// Parses go.sum text into `(module, version, h1)` for zip lines and for `/go.mod` lines.
pub fn parse_go_sum(text: &str) -> GoSum {
    let mut sum = GoSum::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "bad go.sum line {line:?}");
        let (module, ver, hash) = (fields[0].to_string(), fields[1], fields[2].to_string());
        match ver.strip_suffix("/go.mod") {
            Some(v) => sum.go_mod.push((module, v.to_string(), hash)),
            None => sum.zip.push((module, ver.to_string(), hash)),
        }
    }
    sum
}

/// The lines of a go.sum file.
#[derive(Debug, Default, Clone)]
pub struct GoSum {
    /// `(module, version, h1)` of module zips.
    pub zip: Vec<(String, String, String)>,
    /// `(module, version, h1)` of go.mod files.
    pub go_mod: Vec<(String, String, String)>,
}
