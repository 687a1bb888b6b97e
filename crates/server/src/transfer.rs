//! `gomodproxy export`, `import` and `verify`: the command line around [`gomodproxy_bundle`].
//!
//! Each opens the configured store directly (the backend alone: no memory cache in front) and
//! checks it. Progress goes to stderr — a bar on a terminal, a line per phase otherwise — the
//! summary to stdout (to stderr when the bundle itself goes to stdout), and the refused objects
//! or problems to stderr. The functions return `Ok(false)` when something was refused, missing
//! or wrong (already listed), which the binary turns into exit status 1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use gomod::ZipLimits;
use gomod::gosum::GoSum;
use gomodproxy_bundle::{
    ExportOptions, ImportOptions, ImportSource, Problem, Progress, Verifiers, VerifyOptions,
};
use gomodproxy_storage::Storage;
use indicatif::ProgressBar;

use crate::config::Config;
use crate::prewarm::human_bytes;
use crate::terminal::Terminal;

/// What `gomodproxy export` was asked for.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The bundle file, `-` for standard output.
    pub file: PathBuf,
    /// Module patterns.
    pub modules: Vec<String>,
    /// go.sum files.
    pub go_sums: Vec<PathBuf>,
    /// Include the checksum database.
    pub sumdb: bool,
    /// The earlier bundle (or its side manifest) this one follows.
    pub since: Option<PathBuf>,
}

/// Opens the configured store and probes it.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let storage = crate::backend::open_backend(&config.storage)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e} (a running server may hold this store: stop it, or use another backend)"
            )
        })?;
    storage.check().await.with_context(|| {
        format!(
            "storage check failed ({})",
            crate::backend::describe(&config.storage)
        )
    })?;
    Ok(storage)
}

fn zip_limits(config: &Config) -> ZipLimits {
    ZipLimits {
        max_zip_size: config.fetch.max_zip_size,
        ..ZipLimits::default()
    }
}

fn verifiers(config: &Config) -> anyhow::Result<Verifiers> {
    let specs: Vec<String> = config
        .sumdb
        .databases
        .iter()
        .map(|s| s.as_spec().to_string())
        .collect();
    Verifiers::parse(&specs).map_err(|e| anyhow::anyhow!("sumdb.databases: {e}"))
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || bytes == 0 {
        return String::new();
    }
    format!(", {}/s", human_bytes((bytes as f64 / secs) as u64))
}

/// Runs `gomodproxy export`; `Ok(false)` when a go.sum names objects the store lacks, or a
/// tree head clients may remember cannot be proven against the bundle's (the bundle is written
/// anyway).
pub async fn export(request: ExportRequest, config: Config) -> anyhow::Result<bool> {
    let to_stdout = request.file == Path::new("-");
    let mut go_sums = Vec::new();
    for path in &request.go_sums {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let name = path.display().to_string();
        let sum = GoSum::parse(&name, &data).map_err(|e| anyhow::anyhow!("{e}"))?;
        go_sums.push((name, sum));
    }
    let since = request
        .since
        .as_deref()
        .map(gomodproxy_bundle::read_since)
        .transpose()
        .context("--since")?;
    let storage = open_store(&config).await?;
    let options = ExportOptions {
        modules: request.modules.clone(),
        go_sums,
        sumdb: request.sumdb,
        source: crate::backend::describe(&config.storage),
        since,
        name: request.file.display().to_string(),
        ..ExportOptions::default()
    };
    let progress = Bar::new("export");
    let report = if to_stdout {
        gomodproxy_bundle::export(storage.as_ref(), &options, std::io::stdout(), &progress)
            .await
            .map(|(_, r)| r)
    } else {
        gomodproxy_bundle::export_to_path(storage.as_ref(), &options, &request.file, &progress)
            .await
    };
    progress.finish();
    let report = report.context("export failed")?;
    let summary = format!(
        "export: {} objects ({}) written to {} ({} compressed) in {:.1?}{}",
        report.objects,
        human_bytes(report.bytes),
        request.file.display(),
        human_bytes(report.written),
        report.elapsed,
        rate(report.bytes, report.elapsed),
    );
    let mut lines = vec![summary];
    if let Some(m) = &report.manifest {
        match &m.follows {
            Some(f) => lines.push(format!(
                "export: bundle {} follows {}; {} objects left out (the bundle it follows has them)",
                m.id,
                f.describe(),
                report.unchanged
            )),
            None => lines.push(format!("export: bundle {} (a full bundle)", m.id)),
        }
    }
    if !to_stdout {
        lines.push(format!(
            "export: manifest for the next --since written to {}",
            gomodproxy_bundle::side_manifest_path(&request.file).display()
        ));
    }
    for line in lines {
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    for path in &report.vanished {
        eprintln!("export: note: {path} was deleted from the store during the export");
    }
    for p in &report.missing {
        eprintln!("export: MISSING {p}");
    }
    Ok(report.missing.is_empty())
}

/// Runs `gomodproxy import`; `Ok(false)` when something was refused.
pub async fn import(source: &Path, config: Config) -> anyhow::Result<bool> {
    let input = ImportSource::open(source)?;
    let storage = open_store(&config).await?;
    let options = ImportOptions {
        sumdbs: verifiers(&config)?,
        spool_dir: config.spool_dir.clone(),
        zip_limits: zip_limits(&config),
        // The serving rule: what the proxy would not store from upstream, import does not
        // store from a bundle.
        verify: config.sumdb.verify,
        // Private as in serving: `private`, and the modules of private routes.
        private: config
            .private
            .globs()
            .iter()
            .map(String::as_str)
            .chain(config.routes.private_globs())
            .map(String::from)
            .collect(),
        policy: Some(crate::access::import_policy(&config)?),
    };
    let progress = Bar::new("import");
    let report = gomodproxy_bundle::import(storage.as_ref(), input, &options, &progress).await;
    progress.finish();
    let report = report.context("import failed")?;
    if let Some(m) = &report.manifest {
        println!(
            "import: bundle of {} objects ({}) from {} created {} ({})",
            m.objects,
            human_bytes(m.bytes),
            m.source,
            m.created,
            m.selection
        );
        if let Some(f) = &m.follows {
            println!("import: it follows {}", f.describe());
        }
        if report.recorded {
            println!(
                "import: recorded as imported: {} (the bundle that follows it may be imported next)",
                m.describe()
            );
        }
    }
    println!(
        "import: {} imported ({}), {} already there, {} refused, {} skipped (not store objects) in {:.1?}{}",
        report.imported,
        human_bytes(report.imported_bytes),
        report.already,
        report.refused.len(),
        report.skipped,
        report.elapsed,
        rate(report.imported_bytes, report.elapsed),
    );
    for p in &report.skipped_examples {
        eprintln!("import: skipped {p}");
    }
    if report.skipped > report.skipped_examples.len() as u64 {
        eprintln!(
            "import: skipped {} more",
            report.skipped - report.skipped_examples.len() as u64
        );
    }
    for p in &report.refused {
        eprintln!("import: REFUSED {p}");
    }
    Ok(report.ok())
}

/// Runs `gomodproxy verify`; `Ok(false)` on any problem.
pub async fn verify(modules: Vec<String>, config: Config) -> anyhow::Result<bool> {
    let storage = open_store(&config).await?;
    let options = VerifyOptions {
        modules,
        sumdbs: verifiers(&config)?,
        spool_dir: config.spool_dir.clone(),
        zip_limits: zip_limits(&config),
    };
    let progress = Bar::new("verify");
    let report = gomodproxy_bundle::verify(storage.as_ref(), &options, &progress).await;
    progress.finish();
    let report = report.context("verify failed")?;
    println!(
        "verify: {} zips ({}), {} go.mod files, {} checksum records, {} tiles, {} tree heads, {} other objects checked in {:.1?}: {} problems",
        report.zips,
        human_bytes(report.zip_bytes),
        report.mods,
        report.records,
        report.tiles,
        report.trees,
        report.others,
        report.elapsed,
        report.problems.len(),
    );
    for p in &report.problems {
        eprintln!("verify: PROBLEM {p}");
    }
    Ok(report.ok())
}

/// Progress on stderr: a bar of bytes on a terminal (with a count of the problems found so
/// far), a line per phase otherwise. The problems themselves are listed when the run ends.
struct Bar {
    out: Terminal,
    problems: AtomicU64,
}

impl Bar {
    fn new(command: &'static str) -> Bar {
        Bar {
            out: Terminal::new(command),
            problems: AtomicU64::new(0),
        }
    }

    fn finish(&self) {
        self.out.finish();
    }

    /// `3 problems` (empty while there are none).
    fn problems_found(&self) -> String {
        match self.problems.load(Ordering::Relaxed) {
            0 => String::new(),
            1 => "1 problem".to_string(),
            n => format!("{n} problems"),
        }
    }
}

impl Progress<str> for Bar {
    fn phase(&self, name: &str, objects: Option<u64>, bytes: Option<u64>) {
        let line = match (objects, bytes) {
            (Some(n), Some(b)) => format!("{name} ({n} objects, {})", human_bytes(b)),
            _ => name.to_string(),
        };
        let (bar, template) = match bytes {
            Some(total) => (
                ProgressBar::new(total),
                "{prefix:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            ),
            None => (
                ProgressBar::new_spinner(),
                "{prefix:>10} {spinner} {bytes} {msg}",
            ),
        };
        bar.set_message(self.problems_found());
        self.out.phase(name, &line, bar, template);
    }

    fn step(&self, _path: &str, bytes: u64) {
        self.out.with_bar(|bar| bar.inc(bytes));
    }

    fn problem(&self, _problem: &Problem) {
        self.problems.fetch_add(1, Ordering::Relaxed);
        self.out
            .with_bar(|bar| bar.set_message(self.problems_found()));
    }
}
