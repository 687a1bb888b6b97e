//! `verify` finds what is wrong in a store: a corrupted zip, a `.ziphash` that does not match,
//! a `.mod` that does not match the checksum database, a record that cannot be proven.

use gomodproxy_bundle::{NoProgress, Progress, Verifiers, VerifyOptions, VerifyReport};
use gomodproxy_storage::Storage;

use crate::support::*;

async fn run(fx: &Fixture, modules: &[&str]) -> VerifyReport {
    run_with(fx, modules, &NoProgress).await
}

async fn run_with(fx: &Fixture, modules: &[&str], progress: &dyn Progress<str>) -> VerifyReport {
    gomodproxy_bundle::verify(
        fx.store.as_ref() as &dyn Storage,
        &VerifyOptions {
            modules: modules.iter().map(|m| m.to_string()).collect(),
            sumdbs: Verifiers::parse(&[fx.log.vkey()]).unwrap(),
            ..VerifyOptions::default()
        },
        progress,
    )
    .await
    .unwrap()
}

fn problem_paths(report: &VerifyReport) -> Vec<String> {
    let mut v: Vec<String> = report.problems.iter().map(|p| p.path.clone()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_clean_store_verifies() {
    let fx = Fixture::new().await;
    let report = run(&fx, &[]).await;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.zips, 5);
    assert_eq!(report.mods, 5);
    assert_eq!(report.records, 4);
    assert_eq!(report.tiles, fx.log.tiles().len() as u64);
}

#[tokio::test]
async fn corrupted_files_in_an_fs_store_are_found() {
    let fx = Fixture::new().await;
    let root = fx.dir.path().join("store");
    // Bad bytes written straight into the store's files.
    let zip = root.join("example.com/a/@v/v1.0.0.zip");
    let bytes = std::fs::read(&zip).unwrap();
    std::fs::write(&zip, &bytes[..bytes.len() / 2]).unwrap();
    // A valid hash, of another zip.
    let other = fx.module("example.com/b", "v0.1.0").zip_h1();
    std::fs::write(root.join("example.com/a/@v/v1.1.0.ziphash"), &other).unwrap();
    // A go.mod changed after the fact.
    std::fs::write(
        root.join("github.com/!upper/m/@v/v1.0.0.mod"),
        "module github.com/Upper/m\n\ngo 1.22\n",
    )
    .unwrap();

    let report = run(&fx, &[]).await;
    assert_eq!(
        problem_paths(&report),
        [
            "example.com/a/@v/v1.0.0.zip",
            "example.com/a/@v/v1.1.0.zip",
            "github.com/!upper/m/@v/v1.0.0.mod",
        ],
        "{:?}",
        report.problems
    );
    let why = |p: &str| {
        report
            .problems
            .iter()
            .find(|x| x.path == p)
            .unwrap()
            .reason
            .clone()
    };
    // Truncated in place: the store's recorded length finds it before the zip is even read
    // (issue 9: a damaged file is never served as if whole).
    assert!(
        why("example.com/a/@v/v1.0.0.zip").contains("damaged"),
        "{}",
        why("example.com/a/@v/v1.0.0.zip")
    );
    assert!(why("example.com/a/@v/v1.1.0.zip").contains(&other));
    assert!(why("github.com/!upper/m/@v/v1.0.0.mod").contains("checksum database"));

    // Restricted to one module, only its problems.
    let report = run(&fx, &["github.com/Upper"]).await;
    assert_eq!(
        problem_paths(&report),
        ["github.com/!upper/m/@v/v1.0.0.mod"]
    );
    assert_eq!(report.tiles, 0);
}

#[tokio::test]
async fn missing_hashes_and_unprovable_records_are_found() {
    let fx = Fixture::new().await;
    let root = fx.dir.path().join("store");
    std::fs::remove_file(root.join("example.com/b/@v/v0.1.0.ziphash")).unwrap();
    // Without this tile no record can be proven in the cached tree.
    std::fs::remove_file(root.join(format!("sumdb/{DB}/tile/8/0/001.p/88"))).unwrap();
    let report = run(&fx, &[]).await;
    let paths = problem_paths(&report);
    assert!(
        paths.contains(&"example.com/b/@v/v0.1.0.zip".to_string()),
        "{paths:?}"
    );
    for lookup in ["example.com/a@v1.0.0", "example.com/b@v0.1.0"] {
        let p = format!("sumdb/{DB}/lookup/{lookup}");
        let problem = report.problems.iter().find(|x| x.path == p).unwrap();
        assert!(problem.reason.contains("tile/8/0/001.p/88"), "{problem:?}");
    }
}

#[tokio::test]
async fn every_problem_is_told_to_the_progress_sink_as_it_is_found() {
    let fx = Fixture::new().await;
    let root = fx.dir.path().join("store");
    // A tree head signed by another key: it, and every tile and record it should anchor.
    let impostor = fx.log.signed_by(signer(99));
    std::fs::write(root.join(format!("sumdb/{DB}/latest")), impostor.note()).unwrap();
    // A `.ziphash` whose zip is gone.
    std::fs::remove_file(root.join("example.com/a/@v/v1.1.0.zip")).unwrap();
    // A go.mod changed after the fact.
    std::fs::write(
        root.join("example.com/b/@v/v0.1.0.mod"),
        "module example.com/b\n\ngo 1.22\n",
    )
    .unwrap();

    let recorder = Recorder::default();
    let report = run_with(&fx, &[], &recorder).await;
    let told = recorder.problems.lock().unwrap().clone();
    assert_eq!(told, report.problems);
    let paths = problem_paths(&report);
    for path in [
        format!("sumdb/{DB}/latest"),
        "example.com/a/@v/v1.1.0.ziphash".to_string(),
        "example.com/b/@v/v0.1.0.mod".to_string(),
    ] {
        assert!(paths.contains(&path), "{path} not in {paths:?}");
    }
    // Every listed object is one step, problem or not.
    let mut steps = recorder.steps.lock().unwrap().clone();
    steps.sort();
    let mut listed: Vec<String> = snapshot(fx.store.as_ref()).await.into_keys().collect();
    listed.sort();
    assert_eq!(steps, listed);
}
