//! Shared fixtures of the core's tests: a service over every backend, with a clock
//! the test moves.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use miaas_core::clock::ManualClock;
use miaas_core::model::{DeploymentAction, DeploymentRequest, Heartbeat, NodeRegistration};
use miaas_core::service::{Service, ServiceSettings};
use serde_json::json;
use tempfile::TempDir;

pub const T0: f64 = 1_700_000_000.0;

pub struct Fixture {
    pub service: Service,
    pub clock: Arc<ManualClock>,
    pub url: String,
    pub dir: Arc<TempDir>,
}

/// Set to a PostgreSQL URL (e.g. `postgres://postgres@127.0.0.1:5433/postgres`) to
/// run every store and service test on PostgreSQL as well as SQLite.
pub const POSTGRES_ENV: &str = "MIAAS_TEST_POSTGRES_URL";

/// The database URLs every test runs on: a SQLite file inside `dir`, and a fresh
/// PostgreSQL schema when [`POSTGRES_ENV`] names a server.
pub async fn backend_urls(dir: &Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}", dir.join("core.db").display())];
    if let Ok(admin) = std::env::var(POSTGRES_ENV) {
        let schema = format!("t{}", uuid::Uuid::new_v4().simple());
        let url = miaas_core::store::postgres::schema_url(&admin, &schema)
            .await
            .expect("create a test schema");
        urls.push(url);
    }
    urls
}

pub async fn fixtures() -> Vec<Fixture> {
    fixtures_with(ServiceSettings::default()).await
}

/// One fixture per backend, with these settings.
pub async fn fixtures_with(settings: ServiceSettings) -> Vec<Fixture> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut out = Vec::new();
    for url in backend_urls(dir.path()).await {
        out.push(fixture_on_with(url, dir.clone(), settings.clone()).await);
    }
    out
}

pub async fn fixture_on(url: String, dir: Arc<TempDir>) -> Fixture {
    fixture_on_with(url, dir, ServiceSettings::default()).await
}

pub async fn fixture_on_with(url: String, dir: Arc<TempDir>, settings: ServiceSettings) -> Fixture {
    let store = miaas_core::store::connect(&url).await.expect("open store");
    let clock = Arc::new(ManualClock::new(T0));
    let settings = ServiceSettings {
        heartbeat_timeout: Duration::from_secs(30),
        ..settings
    };
    Fixture {
        service: Service::with_clock(store, clock.clone(), settings),
        clock,
        url,
        dir,
    }
}

pub fn registration(name: &str) -> NodeRegistration {
    serde_json::from_value(json!({
        "name": name, "ip": "10.0.0.1",
        "capabilities": {"os": "linux", "cpu_count": 4, "mem_mb": 8000, "disk_mb": 100000}
    }))
    .unwrap()
}

pub fn beat(cpu: f64) -> Heartbeat {
    Heartbeat {
        cpu_usage: cpu,
        mem_usage: 10.0,
        disk_free_mb: 5,
        running_containers: vec!["web".into()],
        ..Heartbeat::default()
    }
}

pub fn request(id: &str, image: &str) -> DeploymentRequest {
    DeploymentRequest {
        deployment_id: id.into(),
        template_id: "web".into(),
        rendered_compose: Some(format!("services:\n  web:\n    image: {image}\n")),
        params: None,
        env: Default::default(),
        action: DeploymentAction::Apply,
        requirements: None,
    }
}
