//! A deployment's env values reach only the node it runs on (and an admin who asks);
//! no secret or credential reaches a log line.

use std::time::{Duration, Instant};

use miaas_tests::{ServerProcess, TestServer, binary, heartbeat, registration, send};
use serde_json::{Value, json};

const SECRET: &str = "hunter2-very-secret";

fn secret_deployment(id: &str) -> Value {
    json!({
        "deployment_id": id,
        "template_id": "postgres",
        "rendered_compose": "services:\n  db:\n    image: postgres:16\n",
        "env": {"POSTGRES_PASSWORD": SECRET, "POSTGRES_DB": "app"},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_values_are_redacted_for_everyone_but_the_node_and_an_admin_who_reveals() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let viewer = server.api_token("viewer").await;
    let operator = server.api_token("operator").await;
    let (node_id, node_token) = server.register("worker-01").await;
    let (status, _) = server
        .post_as(&operator, "/api/v1/deployments", &secret_deployment("db"))
        .await;
    assert_eq!(status, 202);

    // every read a viewer or operator can make: the secret never appears
    let reads = [
        "/api/v1/deployments".to_string(),
        "/api/v1/deployments/db".to_string(),
        "/api/v1/nodes".to_string(),
        format!("/api/v1/nodes/{node_id}"),
    ];
    for token in [&viewer, &operator, &admin] {
        for path in &reads {
            let response = server
                .client
                .get(server.url(path))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{path}");
            let text = response.text().await.expect("body");
            assert!(!text.contains(SECRET), "{path} leaks the secret: {text}");
        }
    }
    let (_, shown) = server.get_as(&viewer, "/api/v1/deployments/db").await;
    assert_eq!(shown["env"]["POSTGRES_PASSWORD"], "***");
    assert_eq!(
        shown["env"]["POSTGRES_DB"], "***",
        "every value is a secret"
    );
    let (_, listed) = server.get_as(&admin, "/api/v1/deployments").await;
    assert_eq!(
        listed[0]["env"]["POSTGRES_PASSWORD"], "***",
        "admins too, unless they ask"
    );

    // only an admin may reveal
    for token in [&viewer, &operator] {
        let (status, body) = server
            .get_as(token, "/api/v1/deployments/db?reveal=true")
            .await;
        assert_eq!(status, 403, "{body}");
        assert!(!body.to_string().contains(SECRET));
    }
    let (status, revealed) = server
        .get_as(&admin, "/api/v1/deployments/db?reveal=true")
        .await;
    assert_eq!(status, 200);
    assert_eq!(revealed["env"]["POSTGRES_PASSWORD"], SECRET);

    // the node it is placed on gets it in clear through its desired state
    let (status, desired) = server
        .get_as(&node_token, &format!("/api/v1/nodes/{node_id}/deployments"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        desired["deployments"][0]["env"]["POSTGRES_PASSWORD"],
        SECRET
    );
    // its status report's answer does not repeat it
    let (status, reported) = server
        .post_as(
            &node_token,
            "/api/v1/deployments/db/status",
            &json!({"status": "running"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(reported["env"]["POSTGRES_PASSWORD"], "***");

    // another node cannot read it
    let (_, other_token) = server.register("worker-02").await;
    let (status, body) = server
        .get_as(
            &other_token,
            &format!("/api/v1/nodes/{node_id}/deployments"),
        )
        .await;
    assert_eq!(status, 403);
    assert!(!body.to_string().contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_the_original_api_shows_env_as_before() {
    let server = TestServer::spawn().await;
    let (status, _) = server
        .post("/api/v1/deployments", &secret_deployment("db"))
        .await;
    assert_eq!(status, 202);
    let (_, shown) = server.get("/api/v1/deployments/db").await;
    assert_eq!(shown["env"]["POSTGRES_PASSWORD"], SECRET);
}

/// Waits until the server printed a line starting with `prefix`; returns its value.
fn printed_value(server: &ServerProcess, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = server
            .printed()
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::to_string))
        {
            return line;
        }
        assert!(Instant::now() < deadline, "never printed {prefix}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_and_credentials_never_reach_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0", "--log-level", "debug"],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    let password = printed_value(&server, "MIAAS_ADMIN_PASSWORD=");
    let join = printed_value(&server, "MIAAS_JOIN_TOKEN=");
    let client = reqwest::Client::new();
    let (status, login) = send(
        client
            .post(server.url("/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": password})),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    let admin = login["access_token"].as_str().expect("token").to_string();
    let (_, wrong) = send(
        client
            .post(server.url("/api/v1/auth/token"))
            .json(&json!({"username": "admin", "password": "not-the-password-1"})),
    )
    .await;
    assert!(wrong["detail"].is_string());
    let (_, created) = send(
        client
            .post(server.url("/api/v1/tokens"))
            .bearer_auth(&admin)
            .json(&json!({"name": "ci", "role": "operator"})),
    )
    .await;
    let api_token = created["token"].as_str().expect("api token").to_string();
    let (_, reg) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .bearer_auth(&join)
            .json(&registration("worker-01")),
    )
    .await;
    let node_id = reg["node_id"].as_str().expect("node_id").to_string();
    let node_token = reg["node_token"].as_str().expect("node_token").to_string();
    let (status, _) = send(
        client
            .post(server.url("/api/v1/deployments"))
            .bearer_auth(&api_token)
            .json(&secret_deployment("db")),
    )
    .await;
    assert_eq!(status, 202);
    // an invalid update with the secret in it: the error must not echo it
    let mut bad = secret_deployment("db");
    bad["env"]["BAD=NAME"] = json!(SECRET);
    let (status, error) = send(
        client
            .post(server.url("/api/v1/deployments"))
            .bearer_auth(&api_token)
            .json(&bad),
    )
    .await;
    assert_eq!(status, 422);
    assert!(!error.to_string().contains(SECRET), "{error}");
    for path in [
        format!("/api/v1/nodes/{node_id}/deployments"),
        format!("/api/v1/nodes/{node_id}/heartbeat"),
    ] {
        let request = if path.ends_with("heartbeat") {
            client.post(server.url(&path)).json(&heartbeat())
        } else {
            client.get(server.url(&path))
        };
        let (status, _) = send(request.bearer_auth(&node_token)).await;
        assert_eq!(status, 200, "{path}");
    }
    let (status, _) = send(
        client
            .get(server.url("/api/v1/deployments/db?reveal=true"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200);

    let (exit, log) = server.terminate();
    assert!(exit.success());
    assert!(log.len() > 5, "the debug log was captured: {log:?}");
    let log = log.join("\n");
    for (what, secret) in [
        ("env value", SECRET),
        ("admin password", password.as_str()),
        ("wrong password", "not-the-password-1"),
        ("join token", join.as_str()),
        ("access token", admin.as_str()),
        ("API token", api_token.as_str()),
        ("node token", node_token.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log:\n{log}");
    }
}
