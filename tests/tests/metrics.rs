//! `/metrics` and `X-Request-Id`, against the real server binary: a scrape after a
//! registration, a heartbeat and a deploy shows the documented series with
//! values that follow from them; `--metrics-listen` serves it without
//! credentials; every answer carries a request id, found again in error bodies
//! and in the log.

use miaas_tests::{ServerProcess, binary, deployment, heartbeat, registration, send};
use serde_json::{Value, json};

/// A free port on 127.0.0.1 (for `--metrics-listen`).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The value of the series `name{labels}` exactly as printed.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = client.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_requests_scheduling_and_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let metrics_listen = format!("127.0.0.1:{port}");
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-listen",
            &metrics_listen,
        ],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    assert_eq!(
        server.listening("metrics_address").as_deref(),
        Some(metrics_listen.as_str())
    );
    let client = reqwest::Client::new();
    let admin = server.admin_token(dir.path()).await;
    let join = ServerProcess::saved_secret(dir.path(), "MIAAS_JOIN_TOKEN");
    let mut node = registration("gpu-box");
    node["capabilities"]["cpu_count"] = json!(8);
    let (status, registered) = post(
        &client,
        server.url("/api/v1/nodes/register"),
        Some(&join),
        &node,
    )
    .await;
    assert_eq!(status, 201);
    let node_id = registered["node_id"].as_str().unwrap().to_string();
    let node_token = registered["node_token"].as_str().unwrap().to_string();
    let path = format!("/api/v1/nodes/{node_id}/heartbeat");
    let (status, _) = post(&client, server.url(&path), Some(&node_token), &heartbeat()).await;
    assert_eq!(status, 200);
    let mut placed = deployment("web");
    placed["requirements"] = json!({"cpus": 2, "gpus": 1});
    let (status, _) = post(
        &client,
        server.url("/api/v1/deployments"),
        Some(&admin),
        &placed,
    )
    .await;
    assert_eq!(status, 202);
    let mut too_big = deployment("huge");
    too_big["requirements"] = json!({"cpus": 64});
    let (status, _) = post(
        &client,
        server.url("/api/v1/deployments"),
        Some(&admin),
        &too_big,
    )
    .await;
    assert_eq!(status, 202);

    // with auth on, /metrics needs a user credential
    let anonymous = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let scrape = client
        .get(server.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(scrape.status(), 200);
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = scrape.text().await.unwrap();

    let heartbeats = r#"miaas_http_requests_total{method="POST",route="/api/v1/nodes/{node_id}/heartbeat",status="200"}"#;
    assert_eq!(value(&text, heartbeats), Some(1.0), "{text}");
    assert!(
        !text.contains(&node_id),
        "labelled by route template, never by raw path"
    );
    assert!(
        text.contains("miaas_http_request_duration_seconds_bucket{"),
        "a histogram"
    );
    assert_eq!(
        value(
            &text,
            r#"miaas_schedule_attempts_total{result="scheduled"}"#
        ),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            r#"miaas_schedule_attempts_total{result="unschedulable"}"#
        ) >= Some(1.0)
    );
    assert!(
        value(
            &text,
            r#"miaas_unschedulable_total{reason="insufficient_cpu"}"#
        ) >= Some(1.0),
        "{text}"
    );
    assert!(text.contains("miaas_scheduling_duration_seconds_bucket"));
    assert_eq!(value(&text, r#"miaas_pending_deployments"#), Some(1.0));
    assert_eq!(value(&text, r#"miaas_nodes{status="online"}"#), Some(1.0));
    assert_eq!(value(&text, r#"miaas_nodes{status="offline"}"#), Some(0.0));
    assert_eq!(
        value(&text, r#"miaas_deployments{status="scheduled"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"miaas_deployments{status="pending"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"miaas_cluster_capacity{resource="cpus"}"#),
        Some(8.0)
    );
    assert_eq!(
        value(&text, r#"miaas_cluster_capacity{resource="gpus"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(&text, r#"miaas_cluster_capacity{resource="memory_bytes"}"#),
        Some(16000.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        value(&text, r#"miaas_cluster_allocated{resource="cpus"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(&text, r#"miaas_cluster_allocated{resource="gpus"}"#),
        Some(1.0)
    );
    assert_eq!(value(&text, "miaas_heartbeats_received_total"), Some(1.0));
    let version = format!(
        r#"miaas_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &version), Some(1.0));
    assert!(
        !text.contains("miaas_node_up"),
        "per-node series only behind a flag"
    );

    // the separate listener: no credential, nothing but /metrics
    let open = client
        .get(format!("http://{metrics_listen}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let text = open.text().await.unwrap();
    assert_eq!(value(&text, r#"miaas_nodes{status="online"}"#), Some(1.0));
    let other = client
        .get(format!("http://{metrics_listen}/api/v1/nodes"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_series_come_with_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0", "--metrics-per-node"],
        dir.path(),
        &[],
    );
    let client = reqwest::Client::new();
    let (status, node) = post(
        &client,
        server.url("/api/v1/nodes/register"),
        None,
        &registration("n1"),
    )
    .await;
    assert_eq!(status, 201);
    let path = format!(
        "/api/v1/nodes/{}/heartbeat",
        node["node_id"].as_str().unwrap()
    );
    let token = node["node_token"].as_str();
    let (status, _) = post(&client, server.url(&path), token, &heartbeat()).await;
    assert_eq!(status, 200);
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        value(&text, r#"miaas_node_up{node="n1"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"miaas_node_cpu_usage_ratio{node="n1"}"#),
        Some(0.455)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_a_request_id_found_in_error_bodies_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--host", "127.0.0.1", "--port", "0"];
    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let client = reqwest::Client::new();

    let given = client
        .get(server.url("/api/v1/deployments/nope"))
        .header("x-request-id", "report-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), 404);
    assert_eq!(given.headers()["x-request-id"], "report-4711");
    let body: Value = given.json().await.unwrap();
    assert_eq!(body["request_id"], "report-4711");
    assert!(body["detail"].is_string());

    let generated = client.get(server.url("/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        id.len() >= 16 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    let forged = client
        .get(server.url("/api/v1/nodes"))
        .header("x-request-id", "a b\tc")
        .send()
        .await
        .unwrap();
    let replaced = forged.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(
        replaced, "a b\tc",
        "an id that could forge log lines is replaced"
    );

    let deployed = client
        .post(server.url("/api/v1/deployments"))
        .header("x-request-id", "deploy-42")
        .json(&deployment("web"))
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 202);
    let (_, log) = server.terminate();
    let lines: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("deployment applied"))
        .collect();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains("request_id=deploy-42")),
        "the request's log lines carry its id: {log:?}"
    );
}
