//! Whoever holds the join token cannot become an existing node: re-registering a
//! known name needs that node's own token or an admin; with the join token alone it
//! is `409` and changes nothing.

use miaas_tests::{TestServer, deployment, heartbeat, registration};
use serde_json::{Value, json};

async fn place_secret_on(server: &TestServer, admin: &str, node: &str) {
    let mut body = deployment("db");
    body["env"] = json!({"DB_PASSWORD": "s3cret-value"});
    body["requirements"] = json!({"node": node});
    let (status, answer) = server.post_as(admin, "/api/v1/deployments", &body).await;
    assert_eq!(status, 202, "{answer}");
}

fn env_of(desired: &Value) -> Value {
    desired["deployments"][0]["env"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_token_cannot_take_over_an_existing_node() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (victim_id, victim_token) = server.register("victim").await;
    place_secret_on(&server, &admin, "victim").await;
    let desired_path = format!("/api/v1/nodes/{victim_id}/deployments");
    let (_, desired) = server.get_as(&victim_token, &desired_path).await;
    assert_eq!(env_of(&desired)["DB_PASSWORD"], "s3cret-value");

    let mut takeover = registration("victim");
    takeover["ip"] = json!("203.0.113.66");
    let (status, answer) = server
        .post_as(&server.join_token, "/api/v1/nodes/register", &takeover)
        .await;
    assert_eq!(status, 409, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("miaas nodes rm victim"), "{detail}");
    assert!(answer.get("node_token").is_none() && answer.get("node_id").is_none());

    // nothing changed: the real node keeps working and keeps its secret
    let heartbeat_path = format!("/api/v1/nodes/{victim_id}/heartbeat");
    let (status, _) = server
        .post_as(&victim_token, &heartbeat_path, &heartbeat())
        .await;
    assert_eq!(status, 200);
    let (status, desired) = server.get_as(&victim_token, &desired_path).await;
    assert_eq!(status, 200);
    assert_eq!(env_of(&desired)["DB_PASSWORD"], "s3cret-value");
    let (_, node) = server
        .get_as(&admin, &format!("/api/v1/nodes/{victim_id}"))
        .await;
    assert_eq!(node["ip"], "192.168.1.10", "the address was not changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_re_registers_itself_with_its_own_token_and_an_admin_may_too() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (id, token) = server.register("worker-01").await;
    server.register("worker-02").await;

    let mut updated = registration("worker-01");
    updated["capabilities"]["cpu_count"] = json!(32);
    let (status, answer) = server
        .post_as(&token, "/api/v1/nodes/register", &updated)
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["node_id"], json!(id));
    let fresh = answer["node_token"].as_str().unwrap().to_string();
    let heartbeat_path = format!("/api/v1/nodes/{id}/heartbeat");
    assert_eq!(
        server
            .post_as(&token, &heartbeat_path, &heartbeat())
            .await
            .0,
        401,
        "the old token was rotated"
    );
    assert_eq!(
        server
            .post_as(&fresh, &heartbeat_path, &heartbeat())
            .await
            .0,
        200
    );
    let (_, node) = server.get_as(&admin, &format!("/api/v1/nodes/{id}")).await;
    assert_eq!(node["capabilities"]["cpu_count"], 32);

    // a node's token is no key to another node, nor to a new name
    for name in ["worker-02", "brand-new"] {
        let (status, answer) = server
            .post_as(&fresh, "/api/v1/nodes/register", &registration(name))
            .await;
        assert_eq!(status, 403, "{name}: {answer}");
    }

    let (status, answer) = server
        .post_as(&admin, "/api/v1/nodes/register", &registration("worker-01"))
        .await;
    assert_eq!(status, 201, "an admin re-registers: {answer}");
    assert_eq!(answer["node_id"], json!(id));
}

#[tokio::test]
async fn with_auth_off_any_re_registration_updates_the_node_as_in_the_original() {
    let server = TestServer::spawn().await;
    let (id, _) = server.register("worker-01").await;
    let (status, answer) = server
        .post("/api/v1/nodes/register", &registration("worker-01"))
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["node_id"], json!(id));
}

/// A node may choose its own token when it registers (so that it can retry a
/// registration whose answer it lost): the answer carries it, it works, and with it
/// as its own credential the node registers again under its name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_chosen_token_proves_the_node_when_an_answer_was_lost() {
    let server = TestServer::secure().await;
    let chosen = format!("mnode_{}", "7a".repeat(32));
    let mut body = registration("worker-09");
    body["node_token"] = json!(chosen);
    let (status, answer) = server
        .post_as(&server.join_token, "/api/v1/nodes/register", &body)
        .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["node_token"], json!(chosen));
    let id = answer["node_id"].as_str().unwrap().to_string();
    let heartbeat_path = format!("/api/v1/nodes/{id}/heartbeat");
    assert_eq!(
        server
            .post_as(&chosen, &heartbeat_path, &heartbeat())
            .await
            .0,
        200
    );

    // the answer never arrived: the retry with the join token is refused ...
    let (status, _) = server
        .post_as(&server.join_token, "/api/v1/nodes/register", &body)
        .await;
    assert_eq!(status, 409);
    // ... and the chosen token proves the node
    let (status, again) = server
        .post_as(&chosen, "/api/v1/nodes/register", &body)
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["node_id"], json!(id));
    assert_eq!(again["node_token"], json!(chosen), "the token stays");

    // a token of another form would carry less than 256 random bits
    for weak in [
        "mnode_1234",
        "password123",
        &format!("mnode_{}", "AB".repeat(32)),
    ] {
        let mut body = registration("worker-10");
        body["node_token"] = json!(weak);
        let (status, error) = server
            .post_as(&server.join_token, "/api/v1/nodes/register", &body)
            .await;
        assert_eq!(status, 422, "{weak}: {error}");
        assert!(error["detail"].as_str().unwrap().contains("node_token"));
    }
}
