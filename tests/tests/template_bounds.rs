//! A template cannot take the server's memory or time: renderings run in worker
//! processes of the server's own program with a bounded heap, CPU time, output
//! and concurrency, and the server keeps answering while they run.

use std::time::{Duration, Instant};

use miaas_tests::{ServerProcess, binary, send};
use serde_json::{Value, json};

/// The server's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A few hundred bytes that build gigabytes: a string of 100 MB, doubled.
const BOMB: &str = "{% set a = \"x\" * 100000000 %}{% set b = a ~ a %}{% set c = b ~ b %}\
                    {% set d = c ~ c %}services:\n  web:\n    image: {{ d|length }}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_bomb_is_bounded_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0"],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    let admin = server.admin_token(dir.path()).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(server.url(path))
            .bearer_auth(&admin)
            .json(&body)
    };

    // refused when added: its defaults are rendered within the same bounds
    let started = Instant::now();
    let (status, body) = send(post(
        "/api/v1/templates/bomb",
        json!({"parameters": [], "compose": BOMB}),
    ))
    .await;
    assert_eq!(status, 422, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("MiB") && detail.contains("render"),
        "{detail}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));

    // one that passes with its defaults but explodes with a parameter, rendered by
    // two viewers at once, while /health is asked
    let template = json!({
        "parameters": [{"name": "n", "type": "integer", "default": 1, "min": 1, "max": 100000000}],
        "compose": "{% set a = \"x\" * n %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}\
                    services:\n  web:\n    image: {{ \"busybox:\" ~ (d|length) }}\n"
    });
    let (status, body) = send(post("/api/v1/templates/grower", template)).await;
    assert_eq!(status, 201, "{body}");
    let before = resident_kib(server.pid());
    let (viewer, url) = (
        client.clone(),
        server.url("/api/v1/templates/grower/render"),
    );
    let token = admin.clone();
    let renders = tokio::spawn(async move {
        let render = || {
            send(
                viewer
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"params": {"n": 100000000}})),
            )
        };
        tokio::join!(render(), render())
    });
    let mut slowest = Duration::ZERO;
    let mut peak = before;
    while !renders.is_finished() {
        let asked = Instant::now();
        let (status, _) = send(client.get(server.url("/health"))).await;
        assert_eq!(status, 200);
        slowest = slowest.max(asked.elapsed());
        peak = peak.max(resident_kib(server.pid()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ((first, first_body), (second, second_body)) = renders.await.unwrap();
    assert_eq!((first, second), (422, 422), "{first_body} {second_body}");
    assert!(slowest < Duration::from_secs(1), "/health took {slowest:?}");
    assert!(
        peak < before + 64 * 1024,
        "the server grew from {before} KiB to {peak} KiB"
    );

    // a fair rendering of the same template still works
    let (status, body) = send(post(
        "/api/v1/templates/grower/render",
        json!({"params": {"n": 2}}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["rendered_compose"]
            .as_str()
            .unwrap()
            .contains("busybox:16"),
        "{body}"
    );
}
