//! Past `--max-inflight` requests at once, one more is refused at once with `503`
//! and `Retry-After`, while `/health`, heartbeats and agents' long-polls are
//! still served.

use std::time::Duration;

use miaas_tests::{TestServer, heartbeat};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const SLOTS: u32 = 2;

/// A request that holds its slot: a body announced but never sent.
async fn hold_a_slot(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /api/v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"deploy",
        )
        .await
        .expect("send");
    stream
}

#[tokio::test]
async fn past_max_inflight_requests_are_refused_but_heartbeats_are_served() {
    let server = TestServer::spawn_with(|c| c.max_inflight = SLOTS).await;
    let (node_id, node_token) = server
        .register_body(&miaas_tests::registration("busy-node"))
        .await;
    let mut held = Vec::new();
    for _ in 0..SLOTS {
        held.push(hold_a_slot(&server).await);
    }
    // the held requests reach the limiter in their own time: wait for the refusal
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let response = server
            .client
            .get(server.url("/api/v1/nodes"))
            .send()
            .await
            .expect("an answer");
        if response.status() == 503 {
            break response;
        }
        assert_eq!(response.status(), 200);
        assert!(std::time::Instant::now() < deadline, "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: serde_json::Value = refused.json().await.expect("JSON");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("--max-inflight")),
        "{body}"
    );

    assert_eq!(server.get("/health").await.0, 200);
    let (status, body) = server
        .post_as(
            &node_token,
            &format!("/api/v1/nodes/{node_id}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .get_as(
            &node_token,
            &format!("/api/v1/nodes/{node_id}/deployments?wait=10ms&index=0"),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // once the held requests end, others are served again
    drop(held);
    server
        .wait_for("/api/v1/nodes", |body| body.is_array())
        .await;
}
