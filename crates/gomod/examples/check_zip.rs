//! Runs `check_zip` on module zip files and prints what it found, how long it took and the
//! process's peak RSS (VmHWM) as one JSON line. Used by tests/bench/zip_memory.py, which also
//! builds this file against an older gomod to compare; so it uses only the API that has not
//! changed (`check_zip` with default limits).
//!
//! Usage: check_zip MODULE VERSION ZIP [ZIP...]   (several zips are checked at once, one thread
//! each)

use std::fs::File;
use std::time::Instant;

use gomod::{ModulePath, Version, ZipLimits, check_zip};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, version, zips @ ..] = args.as_slice() else {
        eprintln!("usage: check_zip MODULE VERSION ZIP [ZIP...]");
        std::process::exit(2);
    };
    if zips.is_empty() {
        eprintln!("usage: check_zip MODULE VERSION ZIP [ZIP...]");
        std::process::exit(2);
    }
    let module = ModulePath::parse(module).expect("module path");
    let version = Version::parse(version).expect("version");
    let rss_before = vm_kib("VmRSS");

    let started = Instant::now();
    let results: Vec<Result<gomod::ZipSummary, gomod::Error>> = std::thread::scope(|s| {
        let handles: Vec<_> = zips
            .iter()
            .map(|path| {
                let (module, version) = (&module, &version);
                s.spawn(move || {
                    let file = File::open(path).expect("open zip");
                    check_zip(file, module, version, &ZipLimits::default())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();

    let outcome = match &results[0] {
        Ok(s) => format!(
            r#""ok":true,"h1":"{}","files":{},"uncompressed":{}"#,
            s.h1, s.files, s.uncompressed_size
        ),
        Err(e) => format!(r#""ok":false,"error":{:?}"#, e.to_string()),
    };
    println!(
        r#"{{{outcome},"checks":{},"seconds":{seconds:.3},"rss_before_kib":{rss_before},"peak_rss_kib":{},"rss_after_kib":{}}}"#,
        results.len(),
        vm_kib("VmHWM"),
        vm_kib("VmRSS")
    );
}

/// A `Vm*` line of /proc/self/status, in KiB (0 where there is no procfs).
fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
