//! The deployment lifecycle over HTTP: placement under concurrency, nodes timing
//! out, drain, the node-side endpoints and their auth, the plan, compose errors.

use std::time::Duration;

use miaas_tests::{TestServer, deployment, heartbeat, registration, send};
use serde_json::{Value, json};

fn sized(name: &str, cpus: u32, mem_mb: u64) -> Value {
    let mut body = registration(name);
    body["capabilities"]["cpu_count"] = json!(cpus);
    body["capabilities"]["mem_mb"] = json!(mem_mb);
    body["capabilities"]["gpus"] = json!([]);
    body
}

fn needing(id: &str, requirements: Value) -> Value {
    let mut body = deployment(id);
    body["requirements"] = requirements;
    body
}

#[tokio::test]
async fn concurrent_deploys_fill_the_cluster_exactly_and_never_overcommit() {
    let server = TestServer::spawn().await;
    // 3 nodes of 4 CPUs / 8000 MB; each deployment takes 1 CPU and 2000 MB: 12 fit
    for name in ["n1", "n2", "n3"] {
        server.register_body(&sized(name, 4, 8000)).await;
    }
    let fits = 12;
    let requests = (0..200).map(|i| {
        let client = server.client.clone();
        let url = server.url("/api/v1/deployments");
        let body = needing(&format!("d{i:03}"), json!({"cpus": 1, "mem_mb": 2000}));
        tokio::spawn(async move { send(client.post(url).json(&body)).await })
    });
    let answers = futures_join(requests.collect()).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 202),
        "{answers:?}"
    );

    let (_, list) = server.get("/api/v1/deployments").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 200, "no deployment lost or duplicated");
    let scheduled = list.iter().filter(|d| d["status"] == "scheduled").count();
    let pending = list.iter().filter(|d| d["status"] == "pending").count();
    assert_eq!((scheduled, pending), (fits, 200 - fits));
    assert!(
        list.iter()
            .filter(|d| d["status"] == "pending")
            .all(|d| d["node_id"].is_null())
    );

    let (_, nodes) = server.get("/api/v1/nodes").await;
    for node in nodes.as_array().unwrap() {
        let reserved = &node["reserved"];
        assert!(reserved["cpus"].as_f64().unwrap() <= 4.0, "{node}");
        assert!(reserved["mem_mb"].as_u64().unwrap() <= 8000, "{node}");
        let on_node = list.iter().filter(|d| d["node_id"] == node["id"]).count();
        assert_eq!(on_node, 4, "{node}");
        assert_eq!(node["deployments"].as_array().unwrap().len(), 4);
        assert_eq!(node["free"]["cpus"], 0.0);
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn a_node_that_times_out_loses_its_deployments_and_they_are_placed_again() {
    let server = TestServer::spawn_with(|c| {
        c.heartbeat_timeout = Duration::from_millis(600);
        c.reschedule_grace = Duration::from_millis(300);
        c.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let (a, a_token) = server.register_body(&sized("a", 4, 8000)).await;
    server
        .post("/api/v1/deployments", &needing("d", json!({"cpus": 1})))
        .await;
    let (_, d) = server.get("/api/v1/deployments/d").await;
    assert_eq!(d["node_id"], json!(a));
    let (b, b_token) = server.register_body(&sized("b", 4, 8000)).await;

    // b heartbeats until the test ends; a falls silent
    let keeper = {
        let client = server.client.clone();
        let url = server.url(&format!("/api/v1/nodes/{b}/heartbeat"));
        tokio::spawn(async move {
            loop {
                send(client.post(&url).bearer_auth(&b_token).json(&heartbeat())).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let lost = server
        .wait_for("/api/v1/deployments/d", |d| d["status"] == "lost")
        .await;
    assert_eq!(lost["node_id"], json!(a));
    assert!(lost["message"].as_str().unwrap().contains("offline"));
    let (_, node_a) = server.get(&format!("/api/v1/nodes/{a}")).await;
    assert_eq!(node_a["status"], "offline");

    let moved = server
        .wait_for("/api/v1/deployments/d", |d| d["status"] == "scheduled")
        .await;
    assert_eq!(moved["node_id"], json!(b));

    // a comes back and is told to remove its old copy
    let beat = server
        .post_as(
            &a_token,
            &format!("/api/v1/nodes/{a}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(beat.0, 200);
    let (status, desired) = send(
        server
            .client
            .get(server.url(&format!("/api/v1/nodes/{a}/deployments")))
            .bearer_auth(&a_token),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(desired["deployments"], json!([]));
    assert_eq!(desired["remove"][0]["deployment_id"], "d");
    keeper.abort();
}

#[tokio::test]
async fn the_node_side_endpoints_serve_only_their_node() {
    let server = TestServer::spawn().await;
    let (a, a_token) = server.register_body(&sized("a", 4, 8000)).await;
    let (_, b_token) = server.register_body(&sized("b", 4, 8000)).await;
    server
        .post(
            "/api/v1/deployments",
            &needing("d", json!({"node": "a", "cpus": 2})),
        )
        .await;

    let desired_url = server.url(&format!("/api/v1/nodes/{a}/deployments"));
    assert_eq!(send(server.client.get(&desired_url)).await.0, 401);
    assert_eq!(
        send(server.client.get(&desired_url).bearer_auth("nope"))
            .await
            .0,
        401
    );
    assert_eq!(
        send(server.client.get(&desired_url).bearer_auth(&b_token))
            .await
            .0,
        403
    );
    let unknown = server.url("/api/v1/nodes/ghost/deployments");
    assert_eq!(
        send(server.client.get(&unknown).bearer_auth(&a_token))
            .await
            .0,
        404
    );
    let (status, desired) = send(server.client.get(&desired_url).bearer_auth(&a_token)).await;
    assert_eq!(status, 200);
    let item = &desired["deployments"][0];
    assert_eq!(item["deployment_id"], "d");
    assert_eq!(item["revision"], 1);
    assert_eq!(item["env"]["POSTGRES_PASSWORD"], "secret");
    assert!(
        item["rendered_compose"]
            .as_str()
            .unwrap()
            .contains("services")
    );

    let status_path = "/api/v1/deployments/d/status";
    let running = json!({"status": "running", "message": "1 container up"});
    assert_eq!(server.post(status_path, &running).await.0, 401);
    assert_eq!(server.post_as(&b_token, status_path, &running).await.0, 403);
    let (code, _) = server
        .post_as(&a_token, "/api/v1/deployments/ghost/status", &running)
        .await;
    assert_eq!(code, 404);
    let (code, body) = server
        .post_as(&a_token, status_path, &json!({"status": "exploded"}))
        .await;
    assert_eq!(code, 422, "{body}");
    let (code, body) = server.post_as(&a_token, status_path, &running).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "running");
    assert_eq!(body["message"], "1 container up");

    // deletion completes when the node confirms, and frees the node
    server.delete("/api/v1/deployments/d").await;
    let (_, desired) = send(server.client.get(&desired_url).bearer_auth(&a_token)).await;
    assert_eq!(desired["remove"][0]["deployment_id"], "d");
    let (_, node) = server.get(&format!("/api/v1/nodes/{a}")).await;
    assert_eq!(
        node["reserved"]["cpus"], 2.0,
        "held until the node confirms"
    );
    let (code, body) = server
        .post_as(&a_token, status_path, &json!({"status": "deleted"}))
        .await;
    assert_eq!((code, body["status"].clone()), (200, json!("deleted")));
    let (_, node) = server.get(&format!("/api/v1/nodes/{a}")).await;
    assert_eq!(node["reserved"]["cpus"], 0.0);
}

#[tokio::test]
async fn cordon_tags_drain_and_deregister_over_http() {
    let server = TestServer::spawn().await;
    let (a, _) = server.register_body(&sized("a", 4, 8000)).await;
    let (b, _) = server.register_body(&sized("b", 4, 8000)).await;
    let patch = |id: &str, body: Value| {
        let request = server
            .client
            .patch(server.url(&format!("/api/v1/nodes/{id}")))
            .json(&body);
        send(request)
    };
    let (status, node) = patch(&a, json!({"schedulable": false})).await;
    assert_eq!((status, node["schedulable"].clone()), (200, json!(false)));
    server.post("/api/v1/deployments", &deployment("d1")).await;
    let (_, d1) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d1["node_id"], json!(b));

    let (status, node) = patch(
        &a,
        json!({"schedulable": true, "tags": ["gpu=none", "zone=eu"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(node["tags"], json!(["gpu=none", "zone=eu"]));
    assert_eq!(patch("ghost", json!({"schedulable": false})).await.0, 404);
    assert_eq!(patch(&a, json!({"tags": ["has space"]})).await.0, 422);

    let (status, report) = server
        .post(&format!("/api/v1/nodes/{b}/drain"), &json!({}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["moved"][0]["deployment_id"], "d1");
    assert_eq!(report["moved"][0]["node_id"], json!(a));
    let (_, node_b) = server.get(&format!("/api/v1/nodes/{b}")).await;
    assert_eq!(node_b["schedulable"], false);

    let (status, report) = server.delete(&format!("/api/v1/nodes/{a}")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["pending"],
        json!(["d1"]),
        "b is cordoned, nothing else fits"
    );
    assert_eq!(server.get(&format!("/api/v1/nodes/{a}")).await.0, 404);
    assert_eq!(server.delete(&format!("/api/v1/nodes/{a}")).await.0, 404);
    let (_, d1) = server.get("/api/v1/deployments/d1").await;
    assert_eq!(d1["status"], "pending");
    assert!(
        d1["placement"]["reasons"]["cordoned"].as_u64() == Some(1),
        "{d1}"
    );
}

#[tokio::test]
async fn the_plan_ranks_and_explains_without_changing_anything() {
    let server = TestServer::spawn().await;
    server.register_body(&sized("small", 2, 2000)).await;
    server.register_body(&sized("large", 16, 64000)).await;
    let (status, plan) = server
        .post(
            "/api/v1/placement/plan",
            &json!({"requirements": {"cpus": 4, "mem_mb": 4096}}),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["candidates"][0]["name"], "large");
    assert!(plan["candidates"][0]["score"].is_number());
    assert_eq!(plan["rejected"][0]["name"], "small");
    assert_eq!(plan["rejected"][0]["reasons"].as_array().unwrap().len(), 2);

    let compose = "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        reservations:\n          cpus: '32'\n";
    let (status, plan) = server
        .post(
            "/api/v1/placement/plan",
            &json!({"rendered_compose": compose}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(plan["requirements"]["cpus"], 32.0);
    assert_eq!(plan["candidates"], json!([]));
    assert_eq!(plan["summary"]["reasons"]["insufficient_cpu"], 2);
    assert!(plan["summary"]["message"].as_str().unwrap().contains("CPU"));

    assert_eq!(
        server.post("/api/v1/placement/plan", &json!({})).await.0,
        422
    );
    let (_, nodes) = server.get("/api/v1/nodes").await;
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["reserved"]["cpus"] == 0.0)
    );
    assert_eq!(server.get("/api/v1/deployments").await.1, json!([]));
}

#[tokio::test]
async fn compose_must_be_yaml_with_services_and_its_reservations_are_used() {
    let server = TestServer::spawn().await;
    let mut bad = deployment("bad");
    bad["rendered_compose"] = json!("services:\n  web:\n    image: [nginx\n");
    let (status, body) = server.post("/api/v1/deployments", &bad).await;
    assert_eq!(status, 422);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("rendered_compose") && detail.contains("line"),
        "{detail}"
    );
    bad["rendered_compose"] = json!("version: '3.8'\nvolumes: {}\n");
    let (status, body) = server.post("/api/v1/deployments", &bad).await;
    assert_eq!(status, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("services"),
        "{body}"
    );
    assert_eq!(server.get("/api/v1/deployments/bad").await.0, 404);

    server.register_body(&sized("n", 8, 16000)).await;
    let mut good = deployment("good");
    good["rendered_compose"] = json!(
        "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: 2\n      resources:\n        reservations:\n          cpus: '0.5'\n          memory: 512M\n      placement:\n        constraints: [node.platform.os == linux]\n"
    );
    assert_eq!(server.post("/api/v1/deployments", &good).await.0, 202);
    let (_, d) = server.get("/api/v1/deployments/good").await;
    assert_eq!(d["status"], "scheduled");
    assert_eq!(d["requirements"]["cpus"], 1.0);
    assert_eq!(d["requirements"]["mem_mb"], 1024);
    assert_eq!(d["requirements"]["os"], "linux");
    assert_eq!(d["revision"], 1);
    assert!(d["placement"].is_null());
}
