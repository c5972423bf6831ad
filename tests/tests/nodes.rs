//! Node registration, listing and status over HTTP.

use std::time::{Duration, Instant};

use miaas_tests::{TestServer, heartbeat, registration};
use serde_json::json;

#[tokio::test]
async fn register_returns_201_with_id_token_and_url() {
    let server = TestServer::spawn().await;
    let (status, body) = server
        .post("/api/v1/nodes/register", &registration("worker-01"))
        .await;
    assert_eq!(status, 201);
    let node_id = body["node_id"].as_str().unwrap();
    assert!(uuid_like(node_id), "{node_id}");
    let token = body["node_token"].as_str().unwrap();
    // at least 128 random bits, and not derived from the id
    assert!(token.len() >= 32, "{token}");
    assert!(!token.contains(node_id));
    assert_eq!(body["control_plane_url"], json!(server.base));
}

#[tokio::test]
async fn public_url_is_configurable() {
    let server =
        TestServer::spawn_with(|c| c.public_url = Some("https://cp.example/".into())).await;
    let (_, body) = server
        .post("/api/v1/nodes/register", &registration("worker-01"))
        .await;
    assert_eq!(body["control_plane_url"], "https://cp.example");
}

#[tokio::test]
async fn tokens_differ_between_nodes_and_registrations() {
    let server = TestServer::spawn().await;
    let (_, a) = server.register("a").await;
    let (_, b) = server.register("b").await;
    let (_, a2) = server.register("a").await;
    assert_ne!(a, b);
    assert_ne!(a, a2);
}

#[tokio::test]
async fn reregistering_a_name_keeps_the_id_updates_fields_and_rotates_the_token() {
    let server = TestServer::spawn().await;
    let (id, old_token) = server.register("worker-01").await;
    let mut again = registration("worker-01");
    again["ip"] = json!("10.0.0.7");
    again["capabilities"]["cpu_count"] = json!(16);
    let (status, body) = server.post("/api/v1/nodes/register", &again).await;
    assert_eq!(status, 201);
    assert_eq!(body["node_id"], json!(id));
    let new_token = body["node_token"].as_str().unwrap().to_string();

    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["ip"], "10.0.0.7");
    assert_eq!(node["capabilities"]["cpu_count"], 16);
    let (_, nodes) = server.get("/api/v1/nodes").await;
    assert_eq!(nodes.as_array().unwrap().len(), 1);

    let path = format!("/api/v1/nodes/{id}/heartbeat");
    let (old, _) = server.post_as(&old_token, &path, &heartbeat()).await;
    assert_eq!(old, 401, "the old token must stop working");
    let (new, _) = server.post_as(&new_token, &path, &heartbeat()).await;
    assert_eq!(new, 200);
}

#[tokio::test]
async fn list_and_get_show_the_original_fields() {
    let server = TestServer::spawn().await;
    let (id, _) = server.register("worker-02").await;
    server.register("worker-01").await;
    let (status, nodes) = server.get("/api/v1/nodes").await;
    assert_eq!(status, 200);
    let names: Vec<_> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("worker-01"), json!("worker-02")]);

    let (status, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(node["id"], json!(id));
    assert_eq!(node["name"], "worker-02");
    assert_eq!(node["ip"], "192.168.1.10");
    assert_eq!(node["capabilities"], registration("x")["capabilities"]);
    assert_eq!(node["status"], "online");
    assert!(node["last_seen"].is_f64(), "{node}");
    assert!(node["metrics"].is_null());
}

#[tokio::test]
async fn unknown_capability_fields_are_kept() {
    let server = TestServer::spawn().await;
    let mut body = registration("k8s-node");
    body["capabilities"]["k8s"] = json!({"version": "1.30", "cni": "cilium"});
    let (_, reg) = server.post("/api/v1/nodes/register", &body).await;
    let (_, node) = server
        .get(&format!(
            "/api/v1/nodes/{}",
            reg["node_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        node["capabilities"]["k8s"],
        json!({"version": "1.30", "cni": "cilium"})
    );
}

#[tokio::test]
async fn unknown_node_is_404_json() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/api/v1/nodes/no-such-node").await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("no-such-node"));
}

#[tokio::test]
async fn a_node_goes_offline_after_the_heartbeat_timeout_and_back_online_on_heartbeat() {
    let server = TestServer::spawn_with(|c| c.heartbeat_timeout = Duration::from_millis(300)).await;
    let (id, token) = server.register("flaky").await;
    let path = format!("/api/v1/nodes/{id}");
    let (_, node) = server.get(&path).await;
    assert_eq!(node["status"], "online");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, node) = server.get(&path).await;
        if node["status"] == "offline" {
            break;
        }
        assert!(Instant::now() < deadline, "node never went offline: {node}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = server
        .post_as(&token, &format!("{path}/heartbeat"), &heartbeat())
        .await;
    assert_eq!(status, 200);
    let (_, node) = server.get(&path).await;
    assert_eq!(node["status"], "online");
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_list_follows_cordons_time_heartbeats_and_placements() {
    // the server keeps the last page it served: each change must show at once
    let server = TestServer::spawn_with(|c| c.heartbeat_timeout = Duration::from_millis(600)).await;
    let (id, token) = server.register("listed").await;
    let list = || async { server.get("/api/v1/nodes").await.1[0].clone() };
    let first = list().await;
    assert_eq!(list().await, first, "nothing changed");
    assert_eq!(first["metrics"], serde_json::Value::Null);

    let cordon = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/nodes/{id}")))
        .json(&serde_json::json!({"schedulable": false}));
    assert_eq!(miaas_tests::send(cordon).await.0, 200);
    assert_eq!(list().await["schedulable"], false);

    // nothing else changes: the node turns offline by the clock alone
    let deadline = Instant::now() + Duration::from_secs(10);
    while list().await["status"] != "offline" {
        assert!(
            Instant::now() < deadline,
            "the listed node never went offline"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let beat = format!("/api/v1/nodes/{id}/heartbeat");
    assert_eq!(server.post_as(&token, &beat, &heartbeat()).await.0, 200);
    let back = list().await;
    assert_eq!(
        (
            back["status"].as_str(),
            back["metrics"]["cpu_usage"].as_f64()
        ),
        (Some("online"), Some(45.5))
    );

    let uncordon = reqwest::Client::new()
        .patch(server.url(&format!("/api/v1/nodes/{id}")))
        .json(&serde_json::json!({"schedulable": true}));
    assert_eq!(miaas_tests::send(uncordon).await.0, 200);
    let (status, _) = server
        .post("/api/v1/deployments", &miaas_tests::deployment("db"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(list().await["deployments"], serde_json::json!(["db"]));
}
