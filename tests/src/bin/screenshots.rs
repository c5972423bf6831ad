//! Screenshots of the dashboard's main pages, for the README: a real server with
//! a simulated agent and a few registered nodes, in headless Chromium.
//!
//! `cargo build --workspace && cargo run -p miaas-tests --bin screenshots -- docs/screenshots`

use std::path::PathBuf;
use std::time::Duration;

use miaas_tests::{AgentProcess, Browser, TestServer, registration};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "docs/screenshots".into()),
    );
    std::fs::create_dir_all(&out)?;
    let Some(browser) = Browser::start(1280, 860).await else {
        anyhow::bail!("no chromedriver: apt-get install chromium chromium-driver");
    };
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let dir = tempfile::tempdir()?;
    let _agent = AgentProcess::simulated(&server.base, &server.join_token, dir.path(), "cpu-01");
    for (name, gpus) in [("gpu-01", 2u32), ("gpu-02", 4)] {
        let mut body = registration(name);
        body["ip"] = json!(format!("10.0.0.{}", 10 + gpus));
        body["capabilities"]["cpu_count"] = json!(32);
        body["capabilities"]["mem_mb"] = json!(128_000);
        body["capabilities"]["gpus"] = (0..gpus)
            .map(|id| json!({"id": id, "model": "NVIDIA A100-SXM4-80GB", "mem_mb": 81920}))
            .collect();
        server
            .post_as(&server.join_token, "/api/v1/nodes/register", &body)
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !server
        .get_as(&admin, "/api/v1/nodes")
        .await
        .1
        .to_string()
        .contains("cpu-01")
    {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the agent never joined"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deploy = |body: serde_json::Value| {
        let (server, admin) = (&server, &admin);
        async move { server.post_as(admin, "/api/v1/deployments", &body).await }
    };
    deploy(json!({"deployment_id": "qwen-7b", "template_id": "vllm",
                  "params": {"model": "Qwen/Qwen2.5-7B-Instruct", "gpus": 2}}))
    .await;
    deploy(json!({"deployment_id": "embeddings", "template_id": "text-embeddings-inference", "params": {}})).await;
    deploy(json!({"deployment_id": "big-train", "template_id": "vllm",
                  "params": {"model": "meta-llama/Llama-3.1-405B", "gpus": 8}}))
    .await;
    deploy(
        json!({"deployment_id": "cache", "template_id": "redis", "params": {},
                  "requirements": {"node": "cpu-01", "mem_mb": 256}}),
    )
    .await;
    deploy(json!({"deployment_id": "db", "template_id": "postgres", "params": {"port": 5433}}))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, d) = server.get_as(&admin, "/api/v1/deployments/cache").await;
        if d["status"] == "running" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "cache never ran: {d}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    browser.open(&server.url("/ui/login")).await;
    browser.fill("#username", "admin").await;
    browser.fill("#password", &server.admin_password).await;
    browser.click("#sign-in").await;
    browser.text("#user").await;
    let (_, nodes) = server.get_as(&admin, "/api/v1/nodes").await;
    let gpu_node = nodes
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "gpu-01"))
        .map(|n| n["id"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default();
    let pages = [
        (
            "deployment-logs",
            "/ui/deployments/cache?logs=1#logs".to_string(),
        ),
        ("overview", "/ui".to_string()),
        ("nodes", "/ui/nodes".to_string()),
        ("node", format!("/ui/nodes/{gpu_node}")),
        ("deployments", "/ui/deployments".to_string()),
        (
            "deployment-pending",
            "/ui/deployments/big-train".to_string(),
        ),
        ("deploy", "/ui/deploy?template=vllm".to_string()),
        ("admin", "/ui/admin".to_string()),
    ];
    for (name, path) in pages {
        browser.open(&server.url(&path)).await;
        browser.text("main h1").await;
        if name == "deployment-logs" {
            browser
                .wait_for_text("#logs", |t| t.lines().count() >= 3)
                .await;
        }
        let file = out.join(format!("{name}.png"));
        std::fs::write(&file, browser.screenshot().await)?;
        println!("{}", file.display());
    }
    let phone = Browser::start(390, 844).await.expect("a second browser");
    phone.open(&server.url("/ui/login")).await;
    phone.fill("#username", "admin").await;
    phone.fill("#password", &server.admin_password).await;
    phone.click("#sign-in").await;
    phone.open(&server.url("/ui/nodes")).await;
    phone.text("main h1").await;
    let file = out.join("nodes-phone.png");
    std::fs::write(&file, phone.screenshot().await)?;
    println!("{}", file.display());
    Ok(())
}
