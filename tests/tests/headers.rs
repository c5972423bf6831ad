//! Security headers: the dashboard and the API cannot be framed by another site,
//! sniffed, or leak their URLs; the dashboard runs scripts only from the server.
//! In a real Chromium: a page of another origin cannot frame the dashboard, the
//! Swagger UI and ReDoc still work under their policy, and the questions before
//! a drain still come (from a script file, not an inline handler).

use miaas_tests::{Browser, PAGE_PATIENCE, TestServer};
use reqwest::header::HeaderMap;

/// Fails unless `headers` are the security headers, with a policy that allows
/// no framing and scripts only from the server itself.
fn assert_secured(what: &str, headers: &HeaderMap) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("x-frame-options"), "DENY", "{what}: {headers:?}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "same-origin", "{what}");
    let policy = header("content-security-policy");
    let directives: Vec<&str> = policy.split(';').map(str::trim).collect();
    assert!(
        directives.contains(&"frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(
        directives.contains(&"script-src 'self'"),
        "{what}: {policy}"
    );
    assert!(!policy.contains("unsafe-eval"), "{what}: {policy}");
}

#[tokio::test]
async fn the_dashboard_the_api_and_the_docs_send_the_security_headers() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let client = reqwest::Client::new();
    let answers = [
        ("the login page", client.get(server.url("/ui/login"))),
        (
            "a dashboard asset",
            client.get(server.url("/ui/assets/htmx.min.js")),
        ),
        (
            "an API answer",
            client.get(server.url("/api/v1/nodes")).bearer_auth(&admin),
        ),
        ("an API refusal", client.get(server.url("/api/v1/nodes"))),
        ("an unknown path", client.get(server.url("/nowhere"))),
        ("Swagger UI", client.get(server.url("/docs"))),
        ("ReDoc", client.get(server.url("/redoc"))),
    ];
    let mut statuses = Vec::new();
    for (what, request) in answers {
        let response = request.send().await.unwrap();
        statuses.push(response.status().as_u16());
        assert_secured(what, response.headers());
    }
    assert_eq!(statuses, [200, 200, 200, 401, 404, 200, 200]);

    // the dashboard's policy: no inline script and no <style> element; only
    // style attributes (the usage bars) are inline
    let response = client.get(server.url("/ui/login")).send().await.unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let inline: Vec<&str> = policy
        .split(';')
        .map(str::trim)
        .filter(|d| d.contains("'unsafe-inline'"))
        .collect();
    assert_eq!(inline, ["style-src-attr 'unsafe-inline'"], "{policy}");
    assert!(policy.contains("style-src 'self';"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("onsubmit") && !page.contains("<script>"),
        "{page}"
    );
}

/// A page of another origin that frames `url`.
async fn framing_page(url: &str) -> (String, tokio::task::JoinHandle<()>) {
    let html = format!("<!doctype html><title>framer</title><iframe id=f src=\"{url}\"></iframe>");
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!(
        "http://localhost:{}/",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_browser,
    ignore = "needs Chromium: apt-get install chromium chromium-driver"
)]
async fn another_site_cannot_frame_the_dashboard_and_the_docs_still_work() {
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    let server = TestServer::spawn().await;
    let (node_id, _) = server.register("worker-01").await;

    // framed by another origin: the browser refuses to show the dashboard
    let (framer, task) = framing_page(&server.url("/ui/login")).await;
    browser.open(&framer).await;
    let deadline = std::time::Instant::now() + PAGE_PATIENCE;
    let mut errors = Vec::new();
    while !errors
        .iter()
        .any(|e: &String| e.contains("frame-ancestors") || e.contains("X-Frame-Options"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the dashboard was shown in another site's frame: {errors:#?}"
        );
        errors.extend(browser.console_errors().await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    task.abort();

    // the documentation pages render under their policy, without a violation
    let _ = browser.console_errors().await;
    browser.open(&server.url("/docs")).await;
    let title = browser.text(".swagger-ui .info .title").await;
    assert!(title.contains("MIaaS Control Plane"), "{title}");
    let paths = browser.text(".swagger-ui .opblock-summary-path").await;
    assert!(!paths.is_empty());
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "Swagger UI: console errors: {errors:#?}");
    browser.open(&server.url("/redoc")).await;
    browser
        .wait_for_text("h1", |t| t.contains("MIaaS Control Plane"))
        .await;
    // ReDoc's search runs in its worker
    browser
        .fill("input[placeholder='Search...']", "heartbeat")
        .await;
    browser
        .wait_for_text("[data-role='search:results']", |t| t.contains("eartbeat"))
        .await;
    // ReDoc's bundle always asks for Redocly's logo from its CDN: refused (nothing
    // is fetched from outside), which is the one message allowed here
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| !e.contains("https://cdn.redoc.ly/"))
        .collect();
    assert!(errors.is_empty(), "ReDoc: console errors: {errors:#?}");

    // the dashboard's questions come from a script file: dismissed, nothing happens
    browser
        .open(&server.url(&format!("/ui/nodes/{node_id}")))
        .await;
    browser.click("#drain").await;
    let question = browser.client.get_alert_text().await.expect("a question");
    assert!(question.starts_with("Drain this node?"), "{question}");
    browser.client.dismiss_alert().await.unwrap();
    let (_, node) = server.get(&format!("/api/v1/nodes/{node_id}")).await;
    assert_eq!(node["schedulable"], true, "{node}");
    browser.click("#drain").await;
    browser.client.accept_alert().await.unwrap();
    browser
        .wait_for_text("#node-schedulable", |t| t == "cordoned")
        .await;
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
