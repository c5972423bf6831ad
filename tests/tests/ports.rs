//! Host ports and container names are node resources: placement never puts two
//! deployments publishing one port (or setting one container name) on a node,
//! says which port is taken, and frees it when the deployment goes; across two
//! PostgreSQL replicas deploying at once too. A built-in template publishes on its
//! `port` parameter, so another port puts a second one on the same node.

use miaas_tests::{TestServer, miaas, postgres_url, registration, send};
use serde_json::{Value, json};

const WEB: &str = "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n";

fn deploy(id: &str, compose: &str) -> Value {
    json!({"deployment_id": id, "template_id": "web", "rendered_compose": compose})
}

fn with_name(name: &str) -> Value {
    let mut body = registration(name);
    body["capabilities"]["gpus"] = json!([]);
    body
}

async fn deployment(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/api/v1/deployments/{id}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_is_one_deployments_per_node() {
    let server = TestServer::spawn().await;
    let (first_id, first_token) = server.register_body(&with_name("n1")).await;
    server.register_body(&with_name("n2")).await;
    for id in ["web-1", "web-2", "web-3", "web-4"] {
        let (status, body) = server.post("/api/v1/deployments", &deploy(id, WEB)).await;
        assert_eq!(status, 202, "{body}");
    }
    let mut placed = Vec::new();
    for id in ["web-1", "web-2", "web-3", "web-4"] {
        let d = deployment(&server, id).await;
        assert_eq!(
            d["requirements"]["ports"],
            json!([{"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}])
        );
        if d["status"] == "scheduled" {
            placed.push(d["node_id"].as_str().unwrap().to_string());
            // where it can be reached: the node's address and the published port
            assert_eq!(
                d["endpoints"],
                json!([{"service": "web", "host": "192.168.1.10", "port": 8080,
                        "target_port": 80, "protocol": "tcp", "url": "http://192.168.1.10:8080"}])
            );
        } else {
            assert_eq!(d["endpoints"], json!([]), "not placed: {d}");
            assert_eq!(d["status"], "pending", "{d}");
            let message = d["message"].as_str().unwrap();
            assert!(
                message.contains("port 8080/tcp is taken on 2 nodes"),
                "{message}"
            );
            assert_eq!(d["placement"]["reasons"]["port_conflict"], 2, "{d}");
        }
    }
    placed.sort();
    placed.dedup();
    assert_eq!(placed.len(), 2, "one per node");

    // the plan names the port and the node holding it
    let (status, plan) = server
        .post("/api/v1/placement/plan", &json!({"rendered_compose": WEB}))
        .await;
    assert_eq!(status, 200, "{plan}");
    assert!(
        plan["summary"]["message"]
            .as_str()
            .unwrap()
            .contains("port 8080/tcp is taken on 2 nodes"),
        "{plan}"
    );
    let reasons = plan["rejected"][0]["reasons"].to_string();
    assert!(reasons.contains("port 8080/tcp taken"), "{reasons}");

    // another address of the same port does not fit either: 0.0.0.0 is every one
    let local = "services:\n  web:\n    image: nginx\n    ports: ['127.0.0.1:8080:80']\n";
    let (_, plan) = server
        .post(
            "/api/v1/placement/plan",
            &json!({"rendered_compose": local}),
        )
        .await;
    assert_eq!(plan["candidates"], json!([]), "{plan}");
    // a port of its own does
    let other = "services:\n  web:\n    image: nginx\n    ports: ['9090:80/udp']\n";
    let (_, plan) = server
        .post(
            "/api/v1/placement/plan",
            &json!({"rendered_compose": other}),
        )
        .await;
    assert_eq!(plan["candidates"].as_array().unwrap().len(), 2, "{plan}");

    // the deployment on n1 changes its port: 8080 is free there again and a
    // waiting one takes it
    let on_first = ["web-1", "web-2", "web-3", "web-4"];
    let mut moved = None;
    for id in on_first {
        if deployment(&server, id).await["node_id"] == json!(first_id) {
            moved = Some(id);
        }
    }
    let moved = moved.expect("one runs on n1");
    let (status, _) = server
        .post("/api/v1/deployments", &deploy(moved, other))
        .await;
    assert_eq!(status, 202);
    let updated = deployment(&server, moved).await;
    assert_eq!(
        updated["node_id"],
        json!(first_id),
        "still fits there: {updated}"
    );
    // a reconcile follows a change that frees capacity
    let on_n1 = |list: &Value| -> Vec<Value> {
        (list.as_array().unwrap().iter())
            .filter(|d| d["node_id"] == json!(first_id) && d["status"] == "scheduled")
            .cloned()
            .collect()
    };
    let list = until(&server, |list| on_n1(list).len() == 2).await;
    let on_n1 = on_n1(&list);

    // deleting frees it: confirmed by the node, a last waiting one is placed
    let holder = on_n1.iter().find(|d| d["deployment_id"] != moved).unwrap()["deployment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = send(
        server
            .client
            .delete(server.url(&format!("/api/v1/deployments/{holder}"))),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = send(
        server
            .client
            .post(server.url(&format!("/api/v1/deployments/{holder}/status")))
            .bearer_auth(&first_token)
            .json(&json!({"status": "deleted"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    until(&server, |list| {
        (list.as_array().unwrap().iter()).all(|d| d["status"] != "pending")
    })
    .await;
}

/// The deployment list once `done` holds of it; fails after 20 s.
async fn until(server: &TestServer, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, list) = server.get("/api/v1/deployments").await;
        if done(&list) {
            return list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never got there: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_templates_port_parameter_is_what_it_publishes_and_what_placement_weighs() {
    let server = TestServer::spawn().await;
    let (node, _) = server.register_body(&with_name("only")).await;
    let nginx = |id: &str, params: Value| json!({"deployment_id": id, "template_id": "nginx", "params": params});
    for (id, params) in [
        ("site-1", json!({})),
        ("site-2", json!({})),
        ("site-3", json!({"port": 8081})),
    ] {
        let (status, body) = server.post("/api/v1/deployments", &nginx(id, params)).await;
        assert_eq!(status, 202, "{body}");
    }

    let first = deployment(&server, "site-1").await;
    assert_eq!(first["status"], "scheduled", "{first}");
    assert_eq!(first["node_id"], node.as_str());
    assert_eq!(
        first["requirements"]["ports"],
        json!([{"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}])
    );
    let compose = first["rendered_compose"].as_str().unwrap();
    assert!(compose.contains("healthcheck:"), "{compose}");

    // the default port again: not on the one node that has it taken
    let second = deployment(&server, "site-2").await;
    assert_eq!(second["status"], "pending", "{second}");
    assert_eq!(
        second["placement"]["reasons"]["port_conflict"], 1,
        "{second}"
    );
    let message = second["message"].as_str().unwrap();
    assert!(
        message.contains("port 8080/tcp is taken on 1 node"),
        "{message}"
    );

    // another `port`: placed beside the first, published there
    let third = deployment(&server, "site-3").await;
    assert_eq!(third["status"], "scheduled", "{third}");
    assert_eq!(third["node_id"], node.as_str());
    assert_eq!(
        third["requirements"]["ports"],
        json!([{"port": 8081, "protocol": "tcp", "host_ip": "0.0.0.0"}])
    );
    assert_eq!(third["endpoints"][0]["port"], 8081, "{third}");
    assert_eq!(third["endpoints"][0]["target_port"], 80, "{third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_name_is_one_deployments_per_node() {
    let server = TestServer::spawn().await;
    server.register_body(&with_name("only")).await;
    let named = "services:\n  vllm:\n    image: vllm/vllm-openai\n    container_name: vllm\n";
    for id in ["a", "b"] {
        let (status, _) = server.post("/api/v1/deployments", &deploy(id, named)).await;
        assert_eq!(status, 202);
    }
    let b = deployment(&server, "b").await;
    assert_eq!(b["status"], "pending", "{b}");
    let message = b["message"].as_str().unwrap();
    assert!(
        message.contains("container name vllm is taken on 1 node"),
        "{message}"
    );
    assert_eq!(
        b["placement"]["reasons"]["container_name_conflict"], 1,
        "{b}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn two_replicas_deploying_at_once_never_book_a_port_twice() {
    let Some(url) = postgres_url().await else {
        eprintln!("MIAAS_TEST_POSTGRES_URL is not set: nothing to run on");
        return;
    };
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("miaas.key");
    let shared = |c: &mut miaas_server::ServerConfig| c.secret_key_file = Some(key_file.clone());
    let a = TestServer::spawn_on(tempfile::tempdir().unwrap(), url.clone(), shared).await;
    let b = TestServer::spawn_on(tempfile::tempdir().unwrap(), url, shared).await;
    for i in 0..5 {
        let (status, _) = a
            .post("/api/v1/nodes/register", &with_name(&format!("p{i}")))
            .await;
        assert_eq!(status, 201);
    }
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            let request = server
                .client
                .post(server.url("/api/v1/deployments"))
                .json(&deploy(&format!("w{i:02}"), WEB));
            tokio::spawn(send(request))
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let (_, list) = b.get("/api/v1/deployments").await;
    let mut nodes: Vec<&str> = (list.as_array().unwrap().iter())
        .filter(|d| d["status"] == "scheduled")
        .map(|d| d["node_id"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 5, "one per node");
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 5, "no node holds port 8080 twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_name_every_published_port_on_the_nodes_address() {
    let server = TestServer::spawn().await;
    let mut node = with_name("edge");
    node["ip"] = json!("10.1.2.3");
    server.register_body(&node).await;
    let compose = "services:\n  api:\n    image: x\n    ports: ['8000-8001:9000-9001', {target: 53, published: 5353, protocol: udp}, '127.0.0.1:7000:70']\n  quiet:\n    image: y\n    expose: ['80']\n";
    let (status, body) = server
        .post("/api/v1/deployments", &deploy("multi", compose))
        .await;
    assert_eq!(status, 202, "{body}");
    let d = deployment(&server, "multi").await;
    assert_eq!(
        d["endpoints"],
        json!([
            {"service": "api", "host": "10.1.2.3", "port": 8000, "target_port": 9000, "protocol": "tcp", "url": "http://10.1.2.3:8000"},
            {"service": "api", "host": "10.1.2.3", "port": 8001, "target_port": 9001, "protocol": "tcp", "url": "http://10.1.2.3:8001"},
            {"service": "api", "host": "10.1.2.3", "port": 5353, "target_port": 53, "protocol": "udp"},
            {"service": "api", "host": "127.0.0.1", "port": 7000, "target_port": 70, "protocol": "tcp", "url": "http://127.0.0.1:7000"}
        ])
    );
    let (_, list) = server.get("/api/v1/deployments").await;
    assert_eq!(list[0]["endpoints"], d["endpoints"], "lists show them too");

    // the CLI lists them: `deployments get`, and `ps -o wide`
    let dir = tempfile::tempdir().unwrap();
    let got = miaas(
        dir.path(),
        &["--server", &server.base, "deployments", "get", "multi"],
        &[],
        None,
    )
    .ok();
    assert!(
        got.stdout.contains("api  http://10.1.2.3:8000 (-> 9000)"),
        "{got:?}"
    );
    assert!(
        got.stdout.contains("api  10.1.2.3:5353/udp (-> 53)"),
        "{got:?}"
    );
    let wide = miaas(
        dir.path(),
        &["--server", &server.base, "ps", "-o", "wide"],
        &[],
        None,
    )
    .ok();
    assert!(
        wide.stdout.contains("ENDPOINTS") && wide.stdout.contains("http://127.0.0.1:7000"),
        "{wide:?}"
    );
}

/// Requirements given with the request say what to reserve, but the host ports
/// and container names the document takes are taken all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_requirements_still_take_the_documents_ports() {
    let server = TestServer::spawn().await;
    server.register_body(&with_name("only")).await;
    for id in ["given-1", "given-2"] {
        let mut body = deploy(id, WEB);
        body["requirements"] = json!({"cpus": 0.1});
        let (status, answer) = server.post("/api/v1/deployments", &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    let first = deployment(&server, "given-1").await;
    assert_eq!(first["status"], "scheduled", "{first}");
    assert_eq!(first["requirements"]["cpus"], 0.1, "{first}");
    assert_eq!(
        first["requirements"]["ports"],
        json!([{"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}])
    );
    let second = deployment(&server, "given-2").await;
    assert_eq!(second["status"], "pending", "{second}");
    assert_eq!(
        second["placement"]["reasons"]["port_conflict"], 1,
        "{second}"
    );
}
