//! Lists come in pages: `limit` (default and most 1000) and the opaque `cursor` of
//! `X-Next-Cursor` / `Link`; following them gives the whole list once, in order.

use miaas_tests::{TestServer, deployment, miaas};
use serde_json::Value;

/// Pages of `path` at `limit` each: the items, and how many pages it took.
async fn page_through(server: &TestServer, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{path}?limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let response = server.client.get(server.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let next = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(next) = &next {
            let link = response.headers()["link"].to_str().unwrap().to_string();
            assert!(link.contains(&format!("cursor={next}")) && link.ends_with("rel=\"next\""));
        }
        let page: Vec<Value> = response.json().await.unwrap();
        assert!(page.len() <= limit);
        pages += 1;
        items.extend(page);
        match next {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_and_deployments_page_through_in_order() {
    let server = TestServer::spawn().await;
    for name in ["e", "a", "d", "b", "c"] {
        server.register(name).await;
    }
    for id in ["d1", "d2", "d3", "d4", "d5"] {
        assert_eq!(
            server.post("/api/v1/deployments", &deployment(id)).await.0,
            202
        );
    }
    for path in ["/api/v1/nodes", "/api/v1/deployments"] {
        let (_, whole) = server.get(path).await;
        let (paged, pages) = page_through(&server, path, 2).await;
        assert_eq!(pages, 3, "{path}: 2 + 2 + 1");
        assert_eq!(Value::Array(paged), whole, "{path}");
        let (one_page, pages) = page_through(&server, path, 1000).await;
        assert_eq!((Value::Array(one_page), pages), (whole, 1));
    }
    let (_, names) = server.get("/api/v1/nodes").await;
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);

    // the CLI follows the pages
    let dir = tempfile::tempdir().unwrap();
    let run = miaas(
        dir.path(),
        &["--server", &server.base, "ps", "-o", "json"],
        &[("MIAAS_PAGE_SIZE", "2")],
        None,
    )
    .ok();
    assert_eq!(run.json().as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn bad_limits_and_cursors_are_422() {
    let server = TestServer::spawn().await;
    for query in [
        "limit=0",
        "limit=1001",
        "limit=many",
        "cursor=zz",
        "cursor=%20x",
    ] {
        for path in ["/api/v1/nodes", "/api/v1/deployments"] {
            let (status, body) = server.get(&format!("{path}?{query}")).await;
            assert_eq!(status, 422, "{path}?{query}: {body}");
            assert!(body["detail"].is_string());
        }
    }
}
