//! What an import leaves behind is what an offline proxy needs: the service, in offline mode
//! over the imported store, serves the artifacts and a checksum database a verifying go client
//! accepts (each lookup provable, with tiles the proxy serves, in the tree it attaches).

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use gomod::sumdb::Lookup;
use gomod::sumdb::SumdbPath;
use gomod::sumdb::note::Verifier;
use gomod::sumdb::tlog::{TilePlan, Tree, record_hash, stored_hash_index};
use gomod::{ModulePath, Version};
use gomodproxy_bundle::ExportOptions;
use gomodproxy_service::{Answer, Body, Mode, ProxyService, ServiceConfig};
use gomodproxy_storage::Storage;

use crate::support::*;

async fn body(answer: Answer) -> Bytes {
    match answer.body {
        Body::Bytes(b) => b,
        Body::Stream(mut s) => {
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.unwrap());
            }
            Bytes::from(out)
        }
    }
}

#[tokio::test]
async fn an_offline_service_serves_an_imported_sled_store_with_provable_records() {
    let fx = Fixture::new().await;
    let bundle = fx.export(&ExportOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sled_store(&dir.path().join("sled"));
    let report = import_bytes(store.as_ref(), bundle, &fx.import_options()).await;
    assert!(report.ok(), "{:?}", report.refused);

    let svc = ProxyService::new(
        store.clone() as Arc<dyn Storage>,
        ServiceConfig {
            mode: Mode::Offline,
            sumdbs: vec![fx.log.vkey().parse().unwrap()],
            private: "corp.example".parse().unwrap(),
            ..ServiceConfig::default()
        },
    )
    .unwrap();
    let verifier = Verifier::parse(&fx.log.vkey()).unwrap();
    for m in &fx.modules {
        let (module, version) = (
            ModulePath::parse(m.module).unwrap(),
            Version::parse(m.version).unwrap(),
        );
        let zip = svc.zip(&module, &version).await.unwrap();
        assert_eq!(zip.etag.as_deref(), Some(m.zip_h1().as_str()));
        assert_eq!(body(zip).await, m.zip);
        assert_eq!(
            body(svc.go_mod(&module, &version).await.unwrap()).await,
            m.go_mod.as_bytes()
        );
        if m.module.starts_with("corp.") {
            continue;
        }
        // As the go command checks a download: the lookup, its tree, the tiles proving it.
        let answer = svc
            .sumdb(
                &db(),
                &SumdbPath::Lookup {
                    module: module.clone(),
                    version: version.clone(),
                },
            )
            .await
            .unwrap();
        let lookup = Lookup::parse(&body(answer).await).unwrap();
        let record = lookup.record(m.module, m.version);
        assert_eq!(record.zip.as_deref(), Some(m.zip_h1().as_str()));
        assert_eq!(record.go_mod.as_deref(), Some(m.mod_h1().as_str()));
        let tree = Tree::parse(verifier.open(&lookup.note).unwrap()).unwrap();
        let plan = TilePlan::new(tree, 8, &[stored_hash_index(0, lookup.id)]).unwrap();
        let mut tiles = Vec::new();
        for tile in plan.tiles() {
            tiles.push(body(svc.sumdb(&db(), &SumdbPath::Tile(*tile)).await.unwrap()).await);
        }
        assert_eq!(
            plan.verify(&tiles).unwrap(),
            [record_hash(lookup.text.as_bytes())]
        );
    }
    assert_eq!(svc.seal_sumdb(&[]).await.unwrap().records, 4);
}
