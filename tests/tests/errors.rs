//! Bad input: JSON `detail`, the right status, and nothing changed.

use miaas_tests::{TestServer, deployment, registration, send};
use serde_json::{Value, json};

async fn assert_nothing_stored(server: &TestServer) {
    assert_eq!(server.get("/api/v1/nodes").await.1, json!([]));
    assert_eq!(server.get("/api/v1/deployments").await.1, json!([]));
}

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

#[tokio::test]
async fn malformed_json_is_400_with_detail() {
    let server = TestServer::spawn().await;
    for path in ["/api/v1/nodes/register", "/api/v1/deployments"] {
        for raw in ["{\"name\": ", "not json", "", "[1, 2"] {
            let request = server
                .client
                .post(server.url(path))
                .header("content-type", "application/json")
                .body(raw);
            let (status, body) = send(request).await;
            assert!(status == 400 || status == 422, "{path} {raw:?}: {status}");
            assert!(!detail(&body).is_empty());
        }
    }
    assert_nothing_stored(&server).await;
}

#[tokio::test]
async fn missing_fields_are_422_naming_the_field() {
    let server = TestServer::spawn().await;
    for field in ["name", "ip", "capabilities"] {
        let mut body = registration("a");
        body.as_object_mut().unwrap().remove(field);
        let (status, error) = server.post("/api/v1/nodes/register", &body).await;
        assert_eq!(status, 422, "{field}");
        assert!(detail(&error).contains(field), "{error}");
    }
    // disk_mb, gpus and docker are optional, as in the original
    for field in ["os", "cpu_count", "mem_mb"] {
        let mut body = registration("a");
        body["capabilities"].as_object_mut().unwrap().remove(field);
        let (status, error) = server.post("/api/v1/nodes/register", &body).await;
        assert_eq!(status, 422, "{field}");
        assert!(detail(&error).contains(field), "{error}");
    }
    for field in ["deployment_id", "template_id", "rendered_compose"] {
        let mut body = deployment("d");
        body.as_object_mut().unwrap().remove(field);
        let (status, error) = server.post("/api/v1/deployments", &body).await;
        assert_eq!(status, 422, "{field}");
        assert!(detail(&error).contains(field), "{error}");
    }
    assert_nothing_stored(&server).await;
}

#[tokio::test]
async fn mistyped_fields_are_422_naming_the_field() {
    let server = TestServer::spawn().await;
    let cases = [
        ("name", json!(42)),
        ("ip", json!(["1.2.3.4"])),
        ("capabilities", json!("many")),
    ];
    for (field, value) in cases {
        let mut body = registration("a");
        body[field] = value;
        let (status, error) = server.post("/api/v1/nodes/register", &body).await;
        assert_eq!(status, 422, "{field}");
        assert!(detail(&error).contains(field), "{error}");
    }
    let mut body = registration("a");
    body["capabilities"]["cpu_count"] = json!("eight");
    let (status, error) = server.post("/api/v1/nodes/register", &body).await;
    assert_eq!(status, 422);
    assert!(detail(&error).contains("cpu_count"), "{error}");

    let mut body = deployment("d");
    body["action"] = json!("explode");
    let (status, error) = server.post("/api/v1/deployments", &body).await;
    assert_eq!(status, 422);
    assert!(detail(&error).contains("action"), "{error}");
    assert_nothing_stored(&server).await;
}

#[tokio::test]
async fn empty_or_overlong_names_invalid_ips_and_negative_resources_are_422() {
    let server = TestServer::spawn().await;
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for (name, why) in [("", "name"), ("   ", "name")] {
        let mut body = registration("a");
        body["name"] = json!(name);
        cases.push((body, why));
    }
    let mut long = registration("a");
    long["name"] = json!("n".repeat(300));
    cases.push((long, "name"));
    for ip in ["999.1.1.1", "not-an-ip", ""] {
        let mut body = registration("a");
        body["ip"] = json!(ip);
        cases.push((body, "ip"));
    }
    for field in ["cpu_count", "mem_mb", "disk_mb"] {
        let mut body = registration("a");
        body["capabilities"][field] = json!(-1);
        cases.push((body, field));
    }
    let mut gpu = registration("a");
    gpu["capabilities"]["gpus"][0]["mem_mb"] = json!(-24000);
    cases.push((gpu, "mem_mb"));
    for (body, field) in cases {
        let (status, error) = server.post("/api/v1/nodes/register", &body).await;
        assert_eq!(status, 422, "{body}");
        assert!(detail(&error).contains(field), "{field}: {error}");
    }

    let mut empty_id = deployment("d");
    empty_id["deployment_id"] = json!("");
    let mut long_id = deployment("d");
    long_id["deployment_id"] = json!("d".repeat(300));
    let mut empty_template = deployment("d");
    empty_template["template_id"] = json!(" ");
    for body in [empty_id, long_id, empty_template] {
        let (status, _) = server.post("/api/v1/deployments", &body).await;
        assert_eq!(status, 422, "{body}");
    }
    assert_nothing_stored(&server).await;
}

#[tokio::test]
async fn a_body_over_one_mib_is_413() {
    let server = TestServer::spawn().await;
    let mut body = deployment("big");
    body["rendered_compose"] = json!("x".repeat(1024 * 1024 + 1));
    let (status, error) = server.post("/api/v1/deployments", &body).await;
    assert_eq!(status, 413);
    assert!(!detail(&error).is_empty());
    let mut node = registration("big");
    node["capabilities"]["blob"] = json!("y".repeat(2 * 1024 * 1024));
    assert_eq!(server.post("/api/v1/nodes/register", &node).await.0, 413);
    assert_nothing_stored(&server).await;
}

#[tokio::test]
async fn unknown_routes_are_404_json_and_wrong_methods_405_json() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(detail(&body), "Not Found");
    let (status, body) = send(server.client.put(server.url("/api/v1/deployments"))).await;
    assert_eq!(status, 405);
    assert!(!detail(&body).is_empty());
}

#[tokio::test]
async fn hostile_bodies_never_crash_the_server() {
    let server = TestServer::spawn().await;
    let bodies = [
        json!(null),
        json!([]),
        json!(1e308),
        json!({"name": "\u{0000}", "ip": "::1", "capabilities": {}}),
        json!({"name": "a", "ip": "1.1.1.1", "capabilities": {"os": "linux", "cpu_count": 1e40, "mem_mb": 1, "disk_mb": 1}}),
        json!({"deployment_id": "a/b", "template_id": "t", "rendered_compose": "x"}),
        json!({"deployment_id": "d", "template_id": "t", "rendered_compose": "x", "env": {"": "v"}}),
        json!({"deployment_id": "d", "template_id": "t", "rendered_compose": "x", "env": {"A": 1}}),
    ];
    for body in bodies {
        for path in ["/api/v1/nodes/register", "/api/v1/deployments"] {
            let (status, error) = server.post(path, &body).await;
            assert!((400..500).contains(&status), "{path} {body}: {status}");
            assert!(!detail(&error).is_empty());
        }
    }
    let deep = "[".repeat(10_000);
    let request = server
        .client
        .post(server.url("/api/v1/deployments"))
        .header("content-type", "application/json")
        .body(deep);
    let (status, _) = send(request).await;
    assert!(status == 400 || status == 422, "{status}");
    assert_eq!(server.get("/health").await.0, 200);
    assert_nothing_stored(&server).await;
}
