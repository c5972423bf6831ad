//! What recording metrics costs on the heartbeat path: one heartbeat through the
//! whole application (every layer, the service, the fleet state), called in
//! process so that the network's cost does not hide it, on a server started with
//! `--no-metrics` and on one with metrics (the default).
//!
//! `cargo bench -p miaas-server --bench heartbeat_metrics`

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use miaas_server::{Application, AuthMode, ServerConfig};
use tower::ServiceExt;

/// A server on a fresh SQLite file (metrics on unless `no_metrics`), with one
/// registered node: its router, heartbeat path and token.
fn server(
    dir: &std::path::Path,
    no_metrics: bool,
) -> (tokio::runtime::Runtime, axum::Router, String, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut config = ServerConfig::with_database(format!(
        "sqlite://{}",
        dir.join(format!("bench-{no_metrics}.db")).display()
    ));
    config.host = "127.0.0.1".into();
    config.port = 0;
    config.auth = AuthMode::Off;
    config.no_metrics = no_metrics;
    config.heartbeat_timeout = std::time::Duration::from_secs(3600);
    config.secret_key_file = Some(dir.join("miaas.key"));
    let (router, path, token) = runtime.block_on(async {
        let app = Application::build(&config).await.expect("server");
        let router = app.router();
        let body = r#"{"name": "n1", "ip": "10.0.0.1", "capabilities": {"os": "linux", "cpu_count": 8, "mem_mb": 16000}}"#;
        let request = Request::post("/api/v1/nodes/register")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let answer = router.clone().oneshot(request).await.expect("answer");
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20).await.expect("body");
        let registered: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        let id = registered["node_id"].as_str().expect("node_id").to_string();
        let token = registered["node_token"].as_str().expect("token").to_string();
        // the application keeps serving through its router; the listener is unused
        std::mem::forget(app);
        (router, format!("/api/v1/nodes/{id}/heartbeat"), token)
    });
    (runtime, router, path, token)
}

fn heartbeat_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("heartbeat through the application");
    // without metrics first: once a recorder is installed it stays for the process
    for (name, no_metrics) in [("--no-metrics", true), ("metrics on", false)] {
        let (runtime, router, path, token) = server(dir.path(), no_metrics);
        group.bench_function(name, |b| {
            b.iter(|| {
                let request = Request::post(path.as_str())
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::from(
                        r#"{"cpu_usage": 12.5, "mem_usage": 40.0, "disk_free_mb": 100000, "running_containers": ["web"]}"#,
                    ))
                    .expect("request");
                let answer = runtime.block_on(router.clone().oneshot(request)).expect("answer");
                assert!(answer.status().is_success());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, heartbeat_path);
criterion_main!(benches);
