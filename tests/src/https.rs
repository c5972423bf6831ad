//! Helpers for tests of servers that serve HTTPS themselves.

use std::time::{Duration, Instant};

/// A client trusting only the CA certificates of `pem`.
pub fn trusting(pem: &[u8]) -> reqwest::Client {
    let roots = reqwest::Certificate::from_pem_bundle(pem).expect("PEM");
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .build()
        .expect("a client")
}

/// Polls `check` until it holds; fails after 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
