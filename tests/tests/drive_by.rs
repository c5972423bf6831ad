//! A web page the developer visits cannot drive a server running with
//! `--auth off`: no "simple" cross-origin write (JSON must say so), no DNS
//! rebinding (foreign `Host` names are refused), no cross-origin reads but from
//! loopback pages.

use miaas_tests::{TestServer, deployment, send};
use serde_json::json;

async fn nothing_deployed(server: &TestServer) {
    let (_, deployments) = server.get("/api/v1/deployments").await;
    assert_eq!(deployments, json!([]));
}

#[tokio::test]
async fn a_text_plain_cross_origin_post_is_415_and_changes_nothing() {
    let server = TestServer::spawn().await;
    let response = server
        .client
        .post(server.url("/api/v1/deployments"))
        .header("Content-Type", "text/plain")
        .header("Origin", "http://evil.example")
        .body(deployment("drive-by").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        response.headers()
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );
    for content_type in [None, Some("application/x-www-form-urlencoded")] {
        let mut request = server
            .client
            .post(server.url("/api/v1/deployments"))
            .body(deployment("drive-by").to_string());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        assert_eq!(send(request).await.0, 415, "{content_type:?}");
    }
    nothing_deployed(&server).await;
}

#[tokio::test]
async fn json_must_be_declared_with_auth_on_too() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let request = server
        .client
        .post(server.url("/api/v1/deployments"))
        .bearer_auth(&admin)
        .header("Content-Type", "text/plain")
        .body(deployment("d").to_string());
    assert_eq!(send(request).await.0, 415);
    let (_, deployments) = server.get_as(&admin, "/api/v1/deployments").await;
    assert_eq!(deployments, json!([]));
}

#[tokio::test]
async fn with_auth_off_a_foreign_host_is_refused() {
    let server = TestServer::spawn().await;
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
    ] {
        let request = server
            .client
            .post(server.url("/api/v1/deployments"))
            .header("Host", host)
            .json(&deployment("rebound"));
        let (status, body) = send(request).await;
        assert_eq!(status, 421, "{host}: {body}");
        assert!(body["detail"].is_string());
        let read = server
            .client
            .get(server.url("/api/v1/nodes"))
            .header("Host", host);
        assert_eq!(send(read).await.0, 421, "{host}");
    }
    nothing_deployed(&server).await;
    for host in ["localhost", "localhost:8080", "127.0.0.1", "[::1]:9000"] {
        let request = server
            .client
            .get(server.url("/api/v1/nodes"))
            .header("Host", host);
        assert_eq!(send(request).await.0, 200, "{host}");
    }
}

#[tokio::test]
async fn with_auth_on_any_host_is_served() {
    let server = TestServer::secure().await;
    let request = server
        .client
        .get(server.url("/health"))
        .header("Host", "miaas.example.com");
    assert_eq!(send(request).await.0, 200);
}

#[tokio::test]
async fn with_auth_off_cors_allows_loopback_pages_only() {
    let server = TestServer::spawn().await;
    let allowed = |origin: &'static str| {
        let server = &server;
        async move {
            let response = server
                .client
                .request(reqwest::Method::OPTIONS, server.url("/api/v1/deployments"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "content-type")
                .send()
                .await
                .unwrap();
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    assert_eq!(allowed("http://evil.example").await, None);
    assert_eq!(
        allowed("http://localhost:3000").await.as_deref(),
        Some("http://localhost:3000")
    );
    assert_eq!(
        allowed("http://127.0.0.1:5173").await.as_deref(),
        Some("http://127.0.0.1:5173")
    );

    let configured = TestServer::spawn_with(|c| c.cors_origins = Some("*".into())).await;
    let response = configured
        .client
        .get(configured.url("/health"))
        .header("Origin", "http://ui.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}
