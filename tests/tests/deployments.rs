//! Deployments over HTTP: create, update, list, get, delete.

use miaas_tests::{TestServer, deployment};
use serde_json::json;

#[tokio::test]
async fn create_returns_202_accepted_and_stores_a_pending_deployment() {
    let server = TestServer::spawn().await;
    let (status, ack) = server
        .post("/api/v1/deployments", &deployment("deploy-123"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(ack["deployment_id"], "deploy-123");
    assert_eq!(ack["status"], "accepted");
    assert!(ack["message"].is_string());

    let (status, d) = server.get("/api/v1/deployments/deploy-123").await;
    assert_eq!(status, 200);
    assert_eq!(d["deployment_id"], "deploy-123");
    assert_eq!(d["template_id"], "postgres");
    assert_eq!(d["action"], "apply");
    assert_eq!(d["status"], "pending");
    assert!(d["message"].as_str().unwrap().contains("postgres"));
    assert!(d["node_id"].is_null());
    assert_eq!(d["env"], json!({"POSTGRES_PASSWORD": "secret"}));
    assert_eq!(d["rendered_compose"], deployment("x")["rendered_compose"]);
    assert_eq!(d["revision"], 1);
    assert!(d["created_at"].is_f64() && d["updated_at"].is_f64());
}

#[tokio::test]
async fn list_shows_every_deployment_oldest_first() {
    let server = TestServer::spawn().await;
    for id in ["one", "two", "three"] {
        assert_eq!(
            server.post("/api/v1/deployments", &deployment(id)).await.0,
            202
        );
    }
    let (status, list) = server.get("/api/v1/deployments").await;
    assert_eq!(status, 200);
    let ids: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("one"), json!("two"), json!("three")]);
    assert!(list[0]["env"].is_object() && list[0]["status"] == "pending");
}

#[tokio::test]
async fn unknown_deployment_is_404_on_get_and_delete() {
    let server = TestServer::spawn().await;
    assert_eq!(server.get("/api/v1/deployments/nope").await.0, 404);
    let (status, body) = server.delete("/api/v1/deployments/nope").await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn deleting_a_never_placed_deployment_answers_deleting_and_ends_deleted() {
    let server = TestServer::spawn().await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let (status, body) = server.delete("/api/v1/deployments/d1").await;
    assert_eq!((status, body["status"].clone()), (200, json!("deleting")));
    let (_, d) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d["status"], "deleted");
}

#[tokio::test]
async fn delete_marks_deleting_and_is_idempotent() {
    let server = TestServer::spawn().await;
    server.register("worker-01").await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let (status, body) = server.delete("/api/v1/deployments/d1").await;
    assert_eq!(status, 200);
    assert_eq!(body["deployment_id"], "d1");
    assert_eq!(body["status"], "deleting");
    let (_, d) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d["status"], "deleting");
    assert_eq!(d["action"], "remove");
    let (again, body) = server.delete("/api/v1/deployments/d1").await;
    assert_eq!((again, body["status"].clone()), (200, json!("deleting")));
}

#[tokio::test]
async fn action_remove_behaves_like_delete() {
    let server = TestServer::spawn().await;
    server.register("worker-01").await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let mut remove = deployment("d1");
    remove["action"] = json!("remove");
    let (status, _) = server.post("/api/v1/deployments", &remove).await;
    assert_eq!(status, 202);
    let (_, d) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d["status"], "deleting");

    let mut unknown = deployment("ghost");
    unknown["action"] = json!("remove");
    assert_eq!(server.post("/api/v1/deployments", &unknown).await.0, 404);
    assert_eq!(server.get("/api/v1/deployments/ghost").await.0, 404);
}

#[tokio::test]
async fn apply_again_updates_only_when_the_spec_changed() {
    let server = TestServer::spawn().await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let (_, first) = server.get("/api/v1/deployments/d1").await;

    let (status, _) = server.post("/api/v1/deployments", &deployment("d1")).await;
    assert_eq!(status, 202);
    let (_, same) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(same, first, "the same spec again changes nothing");

    let mut changed = deployment("d1");
    changed["env"] = json!({"POSTGRES_PASSWORD": "other"});
    server.post("/api/v1/deployments", &changed).await;
    let (_, updated) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(updated["revision"], 2);
    assert_eq!(updated["env"]["POSTGRES_PASSWORD"], "other");
    assert_eq!(updated["created_at"], first["created_at"]);
    let (_, list) = server.get("/api/v1/deployments").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn apply_after_delete_brings_the_deployment_back() {
    let server = TestServer::spawn().await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    server.delete("/api/v1/deployments/d1").await;
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let (_, d) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d["status"], "pending");
    assert_eq!(d["action"], "apply");
    assert_eq!(d["revision"], 2);
}

#[tokio::test]
async fn env_and_action_are_optional() {
    let server = TestServer::spawn().await;
    let body = json!({
        "deployment_id": "minimal", "template_id": "nginx",
        "rendered_compose": "services:\n  web:\n    image: nginx\n"
    });
    assert_eq!(server.post("/api/v1/deployments", &body).await.0, 202);
    let (_, d) = server.get("/api/v1/deployments/minimal").await;
    assert_eq!(d["env"], json!({}));
    assert_eq!(d["action"], "apply");
}
