//! The original system's clients, unchanged, against the server with `--auth off`:
//! its agent's registration (no `disk_mb`), its sparse heartbeats and its deployment
//! requests without `env` or `action`. Runs on PostgreSQL too with
//! `MIAAS_TEST_BACKEND=postgres`.

use miaas_tests::TestServer;
use serde_json::{Value, json};

/// Exactly what the original agent sends.
fn original_registration(name: &str) -> Value {
    json!({
        "name": name,
        "ip": "10.1.2.3",
        "capabilities": {"os": "Linux", "cpu_count": 4, "mem_mb": 7950, "gpus": []}
    })
}

#[tokio::test]
async fn the_original_agent_registers_without_disk_and_its_disk_stays_unknown() {
    let server = TestServer::spawn().await;
    let (id, _) = server
        .register_body(&original_registration("legacy-01"))
        .await;
    let (status, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(status, 200, "{node}");
    assert_eq!(node["capabilities"].get("disk_mb"), Some(&Value::Null));
    assert_eq!(node["capabilities"]["gpus"], json!([]));
    assert_eq!(node["capabilities"]["mem_mb"], 7950);

    // registering again (the agent restarting) keeps it unknown, not 0
    server
        .register_body(&original_registration("legacy-01"))
        .await;
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["capabilities"].get("disk_mb"), Some(&Value::Null));

    // a later registration that reports its disk makes it known
    let mut with_disk = original_registration("legacy-01");
    with_disk["capabilities"]["disk_mb"] = json!(20000);
    server.register_body(&with_disk).await;
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["capabilities"]["disk_mb"], 20000);
}

#[tokio::test]
async fn required_capabilities_are_still_required() {
    let server = TestServer::spawn().await;
    let mut body = original_registration("legacy-01");
    body["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("mem_mb");
    let (status, error) = server.post("/api/v1/nodes/register", &body).await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["detail"].as_str().unwrap().contains("mem_mb"),
        "{error}"
    );
    let (_, nodes) = server.get("/api/v1/nodes").await;
    assert_eq!(nodes, json!([]), "nothing is stored");
}

#[tokio::test]
async fn sparse_heartbeats_are_accepted_with_the_original_defaults() {
    let server = TestServer::spawn().await;
    let (id, token) = server
        .register_body(&original_registration("legacy-01"))
        .await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");

    let (status, ack) = server.post_as(&token, &path, &json!({})).await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["status"], "ok");
    let node = server
        .wait_for(&format!("/api/v1/nodes/{id}"), |n| n["metrics"].is_object())
        .await;
    assert_eq!(
        (
            &node["metrics"]["cpu_usage"],
            &node["metrics"]["mem_usage"],
            &node["metrics"]["disk_free_mb"],
            &node["metrics"]["running_containers"]
        ),
        (&json!(0.0), &json!(0.0), &json!(0), &json!([]))
    );

    let (status, ack) = server
        .post_as(&token, &path, &json!({"cpu_usage": 12.5}))
        .await;
    assert_eq!(status, 200, "{ack}");
    let node = server
        .wait_for(&format!("/api/v1/nodes/{id}"), |n| {
            n["metrics"]["cpu_usage"] == json!(12.5)
        })
        .await;
    assert_eq!(node["metrics"]["mem_usage"], json!(0.0));

    // a present field is still checked
    let (status, error) = server
        .post_as(&token, &path, &json!({"cpu_usage": 120}))
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["detail"].as_str().unwrap().contains("cpu_usage"));
}

#[tokio::test]
async fn a_node_of_unknown_disk_takes_no_deployment_that_reserves_disk() {
    let server = TestServer::spawn().await;
    let (id, _) = server
        .register_body(&original_registration("legacy-01"))
        .await;

    // the original's deployment request: no env, no action
    let plain = json!({
        "deployment_id": "plain",
        "template_id": "nginx",
        "rendered_compose": "services:\n  web:\n    image: nginx\n"
    });
    let (status, body) = server.post("/api/v1/deployments", &plain).await;
    assert_eq!(status, 202, "{body}");
    let placed = server
        .wait_for("/api/v1/deployments/plain", |d| d["status"] == "scheduled")
        .await;
    assert_eq!(placed["node_id"], json!(id));
    assert_eq!(placed["env"], json!({}));
    assert_eq!(placed["action"], "apply");

    let disky = json!({
        "deployment_id": "disky",
        "template_id": "postgres",
        "rendered_compose": "services:\n  db:\n    image: postgres:16\n",
        "requirements": {"disk_mb": 1000}
    });
    let (status, body) = server.post("/api/v1/deployments", &disky).await;
    assert_eq!(status, 202, "{body}");
    let pending = server
        .wait_for("/api/v1/deployments/disky", |d| d["status"] == "pending")
        .await;
    assert_eq!(
        pending["placement"]["reasons"]["unknown_disk"], 1,
        "{pending}"
    );
}
