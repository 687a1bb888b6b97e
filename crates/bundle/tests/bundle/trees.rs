//! Recorded tree heads (`sumdb/<db>/tree/<N>`): the trees clients of the store remember. The
//! stored trees must form one log: `verify` says when one is not a prefix of the store's tree
//! head, `import` refuses it (and does not record the bundle as imported), and `export` says
//! the bundle cannot be proven to extend it.

use gomodproxy_bundle::{ExportOptions, NoProgress, Verifiers, VerifyOptions};
use gomodproxy_storage::{Storage, StorageExt};

use crate::support::*;

/// A tree of `n` records of a fork of the fixture's log (record 10 rewritten), signed with
/// the same key.
fn forked_note(fx: &Fixture, n: i64) -> bytes::Bytes {
    let mut fork = fx.log.prefix(fx.log.n());
    fork.rewrite(10, "forked record\n");
    fork.prefix(n).note()
}

async fn verify(store: &dyn Storage, fx: &Fixture) -> gomodproxy_bundle::VerifyReport {
    gomodproxy_bundle::verify(
        store,
        &VerifyOptions {
            sumdbs: Verifiers::parse(&[fx.log.vkey()]).unwrap(),
            ..VerifyOptions::default()
        },
        &NoProgress,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_older_tree_of_the_log_verifies_and_a_forked_one_is_found_everywhere() {
    let fx = Fixture::new().await;
    // A genuine older tree: one log.
    let older = format!("tree/{}", 200);
    fx.store
        .put_bytes(&sumdb_key(&older), fx.log.prefix(200).note())
        .await
        .unwrap();
    let report = verify(fx.store.as_ref(), &fx).await;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.trees, 2);
    let bundle = fx.export(&ExportOptions::default()).await;
    let (_d, store) = fresh().await;
    let imported = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert!(imported.ok() && imported.recorded, "{:?}", imported.refused);
    assert!(stored(store.as_ref(), &format!("sumdb/{}/{older}", db())).await);

    // A tree of a fork, signed with the database's key: not one log.
    let forked = format!("tree/{}", 250);
    fx.store
        .put_bytes(&sumdb_key(&forked), forked_note(&fx, 250))
        .await
        .unwrap();
    let report = verify(fx.store.as_ref(), &fx).await;
    let paths: Vec<&str> = report.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [format!("sumdb/{}/{forked}", db())],
        "{:?}",
        report.problems
    );

    let (out, exported) = gomodproxy_bundle::export(
        fx.store.as_ref(),
        &ExportOptions::default(),
        Vec::new(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert!(
        exported
            .missing
            .iter()
            .any(|p| p.reason.contains("cannot be proven to extend it")),
        "{:?}",
        exported.missing
    );
    let (_d, store) = fresh().await;
    let imported = import_bytes(store.as_ref(), out, &fx.import_options()).await;
    assert_eq!(refused(&imported), [format!("sumdb/{}/{forked}", db())]);
    assert!(
        !imported.recorded,
        "a bundle with a refusal is not recorded as imported"
    );
    assert!(!stored(store.as_ref(), &format!("sumdb/{}/{forked}", db())).await);
}
