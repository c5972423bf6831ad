//! Heartbeats: authentication, metrics, last_seen.

use miaas_tests::{TestServer, heartbeat, send};
use serde_json::json;

#[tokio::test]
async fn heartbeat_with_the_nodes_token_is_recorded_and_shown() {
    let server = TestServer::spawn().await;
    let (id, token) = server.register("worker-01").await;
    let (_, before) = server.get(&format!("/api/v1/nodes/{id}")).await;

    let (status, ack) = server
        .post_as(
            &token,
            &format!("/api/v1/nodes/{id}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ack["status"], "ok");
    let timestamp = ack["timestamp"].as_f64().unwrap();

    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["last_seen"].as_f64().unwrap(), timestamp);
    assert!(timestamp >= before["last_seen"].as_f64().unwrap());
    let metrics = &node["metrics"];
    assert_eq!(metrics["cpu_usage"], 45.5);
    assert_eq!(metrics["mem_usage"], 60.2);
    assert_eq!(metrics["disk_free_mb"], 450000);
    assert_eq!(metrics["running_containers"], json!(["postgres", "redis"]));
}

#[tokio::test]
async fn heartbeat_without_a_token_is_401() {
    let server = TestServer::spawn().await;
    let (id, _) = server.register("worker-01").await;
    let (status, body) = server
        .post(&format!("/api/v1/nodes/{id}/heartbeat"), &heartbeat())
        .await;
    assert_eq!(status, 401);
    assert!(body["detail"].is_string());
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert!(
        node["metrics"].is_null(),
        "a refused heartbeat must change nothing"
    );
}

#[tokio::test]
async fn heartbeat_with_an_invalid_token_is_401() {
    let server = TestServer::spawn().await;
    let (id, _) = server.register("worker-01").await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    let (status, _) = server.post_as("not-a-token", &path, &heartbeat()).await;
    assert_eq!(status, 401);
    // the original's predictable token form must not work
    let predictable = format!("node-token-{id}");
    let (status, _) = server.post_as(&predictable, &path, &heartbeat()).await;
    assert_eq!(status, 401);
    // a non-Bearer scheme is no credential
    let request = server
        .client
        .post(server.url(&path))
        .basic_auth("node", Some("x"))
        .json(&heartbeat());
    assert_eq!(send(request).await.0, 401);
}

#[tokio::test]
async fn heartbeat_with_another_nodes_token_is_403() {
    let server = TestServer::spawn().await;
    let (a, _) = server.register("a").await;
    let (_, b_token) = server.register("b").await;
    let (status, body) = server
        .post_as(
            &b_token,
            &format!("/api/v1/nodes/{a}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (_, node) = server.get(&format!("/api/v1/nodes/{a}")).await;
    assert!(node["metrics"].is_null());
}

#[tokio::test]
async fn heartbeat_for_an_unknown_node_is_404() {
    let server = TestServer::spawn().await;
    let (_, token) = server.register("a").await;
    let (status, _) = server
        .post_as(&token, "/api/v1/nodes/no-such-node/heartbeat", &heartbeat())
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn heartbeat_with_bad_metrics_is_422_and_changes_nothing() {
    let server = TestServer::spawn().await;
    let (id, token) = server.register("a").await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    for (field, value) in [
        ("cpu_usage", json!(-1.0)),
        ("mem_usage", json!(101.0)),
        ("disk_free_mb", json!(-5)),
        ("cpu_usage", json!("high")),
    ] {
        let mut body = heartbeat();
        body[field] = value;
        let (status, error) = server.post_as(&token, &path, &body).await;
        assert_eq!(status, 422, "{field}: {error}");
        assert!(error["detail"].as_str().unwrap().contains(field), "{error}");
    }
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert!(node["metrics"].is_null());
}

#[tokio::test]
async fn repeated_failed_authentication_is_answered_429_with_retry_after() {
    let server = TestServer::spawn_with(|c| c.auth_failure_limit = 5).await;
    let (id, token) = server.register("worker-01").await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    for _ in 0..5 {
        assert_eq!(server.post_as("guess", &path, &heartbeat()).await.0, 401);
    }
    let response = server
        .client
        .post(server.url(&path))
        .bearer_auth("guess")
        .json(&heartbeat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("retry"), "{body}");
    // a blocked address is still served its valid credentials; anonymous routes
    // stay open
    assert_eq!(server.post_as(&token, &path, &heartbeat()).await.0, 200);
    assert_eq!(server.post_as("guess", &path, &heartbeat()).await.0, 429);
    assert_eq!(server.get("/health").await.0, 200);
    assert_eq!(server.get("/api/v1/nodes").await.0, 200);
}

#[tokio::test]
async fn buffered_heartbeats_reach_the_database_within_the_flush_interval() {
    let server = TestServer::spawn_with(|c| {
        c.heartbeat_flush_interval = std::time::Duration::from_millis(100)
    })
    .await;
    let (id, token) = server.register("worker-01").await;
    let (status, ack) = server
        .post_as(
            &token,
            &format!("/api/v1/nodes/{id}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 200);
    let timestamp = ack["timestamp"].as_f64().unwrap();
    // this server shows it at once
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["last_seen"].as_f64().unwrap(), timestamp);
    // and the database has it soon, for the other replicas
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = (server
            .store
            .changes_since(0)
            .await
            .unwrap()
            .nodes
            .into_iter())
        .map(|n| n.record)
        .find(|n| n.id == id)
        .unwrap();
        if stored.last_seen == timestamp && stored.metrics.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never flushed: {stored:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_removed_by_another_process_stops_heartbeating_soon() {
    // `miaas` in local mode removes the node from the server's database file: the
    // server, which authenticates heartbeats from memory, notices the foreign commit
    let server = TestServer::spawn().await;
    let (id, token) = server.register("worker-01").await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    assert_eq!(server.post_as(&token, &path, &heartbeat()).await.0, 200);
    let dir = tempfile::tempdir().unwrap();
    let key_file = server.secret_key_file.display().to_string();
    miaas_tests::miaas(
        dir.path(),
        &["--database-url", &server.database_url, "nodes", "rm", &id],
        &[("MIAAS_SECRET_KEY_FILE", key_file.as_str())],
        None,
    )
    .ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, _) = server.post_as(&token, &path, &heartbeat()).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            std::time::Instant::now() < deadline,
            "the removed node's token still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
