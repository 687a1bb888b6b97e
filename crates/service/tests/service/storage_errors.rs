//! A broken store is reported as a storage failure, never as "not found".

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use gomodproxy_service::{Mode, ProxyService, ServiceConfig, VersionQuery};
use gomodproxy_storage::memory::InMemory;
use gomodproxy_storage::{
    GetResult, Key, ListEntry, ListPrefix, ObjectMeta, PutPayload, Result, Storage, StorageError,
};

use crate::assert_err;
use crate::support::*;

/// Reads work (from an inner store) or fail; writes always fail.
#[derive(Debug, Default)]
struct Broken {
    inner: InMemory,
    reads_fail: bool,
}

fn fail() -> StorageError {
    StorageError::backend("broken", "disk on fire")
}

#[async_trait]
impl Storage for Broken {
    async fn put(&self, _key: &Key, _payload: PutPayload) -> Result<ObjectMeta> {
        Err(fail())
    }
    async fn get(&self, key: &Key) -> Result<GetResult> {
        if self.reads_fail {
            Err(fail())
        } else {
            self.inner.get(key).await
        }
    }
    async fn head(&self, key: &Key) -> Result<ObjectMeta> {
        if self.reads_fail {
            Err(fail())
        } else {
            self.inner.head(key).await
        }
    }
    async fn delete(&self, _key: &Key) -> Result<()> {
        Err(fail())
    }
    fn list(&self, prefix: &ListPrefix) -> BoxStream<'static, Result<ListEntry>> {
        if self.reads_fail {
            stream::once(async { Err(fail()) }).boxed()
        } else {
            self.inner.list(prefix)
        }
    }
    async fn check(&self) -> Result<()> {
        Err(fail())
    }
}

#[tokio::test]
async fn failing_reads_are_storage_errors() {
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    let storage = Arc::new(Broken {
        reads_fail: true,
        ..Broken::default()
    });
    let svc = ProxyService::new(storage.clone(), config(&up.url)).unwrap();
    let (m, v) = (module("example.com/m"), version("v1.0.0"));
    let msg = assert_err!(svc.go_mod(&m, &v).await, Storage);
    assert!(msg.contains("disk on fire"), "{msg}");
    assert_err!(svc.zip(&m, &v).await, Storage);
    assert_err!(svc.list(&m).await, Storage);
    assert_err!(svc.ready().await, Storage);
    // The store failed before upstream was needed.
    assert_eq!(up.total_hits(), 0);

    let offline = ProxyService::new(
        storage,
        ServiceConfig {
            mode: Mode::Offline,
            ..config(&up.url)
        },
    )
    .unwrap();
    assert_err!(offline.list(&m).await, Storage);
    assert_err!(offline.latest(&m).await, Storage);
    assert_err!(offline.info(&m, &VersionQuery::Canonical(v)).await, Storage);
}

#[tokio::test]
async fn failing_writes_are_storage_errors() {
    let up = Upstream::start().await;
    up.set(
        "example.com/m/@v/v1.0.0.mod",
        [Reply::Ok("module example.com/m\n".into())],
    );
    up.set(
        "example.com/m/@v/v1.0.0.zip",
        [Reply::Ok(good_zip("example.com/m", "v1.0.0"))],
    );
    let storage = Arc::new(Broken::default());
    let svc = ProxyService::new(storage, config(&up.url)).unwrap();
    let (m, v) = (module("example.com/m"), version("v1.0.0"));
    assert_err!(svc.go_mod(&m, &v).await, Storage);
    assert_err!(svc.zip(&m, &v).await, Storage);
}

#[tokio::test]
async fn ready_reports_a_healthy_store() {
    let storage = Arc::new(InMemory::new());
    let svc = service(&storage, config("http://127.0.0.1:9"));
    svc.ready().await.unwrap();
}
