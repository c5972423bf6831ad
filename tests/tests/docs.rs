//! `/`, `/health`, `/openapi.json`, `/docs` and `/redoc`.

use miaas_tests::TestServer;
use serde_json::Value;

#[tokio::test]
async fn root_describes_the_api() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/").await;
    assert_eq!(status, 200);
    assert!(body["message"].is_string());
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["docs"], "/docs");
}

#[tokio::test]
async fn health_is_200_while_the_database_answers_and_503_once_it_is_gone() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("healthy")));

    server.store.close().await;
    let (status, body) = server.get("/health").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    // other routes say so too, as JSON
    let (status, body) = server.get("/api/v1/nodes").await;
    assert_eq!(status, 503);
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn openapi_documents_every_route_with_its_errors() {
    let server = TestServer::spawn().await;
    let (status, doc) = server.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/", "get", vec!["200"]),
        ("/health", "get", vec!["200", "503"]),
        (
            "/api/v1/nodes/register",
            "post",
            vec!["201", "400", "413", "422"],
        ),
        ("/api/v1/nodes", "get", vec!["200"]),
        ("/api/v1/nodes/{node_id}", "get", vec!["200", "404"]),
        (
            "/api/v1/nodes/{node_id}/heartbeat",
            "post",
            vec!["200", "401", "403", "404", "422"],
        ),
        ("/api/v1/deployments", "post", vec!["202", "400", "422"]),
        ("/api/v1/deployments", "get", vec!["200"]),
        (
            "/api/v1/deployments/{deployment_id}",
            "get",
            vec!["200", "404"],
        ),
        (
            "/api/v1/deployments/{deployment_id}",
            "delete",
            vec!["200", "404"],
        ),
    ];
    for (path, method, statuses) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} undocumented");
        for status in statuses {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} lacks {status}"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Node",
        "NodeRegistration",
        "Heartbeat",
        "Deployment",
        "DeploymentRequest",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let statuses = &schemas["DeploymentStatus"]["enum"];
    for status in [
        "pending",
        "scheduled",
        "running",
        "failed",
        "deleting",
        "deleted",
        "lost",
    ] {
        assert!(statuses.as_array().unwrap().contains(&Value::from(status)));
    }
}

#[tokio::test]
async fn swagger_ui_and_redoc_are_served_without_any_cdn() {
    let server = TestServer::spawn().await;
    for page in ["/docs", "/docs/", "/redoc"] {
        let response = server.client.get(server.url(page)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{page}");
        assert_eq!(response.url().path(), page, "answered, not redirected");
        let html = response.text().await.unwrap();
        assert!(html.contains("<script"), "{page}");
        for tag in html
            .split('<')
            .filter(|t| t.starts_with("script") || t.starts_with("link"))
        {
            assert!(
                !tag.contains("http://") && !tag.contains("https://"),
                "{page} loads {tag}"
            );
        }
        for script in html.split("src=\"").skip(1) {
            let src = script.split('"').next().unwrap();
            let url = if src.starts_with('/') {
                server.url(src)
            } else {
                // the Swagger page names its folder in <base href="/docs/">
                let folder = if page.starts_with("/docs") {
                    "/docs/"
                } else {
                    page
                };
                format!("{}{}", server.url(folder), src.trim_start_matches("./"))
            };
            let asset = server.client.get(&url).send().await.unwrap();
            assert_eq!(asset.status(), 200, "{url}");
            assert!(asset.bytes().await.unwrap().len() > 100, "{url}");
        }
    }
    let init = server
        .client
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn with_auth_off_the_document_asks_for_no_credential() {
    let open = TestServer::spawn().await;
    let (_, doc) = open.get("/openapi.json").await;
    assert!(doc.get("security").is_none_or(Value::is_null), "{doc}");
    let schemes = &doc["components"]["securitySchemes"];
    assert!(
        schemes.is_null() || schemes.as_object().is_some_and(|s| s.is_empty()),
        "{schemes}"
    );
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            operations += 1;
            assert!(
                operation.get("security").is_none(),
                "{method} {path}: {}",
                operation["security"]
            );
        }
    }
    assert!(operations > 20, "{operations}");

    // the same routes declare their credentials when auth is on
    let secure = TestServer::secure().await;
    let (_, doc) = secure.get("/openapi.json").await;
    assert!(doc["paths"]["/api/v1/nodes"]["get"]["security"].is_array());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
