//! Deployment logs end to end, with a real agent (simulated runtime: generated
//! lines): over WebSocket and NDJSON, `follow` ending when the deployment is
//! deleted, the node stopping when the viewer leaves, clear errors for what has
//! no logs, the bound on sessions per node, and (on PostgreSQL) the viewer's
//! replica differing from the agent's.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use miaas_tests::{
    AgentProcess, Lines, STREAM_PATIENCE, TestServer, deployment, postgres_replicas,
    running_on_an_agent,
};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A server with one simulated agent running deployment `web`.
struct Fixture {
    server: TestServer,
    _agent: AgentProcess,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(tweak: impl FnOnce(&mut miaas_server::ServerConfig)) -> Self {
        let server = TestServer::spawn_with(tweak).await;
        let dir = tempfile::tempdir().unwrap();
        let agent = running_on_an_agent(&server, dir.path(), "a1", "web").await;
        Self {
            server,
            _agent: agent,
            _dir: dir,
        }
    }
}

fn ws_url(server: &TestServer, query: &str) -> String {
    let base = server.base.replacen("http://", "ws://", 1);
    format!("{base}/api/v1/deployments/web/logs?{query}")
}

async fn ndjson(server: &TestServer, query: &str) -> reqwest::Response {
    let url = server.url(&format!("/api/v1/deployments/web/logs?{query}"));
    let response = server
        .client
        .get(url)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    response
}

/// Open log sessions of the deployment's node.
async fn open_sessions(server: &TestServer) -> usize {
    let (_, d) = server.get("/api/v1/deployments/web").await;
    let node = d["node_id"].as_str().unwrap().to_string();
    let streams = server.store.streams();
    streams.open_log_sessions(&node, 0.0).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_arrive_over_ndjson_and_websocket_and_follow_ends_with_the_deployment() {
    let fixture = Fixture::start(|_| {}).await;
    let server = &fixture.server;

    // NDJSON, no follow: the tail asked for, then the end
    let mut lines = Lines::new(ndjson(server, "tail=3&service=postgres").await);
    let mut got = Vec::new();
    while let Some(line) = lines.next_json().await {
        got.push(line);
    }
    let (end, lines) = got.split_last().unwrap();
    assert_eq!(end["end"], "end of logs");
    assert_eq!(end["error"], false);
    let texts: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        [
            "simulated line 1 of web",
            "simulated line 2 of web",
            "simulated line 3 of web"
        ]
    );
    for line in lines {
        assert_eq!(line["service"], "postgres");
        assert_eq!(line["stream"], "stdout");
        assert!(line["ts"].as_str().unwrap().ends_with('Z'), "{line}");
    }

    // WebSocket, follow: live lines until the deployment is deleted
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(server, "follow=true&tail=1"))
        .await
        .expect("the WebSocket opens");
    let mut live = 0;
    while live < 3 {
        let frame = tokio::time::timeout(STREAM_PATIENCE, socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let Message::Text(text) = frame else { continue };
        let line: Value = serde_json::from_str(&text).unwrap();
        if line["line"]
            .as_str()
            .unwrap()
            .starts_with("simulated live line")
        {
            live += 1;
        }
    }
    let (status, _) = server.delete("/api/v1/deployments/web").await;
    assert_eq!(status, 200);
    let close = loop {
        let frame = tokio::time::timeout(STREAM_PATIENCE, socket.next())
            .await
            .expect("the server ends the stream")
            .expect("a frame")
            .expect("a frame, not an error");
        if let Message::Close(close) = frame {
            break close.expect("a close reason");
        }
    };
    assert_eq!(close.code, CloseCode::Normal);
    assert!(close.reason.contains("no more logs"), "{}", close.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_leaving_stops_the_node_and_sessions_per_node_are_bounded() {
    let fixture = Fixture::start(|c| c.max_log_sessions_per_node = 1).await;
    let server = &fixture.server;
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(server, "follow=true"))
        .await
        .unwrap();
    let first = tokio::time::timeout(STREAM_PATIENCE, socket.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
    assert_eq!(open_sessions(server).await, 1);

    // one session per node here: a second viewer is told to come back later
    let url = server.url("/api/v1/deployments/web/logs?follow=true");
    let second = server.client.get(url).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("log sessions"),
        "{body}"
    );

    socket.send(Message::Close(None)).await.unwrap();
    drop(socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while open_sessions(server).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // and the node is free to serve the next viewer
    let mut lines = Lines::new(ndjson(server, "tail=1").await);
    let line = lines.next_json().await.unwrap();
    assert_eq!(line["line"], "simulated line 1 of web");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_has_no_logs_is_a_clear_error() {
    let server = TestServer::spawn().await;
    let (status, body) = server.get("/api/v1/deployments/nope/logs").await;
    assert_eq!((status, body["detail"].is_string()), (404, true));
    // no node: pending, so it runs nowhere
    let (status, _) = server.post("/api/v1/deployments", &deployment("web")).await;
    assert_eq!(status, 202);
    let (status, body) = server.get("/api/v1/deployments/web/logs").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("pending"),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/deployments/web/logs?tail=99999").await;
    assert_eq!((status, body["detail"].is_string()), (422, true), "{body}");
    let (status, _) = server
        .get("/api/v1/deployments/web/logs?since=--follow")
        .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_the_deployment_lacks_is_refused() {
    let fixture = Fixture::start(|_| {}).await;
    let (status, body) = fixture
        .server
        .get("/api/v1/deployments/web/logs?service=redis")
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("postgres"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn logs_reach_a_viewer_on_another_replica_than_the_agent_s() {
    let Some((a, b)) = postgres_replicas().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // the agent talks to A only; the viewer to B only
    let _agent = running_on_an_agent(&a, dir.path(), "a1", "web").await;
    let mut lines = Lines::new(ndjson(&b, "follow=true&tail=2").await);
    let mut texts = Vec::new();
    while texts.len() < 4 {
        let line = lines.next_json().await.expect("lines keep coming");
        texts.push(line["line"].as_str().unwrap().to_string());
    }
    assert_eq!(
        texts[..2],
        ["simulated line 1 of web", "simulated line 2 of web"]
    );
    assert!(texts[2].starts_with("simulated live line"), "{texts:?}");
    // deleting on A ends the follow on B
    let (status, _) = a.delete("/api/v1/deployments/web").await;
    assert_eq!(status, 200);
    let end = loop {
        let line = lines.next_json().await.expect("an end line");
        if line.get("end").is_some() {
            break line;
        }
    };
    assert_eq!(end["error"], false, "{end}");
    assert!(lines.next_json().await.is_none(), "the stream ends");
}
