//! The audit event: its target and fields.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use gomodproxy_access::{
    AUDIT_TARGET, ArtifactKind, AuditDecision, AuditRecord, Identity, IdentityKind,
};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

type Captured = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

struct Capture(Captured);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0
            .lock()
            .unwrap()
            .push((event.metadata().target().to_string(), fields));
    }
}

#[test]
fn one_event_per_record_on_the_audit_target_with_every_field() {
    let captured: Captured = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
    let alice = Identity::new("alice", IdentityKind::User, &["dev"]);
    tracing::subscriber::with_default(subscriber, || {
        AuditRecord {
            identity: Some(&alice),
            client: Some(crate::ip("192.0.2.7")),
            module: "git.corp.example.com/lib",
            version: Some("v1.2.3"),
            kind: ArtifactKind::Zip,
            decision: AuditDecision::Served,
            status: 200,
            bytes: 12345,
        }
        .emit();
        AuditRecord {
            identity: None,
            client: Some(crate::ip("2001:db8::1")),
            module: "github.com/acme/secret",
            version: None,
            kind: ArtifactKind::List,
            decision: AuditDecision::Refused {
                reason: "authentication required",
            },
            status: 401,
            bytes: 0,
        }
        .emit();
    });
    let events = captured.lock().unwrap();
    assert_eq!(events.len(), 2);
    let (target, served) = &events[0];
    assert_eq!(target, AUDIT_TARGET);
    assert_eq!(AUDIT_TARGET, "gomodproxy::audit");
    let want = [
        ("principal", "alice"),
        ("auth", "user"),
        ("client", "192.0.2.7"),
        ("module", "git.corp.example.com/lib"),
        ("version", "v1.2.3"),
        ("kind", "zip"),
        ("decision", "served"),
        ("status", "200"),
        ("reason", "-"),
        ("bytes", "12345"),
        ("message", "artifact"),
    ];
    for (k, v) in want {
        assert_eq!(
            served.get(k).map(String::as_str),
            Some(v),
            "{k} in {served:?}"
        );
    }
    let (_, refused) = &events[1];
    for (k, v) in [
        ("principal", "-"),
        ("auth", "anonymous"),
        ("client", "2001:db8::1"),
        ("version", "-"),
        ("kind", "list"),
        ("decision", "refused"),
        ("status", "401"),
        ("reason", "authentication required"),
    ] {
        assert_eq!(
            refused.get(k).map(String::as_str),
            Some(v),
            "{k} in {refused:?}"
        );
    }
}
