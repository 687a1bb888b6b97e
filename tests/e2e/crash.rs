//! A proxy killed (SIGKILL) while a large zip is on its way in never serves a partial artifact
//! afterwards: it serves the complete zip, or fetches it again.

use std::time::Duration;

use gomodproxy_tests::fixtures::{self, sha256_hex, storage_rel_path};
use gomodproxy_tests::util::{stored_files, wait_for};
use gomodproxy_tests::{Fault, Fixtures, ProxyConfig, TestDir, Upstream};

const MODULE: &str = "example.com/big";
const VERSION: &str = "v1.0.0";

/// When to SIGKILL the proxy.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Once this fraction of the zip has left upstream (the proxy is receiving/spooling).
    UpstreamSent(f64),
    /// This long after upstream sent the last byte (the proxy is validating or saving).
    AfterUpstreamDone(Duration),
    /// As soon as the store's staging dir holds a file of at least this fraction of the zip's
    /// size (0.0: any non-empty file): a save is in progress.
    Staging(f64),
}

const KILL_POINTS: &[KillAt] = &[
    KillAt::UpstreamSent(0.3),
    KillAt::UpstreamSent(0.9),
    KillAt::AfterUpstreamDone(Duration::ZERO),
    KillAt::Staging(0.0),
    KillAt::Staging(0.25),
    KillAt::AfterUpstreamDone(Duration::from_millis(300)),
];

#[test]
fn killed_mid_download_never_serves_a_partial_zip() {
    let fx = Fixtures::shared();
    let t = TestDir::new("crash");
    let up = Upstream::start(fx.root());
    let path = fx.get(MODULE, VERSION).url_path("zip");
    let zip = fx.zip_bytes(MODULE, VERSION);
    let len = zip.len() as u64;
    let want_sha = sha256_hex(&zip);
    let want_h1 = fixtures::h1_zip(&zip);
    // About 4 s for the whole zip, whatever its size.
    let rate = (len / 4).max(1 << 20);

    for (round, &kill_at) in KILL_POINTS.iter().enumerate() {
        let what = format!("round {round} ({kill_at:?})");
        let root = t.sub(&format!("storage-{round}"));
        let config = ProxyConfig::new(&root, &up.url());
        let mut proxy = config.clone().start(&t.sub(&format!("logs-{round}")));
        up.set_fault(
            &path,
            Fault::Throttle {
                bytes_per_sec: rate,
            },
        );

        let base = up.bytes_sent(&path);
        let addr = proxy.addr();
        let target = path.clone();
        let client = std::thread::spawn(move || gomodproxy_tests::http::get(addr, &target));
        let sent_at_least = |goal: u64| {
            wait_for(
                &format!("{what}: upstream to send {goal} bytes"),
                Duration::from_secs(120),
                || (up.bytes_sent(&path) - base >= goal).then_some(()),
            )
        };
        match kill_at {
            KillAt::UpstreamSent(fraction) => sent_at_least((len as f64 * fraction) as u64),
            KillAt::AfterUpstreamDone(delay) => {
                sent_at_least(len);
                std::thread::sleep(delay);
            }
            KillAt::Staging(fraction) => {
                sent_at_least(len);
                let min = ((len as f64 * fraction) as u64).max(1);
                let zip_rel = storage_rel_path(MODULE, VERSION, "zip");
                let staged = wait_for_staging(&root, &zip_rel, min);
                eprintln!("{what}: killing with {staged}");
            }
        }
        proxy.kill();
        let outcome = client.join().unwrap();
        if let Ok(r) = &outcome {
            // A response that completed before the kill must be the whole zip.
            if r.status == 200 {
                assert_eq!(sha256_hex(&r.body), want_sha, "{what}: served a wrong zip");
            }
        }
        assert_final_artifacts(&root, len, &want_h1, &what);

        // Restarted on the same root with upstream failing: the complete zip or an error.
        up.set_fault(&path, Fault::Status(503));
        proxy.restart(config.clone());
        let r = proxy.get(&path);
        match r.status {
            200 => assert_eq!(sha256_hex(&r.body), want_sha, "{what}: partial zip served"),
            502..=504 => {}
            s => panic!("{what}: unexpected status {s} after restart: {}", r.text()),
        }
        eprintln!("{what}: after restart with upstream down: {}", r.status);

        // Upstream back: the full zip.
        up.clear_fault(&path);
        let r = proxy.get(&path);
        assert_eq!(r.status, 200, "{what}: {}", r.text());
        assert_eq!(
            sha256_hex(&r.body),
            want_sha,
            "{what}: wrong zip after refetch"
        );
        assert_final_artifacts(&root, len, &want_h1, &what);
        assert!(
            root.join(storage_rel_path(MODULE, VERSION, "zip"))
                .is_file(),
            "{what}: zip not stored after the refetch"
        );
        proxy.kill();
    }
}

/// Polls (every millisecond) until a file of at least `min` bytes is in the store's staging dir,
/// or the final artifact appears first (then the save finished before it could be caught).
/// Says which.
fn wait_for_staging(root: &std::path::Path, zip_rel: &str, min: u64) -> String {
    let staging = root.join(".tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        for (p, size) in gomodproxy_tests::util::walk(&staging, |_| true) {
            if size >= min {
                return format!("a save in progress ({}: {size} bytes)", p.display());
            }
        }
        if root.join(zip_rel).exists() {
            return "the save already complete (staging window missed)".into();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no staging file and no stored zip after 120 s");
}

/// Whatever sits at the final artifact paths is whole: the zip has the full size and bytes, the
/// ziphash (if present) is the right hash.
fn assert_final_artifacts(root: &std::path::Path, len: u64, want_h1: &str, what: &str) {
    let zip_rel = storage_rel_path(MODULE, VERSION, "zip");
    let hash_rel = storage_rel_path(MODULE, VERSION, "ziphash");
    for (rel, size) in stored_files(root) {
        if rel == zip_rel {
            assert_eq!(size, len, "{what}: {rel} has the wrong size");
            let bytes = std::fs::read(root.join(&rel)).unwrap();
            assert_eq!(
                fixtures::h1_zip(&bytes),
                want_h1,
                "{what}: {rel} has the wrong bytes"
            );
        } else if rel == hash_rel {
            let text = std::fs::read_to_string(root.join(&rel)).unwrap();
            assert_eq!(text.trim(), want_h1, "{what}: {rel} holds the wrong hash");
        } else if rel.contains(".zip") {
            // Not served (not at an artifact path), but it is garbage a crash left behind.
            eprintln!("WARNING {what}: stray file outside the staging dir: {rel} ({size} bytes)");
        }
    }
}
