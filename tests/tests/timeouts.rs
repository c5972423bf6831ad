//! Slow clients cannot hold connections: a request head must arrive within
//! `--header-read-timeout`, a request be answered within `--request-timeout`, and
//! neither can stall a graceful shutdown.

use std::time::Duration;

use miaas_tests::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most any of these waits may take: far above the 1 s limits configured.
const BOUND: Duration = Duration::from_secs(20);

async fn quick_server() -> TestServer {
    TestServer::spawn_with(|c| {
        c.header_read_timeout = Duration::from_secs(1);
        c.request_timeout = Duration::from_secs(1);
    })
    .await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, stream.read_to_end(&mut answer))
        .await
        .expect("the server closed the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let server = quick_server().await;
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    read_to_close(&mut slow).await;
    // others are served all along
    assert_eq!(server.get("/health").await.0, 200);
}

#[tokio::test]
async fn a_body_that_never_ends_is_answered_503() {
    let server = quick_server().await;
    let mut slow = connect(&server).await;
    slow.write_all(
        b"POST /api/v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"deploy",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 1024];
    let read = tokio::time::timeout(BOUND, slow.read(&mut head))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&head[..read]);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("request-timeout"), "{answer}");
}

#[tokio::test]
async fn a_slow_client_does_not_stall_a_graceful_shutdown() {
    let server = quick_server().await;
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    tokio::time::timeout(BOUND, server.stop())
        .await
        .expect("the server stopped");
    read_to_close(&mut slow).await;
}
