//! A deployment's health: what its node reports beside its status (`starting`,
//! `healthy`, `unhealthy`, `none`) and its restarts, shown in the API, the CLI,
//! the events and the metrics; and `miaas deploy --wait`, which waits until the
//! deployment is ready (`--wait-for` picks another milestone). With a real
//! simulated agent (`--simulated-ready`, `--simulated-unhealthy`) and with
//! reports sent by hand as a node.

use std::path::Path;

use miaas_tests::{AgentProcess, TestServer, miaas};
use serde_json::{Value, json};

const WEB: &str = "services:\n  web:\n    image: nginx\n    ports: ['8080:80']\n";
const QUIET: &str = "services:\n  app:\n    image: busybox\n";

/// `miaas --server <server> args...` in `dir`.
fn cli(server: &TestServer, dir: &Path, args: &[&str]) -> miaas_tests::Run {
    let mut all = vec!["--server", server.base.as_str()];
    all.extend_from_slice(args);
    miaas(dir, &all, &[], None)
}

/// A simulated agent whose deployments are `starting` for `ready`, and
/// unhealthy when their id starts with `sick-`.
async fn agent_with_health(server: &TestServer, dir: &Path, ready: &str) -> AgentProcess {
    let flags = [
        "--runtime",
        "simulated",
        "--simulated-start",
        "50ms",
        "--simulated-ready",
        ready,
        "--simulated-unhealthy",
        "sick-*",
    ];
    let agent = AgentProcess::start(&server.base, &server.join_token, dir, "n1", &flags, &[]);
    server
        .wait_for("/api/v1/nodes", |nodes| {
            nodes
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["status"] == "online"))
        })
        .await;
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_wait_returns_once_the_deployment_is_healthy_and_prints_its_endpoints() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = agent_with_health(&server, dir.path(), "6s").await;
    let web = dir.path().join("web.yaml");
    std::fs::write(&web, WEB).unwrap();
    let web = web.display().to_string();

    // running is not ready: its healthchecks have not passed yet
    let running = cli(
        &server,
        dir.path(),
        &[
            "deploy",
            "-f",
            &web,
            "--name",
            "web",
            "--wait-for",
            "running",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert_eq!(running["status"], "running", "{running}");
    assert_eq!(running["health"], "starting", "{running}");
    let listed = cli(&server, dir.path(), &["ps"]).ok();
    assert!(listed.stdout.contains("running (starting)"), "{listed:?}");

    // --wait is --wait-for ready: back only when healthy, with the endpoints
    let ready = cli(
        &server,
        dir.path(),
        &["deploy", "-f", &web, "--name", "web", "--wait"],
    )
    .ok();
    assert!(
        ready.stdout.contains("status: running on node n1"),
        "{ready:?}"
    );
    assert!(ready.stdout.contains("health: healthy"), "{ready:?}");
    assert!(ready.stdout.contains("endpoints:"), "{ready:?}");
    assert!(ready.stdout.contains(":8080"), "{ready:?}");
    assert!(
        ready.stderr.contains("web: running (starting)"),
        "{ready:?}"
    );
    let (_, d) = server.get("/api/v1/deployments/web").await;
    assert_eq!(d["health"], "healthy", "{d}");
    assert_eq!(d["restarts"], 0, "{d}");

    let (_, events) = server
        .get("/api/v1/events?follow=false&topic=deployment:web&type=deployment.healthy")
        .await;
    let healthy = events.as_array().unwrap();
    assert_eq!(healthy.len(), 1, "{events}");
    assert_eq!(healthy[0]["data"]["health"], "healthy", "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_wait_fails_on_unhealthy_and_on_timeout_saying_where_it_stands() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = agent_with_health(&server, dir.path(), "2s").await;
    let quiet = dir.path().join("quiet.yaml");
    std::fs::write(&quiet, QUIET).unwrap();
    let quiet = quiet.display().to_string();

    let sick = cli(
        &server,
        dir.path(),
        &["deploy", "-f", &quiet, "--name", "sick-1", "--wait"],
    );
    assert_eq!(sick.code, 1, "{sick:?}");
    assert!(
        sick.stderr.contains("sick-1 is running (unhealthy)"),
        "{sick:?}"
    );
    let (_, d) = server.get("/api/v1/deployments/sick-1").await;
    assert_eq!(d["health"], "unhealthy", "{d}");
    assert_eq!(d["status"], "running", "{d}");

    // ready only after 2 s: a 1 s wait times out, naming where it stands
    let slow = cli(
        &server,
        dir.path(),
        &[
            "deploy",
            "-f",
            &quiet,
            "--name",
            "slow",
            "--wait",
            "--timeout",
            "1s",
        ],
    );
    assert_eq!(slow.code, 1, "{slow:?}");
    assert!(slow.stderr.contains("timed out after 1.0s"), "{slow:?}");
    assert!(slow.stderr.contains("to be ready"), "{slow:?}");

    // scripts that wanted the placement only ask for it
    let scheduled = cli(
        &server,
        dir.path(),
        &[
            "deploy",
            "-f",
            &quiet,
            "--name",
            "placed",
            "--wait-for",
            "scheduled",
            "-o",
            "json",
        ],
    )
    .ok()
    .json();
    assert!(
        ["scheduled", "running"].contains(&scheduled["status"].as_str().unwrap()),
        "{scheduled}"
    );

    // what the metrics count, once both have settled
    server
        .wait_for("/api/v1/deployments/slow", |d| d["health"] == "healthy")
        .await;
    let (_, events) = server
        .get("/api/v1/events?follow=false&type=deployment.unhealthy")
        .await;
    let subjects: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["topic"].as_str())
        .collect();
    assert_eq!(subjects, ["deployment:sick-1"], "{events}");
    let scrape = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scrape.contains("miaas_deployments_health{health=\"unhealthy\"} 1"),
        "{scrape}"
    );
}

/// Reports as a node sends them: health and restarts are kept with `running`;
/// a report without them (the original agent's) means no healthcheck; bad
/// values are refused and change nothing; a new revision starts without health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_health_reports_are_kept_checked_and_shown() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = server.register("n1").await;
    let deploy = |image: &str| {
        json!({"deployment_id": "api", "template_id": "t",
               "rendered_compose": format!("services:\n  app:\n    image: {image}\n")})
    };
    let (status, _) = server.post("/api/v1/deployments", &deploy("one")).await;
    assert_eq!(status, 202);
    let (_, scheduled) = server.get("/api/v1/deployments/api").await;
    assert_eq!(scheduled["status"], "scheduled", "{scheduled}");
    assert_eq!(scheduled["health"], Value::Null, "{scheduled}");
    assert_eq!(scheduled["restarts"], 0, "{scheduled}");

    let report = |body: Value| {
        let server = &server;
        let token = token.clone();
        async move {
            server
                .post_as(&token, "/api/v1/deployments/api/status", &body)
                .await
        }
    };
    let (status, body) = report(
        json!({"status": "running", "message": "1 container running",
                                       "health": "unhealthy", "restarts": 3}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"], "unhealthy", "{body}");
    let shown = cli(&server, dir.path(), &["deployments", "get", "api"]).ok();
    assert!(
        shown.stdout.contains("running (unhealthy, 3 restarts)"),
        "{shown:?}"
    );
    assert!(
        shown.stdout.contains("health: unhealthy, 3 restarts"),
        "{shown:?}"
    );

    for bad in [
        json!({"status": "running", "health": "poorly"}),
        json!({"status": "running", "health": "healthy", "restarts": -1}),
    ] {
        let (status, body) = report(bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["detail"].is_string(), "{body}");
    }
    let (_, unchanged) = server.get("/api/v1/deployments/api").await;
    assert_eq!(unchanged["health"], "unhealthy", "{unchanged}");
    assert_eq!(unchanged["restarts"], 3, "{unchanged}");

    let (status, body) = report(json!({"status": "running"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["health"], "none", "{body}");
    assert_eq!(
        body["restarts"], 3,
        "restarts not reported stay as they were"
    );

    let (status, _) = server.post("/api/v1/deployments", &deploy("two")).await;
    assert_eq!(status, 202);
    let (_, revised) = server.get("/api/v1/deployments/api").await;
    assert_eq!(revised["revision"], 2, "{revised}");
    assert_eq!(revised["health"], Value::Null, "{revised}");
    assert_eq!(revised["restarts"], 0, "{revised}");
}
