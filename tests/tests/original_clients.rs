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

/// The original took any object as a GPU (its tests send `{"id": 0, "model": …}`
/// and `{"id": 0}`), and any object as `docker`: they are kept as sent, and a GPU of
/// unknown model or memory fits no deployment that asks for either.
#[tokio::test]
async fn gpus_as_the_original_took_them_are_kept_and_placed_with_care() {
    let server = TestServer::spawn().await;
    let body = json!({
        "name": "legacy-gpu",
        "ip": "10.1.2.4",
        "capabilities": {
            "os": "linux", "cpu_count": 16, "mem_mb": 32768, "disk_mb": 500000,
            "gpus": [{"id": 0, "model": "A100"}, {"id": 1}],
            "docker": {"version": "24.0.0"}
        }
    });
    let (id, _) = server.register_body(&body).await;
    let (_, node) = server.get(&format!("/api/v1/nodes/{id}")).await;
    assert_eq!(
        node["capabilities"]["gpus"],
        json!([{"id": 0, "model": "A100"}, {"id": 1}])
    );
    assert_eq!(node["capabilities"]["docker"]["available"], true);

    // the original's re-registration with a GPU of another shape updates the node
    let mut again = body.clone();
    again["capabilities"]["gpus"] = json!([{"id": 0, "model": "RTX 3090"}]);
    let (again_id, _) = server.register_body(&again).await;
    assert_eq!(again_id, id);
    let (_, nodes) = server.get("/api/v1/nodes").await;
    assert_eq!(nodes.as_array().map(Vec::len), Some(1));
    assert_eq!(nodes[0]["capabilities"]["gpus"][0]["model"], "RTX 3090");

    let any_gpu = json!({
        "deployment_id": "any-gpu",
        "template_id": "t",
        "rendered_compose": "services:\n  a:\n    image: x\n",
        "requirements": {"gpus": 1}
    });
    let (status, answer) = server.post("/api/v1/deployments", &any_gpu).await;
    assert_eq!(status, 202, "{answer}");
    let placed = server
        .wait_for("/api/v1/deployments/any-gpu", |d| {
            d["status"] == "scheduled"
        })
        .await;
    assert_eq!(placed["gpu_ids"], json!([0]));

    let big_gpu = json!({
        "deployment_id": "big-gpu",
        "template_id": "t",
        "rendered_compose": "services:\n  a:\n    image: x\n",
        "requirements": {"gpus": 1, "gpu_mem_mb": 1000}
    });
    let (status, answer) = server.post("/api/v1/deployments", &big_gpu).await;
    assert_eq!(status, 202, "{answer}");
    let pending = server
        .wait_for("/api/v1/deployments/big-gpu", |d| d["status"] == "pending")
        .await;
    assert!(
        pending["message"]
            .as_str()
            .unwrap_or_default()
            .contains("GPU"),
        "{pending}"
    );
}

/// The original's answer to a heartbeat sent with another node's token.
#[tokio::test]
async fn a_heartbeat_with_another_nodes_token_is_403_naming_a_different_node() {
    let server = TestServer::spawn().await;
    let (first, _) = server
        .register_body(&original_registration("worker-node-1"))
        .await;
    let (_, second_token) = server
        .register_body(&original_registration("worker-node-2"))
        .await;
    let (status, error) = server
        .post_as(
            &second_token,
            &format!("/api/v1/nodes/{first}/heartbeat"),
            &json!({"cpu_usage": 50.0}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    let detail = error["detail"].as_str().unwrap_or_default().to_lowercase();
    assert!(detail.contains("different node"), "{error}");
}
