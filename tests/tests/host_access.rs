//! Operators are not root on every node: a compose document with host access
//! (privileged, host namespaces, capabilities, devices, host paths) is an admin's
//! to deploy unless the server allows operators, and the plan says so.

use miaas_tests::{TestServer, send};
use serde_json::{Value, json};

const PRIVILEGED: &str = "services:\n  root:\n    image: busybox\n    privileged: true\n    \
                          volumes: ['/:/host']\n";

fn request(id: &str, compose: &str) -> Value {
    json!({"deployment_id": id, "template_id": "custom", "rendered_compose": compose})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_privileged_compose_is_refused_and_an_admins_accepted() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let operator = server.api_token("operator").await;
    server.register("worker-01").await;

    let (status, body) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &request("root", PRIVILEGED),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("privileged") && detail.contains("host path /") && detail.contains("admin"),
        "{detail}"
    );
    let (status, _) = server.get_as(&admin, "/api/v1/deployments/root").await;
    assert_eq!(status, 404, "nothing stored");

    // a plain document is the operator's to deploy; making it privileged later is not
    let plain = "services:\n  web:\n    image: nginx\n";
    let (status, _) = server
        .post_as(&operator, "/api/v1/deployments", &request("web", plain))
        .await;
    assert_eq!(status, 202);
    let (status, _) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &request("web", PRIVILEGED),
        )
        .await;
    assert_eq!(status, 403, "an update is checked too");

    let (status, body) = server
        .post_as(&admin, "/api/v1/deployments", &request("root", PRIVILEGED))
        .await;
    assert_eq!(status, 202, "{body}");

    // the plan reports it, for anyone who may plan
    let plan = send(
        server
            .client
            .post(server.url("/api/v1/placement/plan"))
            .bearer_auth(&operator)
            .json(&json!({"rendered_compose": PRIVILEGED})),
    )
    .await;
    assert_eq!(plan.0, 200, "{}", plan.1);
    assert_eq!(
        plan.1["host_access"],
        json!([
            "services.root: privileged",
            "services.root: volumes: host path /"
        ])
    );
    let plain_plan = server
        .post_as(
            &operator,
            "/api/v1/placement/plan",
            &json!({"rendered_compose": plain}),
        )
        .await;
    assert_eq!(plain_plan.1["host_access"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_unsafe_compose_operator_lets_operators_deploy_it() {
    let server = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        c.allow_unsafe_compose = miaas_core::model::Role::Operator;
    })
    .await;
    let operator = server.api_token("operator").await;
    let viewer = server.api_token("viewer").await;
    let (status, body) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &request("root", PRIVILEGED),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = server
        .post_as(&viewer, "/api/v1/deployments", &request("v", PRIVILEGED))
        .await;
    assert_eq!(status, 403, "viewers never deploy");
}
