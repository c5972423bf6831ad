//! Operators are not root on every node: a compose document with host access
//! (privileged, host namespaces, capabilities, devices, host paths, the node's
//! files, other deployments' containers, volumes and networks) is an admin's to
//! deploy unless the server allows operators, and the plan says so. The document
//! is judged as Compose will run it: interpolated with the deployment's `env`,
//! and the node receives exactly that, with nothing left to interpolate.

use miaas_core::compose::interpolate::interpolate;
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
            "services.root: volumes: host path / (use a named volume declared under `volumes:`)"
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

/// Each document resolves, with its `env`, to host access on the node.
fn interpolated_payloads() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "privileged",
            "services:\n  a:\n    image: busybox\n    privileged: ${P}\n",
            json!({"P": "true"}),
        ),
        (
            "network_mode: host",
            "services:\n  a:\n    image: busybox\n    network_mode: ${N}\n",
            json!({"N": "host"}),
        ),
        (
            "pid: host",
            "services:\n  a:\n    image: busybox\n    pid: ${N}\n",
            json!({"N": "host"}),
        ),
        (
            "security_opt: seccomp=unconfined",
            "services:\n  a:\n    image: busybox\n    security_opt: [\"${S}\"]\n",
            json!({"S": "seccomp=unconfined"}),
        ),
        (
            "host path /",
            "services:\n  a:\n    image: busybox\n    volumes: [\"${V}\"]\n",
            json!({"V": "/:/host"}),
        ),
        (
            "host path /etc",
            "services:\n  a:\n    image: busybox\n    volumes:\n      - type: ${T}\n        source: /etc\n        target: /e\n",
            json!({"T": "bind"}),
        ),
        (
            "volumes.root: driver_opts",
            "services:\n  a:\n    image: busybox\nvolumes:\n  root:\n    driver_opts: {type: none, o: bind, device: /}\n",
            json!({}),
        ),
        (
            "secrets.s: file /etc/shadow",
            "services:\n  a:\n    image: busybox\nsecrets:\n  s: {file: /etc/shadow}\n",
            json!({}),
        ),
        (
            "configs.c: file",
            "services:\n  a:\n    image: busybox\nconfigs:\n  c: {file: /etc/shadow}\n",
            json!({}),
        ),
        (
            "networks.h: external",
            "services:\n  a:\n    image: busybox\nnetworks:\n  h: {external: true, name: host}\n",
            json!({}),
        ),
        (
            "env_file",
            "services:\n  a:\n    image: busybox\n    env_file: [/var/lib/miaas/deployments/victim/.env]\n",
            json!({}),
        ),
        (
            "extends",
            "services:\n  a:\n    image: busybox\n    extends: {file: /var/lib/miaas/deployments/victim/compose.yaml, service: web}\n",
            json!({}),
        ),
        (
            "volumes_from",
            "services:\n  a:\n    image: busybox\n    volumes_from: [victim]\n",
            json!({}),
        ),
        (
            "pid: container:other",
            "services:\n  a:\n    image: busybox\n    pid: container:other\n",
            json!({}),
        ),
        (
            "build",
            "services:\n  a:\n    image: x\n    build: {context: /var/lib/miaas}\n",
            json!({}),
        ),
        (
            "ipc: host",
            "services:\n  a:\n    image: vllm\n    ipc: host\n",
            json!({}),
        ),
        (
            "unknown key",
            "services:\n  a:\n    image: busybox\n    some_future_key: 1\n",
            json!({}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_access_is_judged_as_compose_will_resolve_the_document() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let operator = server.api_token("operator").await;
    server.register("worker-01").await;

    for (i, (feature, compose, env)) in interpolated_payloads().into_iter().enumerate() {
        let id = format!("probe-{i}");
        let body = json!({"deployment_id": id, "template_id": "custom",
                          "rendered_compose": compose, "env": env});
        let (status, answer) = server
            .post_as(&operator, "/api/v1/deployments", &body)
            .await;
        assert_eq!(status, 403, "{feature}: {answer}");
        let detail = answer["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(feature), "{feature}: {detail}");
        let (status, _) = server
            .get_as(&admin, &format!("/api/v1/deployments/{id}"))
            .await;
        assert_eq!(status, 404, "{feature}: nothing stored");
        // the plan names it too, with the same environment
        let plan = json!({"rendered_compose": compose, "env": env});
        let (status, planned) = server
            .post_as(&operator, "/api/v1/placement/plan", &plan)
            .await;
        assert_eq!(status, 200, "{planned}");
        let listed = planned["host_access"].to_string();
        assert!(listed.contains(feature), "{feature}: {listed}");
        // an admin may, but no one may run what a node cannot (another file)
        let runs = !feature.starts_with("extends");
        let (status, answer) = server.post_as(&admin, "/api/v1/deployments", &body).await;
        assert_eq!(status, if runs { 202 } else { 422 }, "{feature}: {answer}");
    }
    let body = |compose: &str| json!({"deployment_id": "vllm", "template_id": "custom", "rendered_compose": compose});
    let (_, answer) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &body("services:\n  a:\n    image: vllm\n    ipc: host\n"),
        )
        .await;
    assert!(
        answer["detail"].as_str().unwrap().contains("shm_size"),
        "{answer}"
    );
    let (status, answer) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &body("services:\n  a:\n    image: vllm\n    shm_size: 8gb\n"),
        )
        .await;
    assert_eq!(status, 202, "shm_size is the operator's: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harmless_interpolation_runs_resolved_and_the_node_gets_nothing_to_interpolate() {
    let server = TestServer::secure().await;
    let operator = server.api_token("operator").await;
    let (node_id, node_token) = server.register("worker-01").await;

    let compose = "services:\n  web:\n    image: nginx:${TAG}\n    command: [sh, -c, 'echo $$HOME ${GREETING:-hi}']\n    \
                   environment:\n      - TOKEN=${MIAAS_JOIN_TOKEN}\n      - FROM_ENV\n      - NOT_IN_ENV\n";
    let env = json!({"TAG": "1.27", "FROM_ENV": "x$y", "PLAIN": "p"});
    let (status, answer) = server
        .post_as(
            &operator,
            "/api/v1/deployments",
            &json!({"deployment_id": "web", "template_id": "nginx", "rendered_compose": compose, "env": env}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    // the API shows the document as submitted
    let (_, shown) = server.get_as(&operator, "/api/v1/deployments/web").await;
    assert_eq!(shown["rendered_compose"], compose);

    let (status, desired) = send(
        server
            .client
            .get(server.url(&format!("/api/v1/nodes/{node_id}/deployments")))
            .bearer_auth(&node_token),
    )
    .await;
    assert_eq!(status, 200, "{desired}");
    let sent = desired["deployments"][0]["rendered_compose"]
        .as_str()
        .unwrap();
    let document: Value = serde_json::from_str(sent).unwrap();
    // Compose on the node, whatever its environment holds, reads back exactly
    let as_compose_reads = interpolate(&document, &|_| Some("FROM-THE-NODE")).unwrap();
    let web = &as_compose_reads["services"]["web"];
    assert_eq!(web["image"], "nginx:1.27");
    assert_eq!(web["command"], json!(["sh", "-c", "echo $HOME hi"]));
    assert_eq!(
        web["environment"],
        json!({"TOKEN": "", "FROM_ENV": "x$y", "TAG": "1.27", "PLAIN": "p"}),
        "the deployment's env reaches every service; nothing else does"
    );
    assert!(!sent.contains("${"), "{sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_may_not_steer_compose_or_docker_and_bad_interpolation_is_refused() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let compose = "services:\n  web:\n    image: nginx\n";
    for name in [
        "COMPOSE_FILE",
        "COMPOSE_PROJECT_NAME",
        "DOCKER_HOST",
        "DOCKER_CONFIG",
    ] {
        let body = json!({"deployment_id": "web", "template_id": "t",
                          "rendered_compose": compose, "env": {name: "x"}});
        let (status, answer) = server.post_as(&admin, "/api/v1/deployments", &body).await;
        assert_eq!(status, 422, "{name}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(name),
            "{answer}"
        );
    }
    let body = json!({"deployment_id": "web", "template_id": "t",
                      "rendered_compose": compose, "env": {"COMPOSE_PROFILES": "debug"}});
    let (status, answer) = server.post_as(&admin, "/api/v1/deployments", &body).await;
    assert_eq!(status, 202, "profiles are the deployment's: {answer}");

    for (compose, says) in [
        (
            "services:\n  web:\n    image: ${IMAGE:?give IMAGE}\n",
            "give IMAGE",
        ),
        (
            "services:\n  web:\n    image: nginx\n    command: echo $1\n",
            "invalid interpolation",
        ),
    ] {
        let body = json!({"deployment_id": "bad", "template_id": "t", "rendered_compose": compose});
        let (status, answer) = server.post_as(&admin, "/api/v1/deployments", &body).await;
        assert_eq!(status, 422, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(says),
            "{answer}"
        );
    }
    let (status, _) = server.get_as(&admin, "/api/v1/deployments/bad").await;
    assert_eq!(status, 404);
}
