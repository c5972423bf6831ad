//! A flood of concurrent logins cannot take the server down: password checks run
//! one per core at a time, and the rest are answered `503` with `Retry-After` at
//! once, so `/health` keeps answering and memory stays bounded (argon2 takes
//! ~19 MiB a check: 400 at once would take over 7 GiB).

#![cfg(target_os = "linux")]

use std::time::Duration;

use miaas_tests::{ServerProcess, binary};
use serde_json::json;

/// The server's peak resident memory, from /proc (kB).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The bound this test states: far below what unbounded checks would take.
const PEAK_RSS_BOUND_KB: u64 = 300 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_refused_early_and_health_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--auth-failure-limit",
            "100000",
        ],
        dir.path(),
        &[("MIAAS_AUTH", "on")],
    );
    let client = reqwest::Client::new();
    let logins: Vec<_> = (0..400)
        .map(|i| {
            let request = client
                .post(server.url("/api/v1/auth/token"))
                .json(&json!({"username": format!("nobody-{i}"), "password": "guess-guess"}));
            tokio::spawn(async move {
                let response = request.send().await.expect("login answered");
                let retry_after = response.headers().contains_key("retry-after");
                (response.status().as_u16(), retry_after)
            })
        })
        .collect();
    let health = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for _ in 0..5 {
        let response = health
            .get(server.url("/health"))
            .send()
            .await
            .expect("/health answers within a second during the flood");
        assert_eq!(response.status(), 200);
    }
    let mut busy = 0;
    for login in logins {
        let (status, retry_after) = login.await.unwrap();
        match status {
            401 => {}
            503 => {
                assert!(retry_after, "503 says when to retry");
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "the checks beyond the cores were refused");
    let peak = peak_rss_kb(server.pid());
    assert!(
        peak < PEAK_RSS_BOUND_KB,
        "peak RSS {peak} kB over {PEAK_RSS_BOUND_KB} kB"
    );
}
