//! Failed authentication never locks out valid callers: only failing attempts are
//! counted and answered `429`; clients behind a trusted proxy are told apart by
//! its forwarding headers, and no one else's headers are believed; repeated failed
//! logins for one user back off from any address.

use std::time::{Duration, Instant};

use miaas_tests::{TestServer, heartbeat, send};
use serde_json::{Value, json};

async fn secure_with(tweak: impl FnOnce(&mut miaas_server::ServerConfig)) -> TestServer {
    TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        tweak(c);
    })
    .await
}

/// GET `/api/v1/nodes` with `token`, claiming to come from `forwarded_for`.
async fn list_from(server: &TestServer, token: &str, forwarded_for: &str) -> u16 {
    send(
        server
            .client
            .get(server.url("/api/v1/nodes"))
            .bearer_auth(token)
            .header("X-Forwarded-For", forwarded_for),
    )
    .await
    .0
}

async fn login_from(server: &TestServer, password: &str, forwarded_for: &str) -> (u16, Value) {
    send(
        server
            .client
            .post(server.url("/api/v1/auth/token"))
            .header("X-Forwarded-For", forwarded_for)
            .json(&json!({"username": "admin", "password": password})),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_never_locks_out_valid_callers_from_the_same_address() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (node, node_token) = server.register("worker-01").await;
    let heartbeat_path = format!("/api/v1/nodes/{node}/heartbeat");
    let mut refused = 0;
    for i in 0..120 {
        let bad = format!("mapi_not-a-real-token-{i}");
        let (status, _) = server.get_as(&bad, "/api/v1/nodes").await;
        assert!(status == 401 || status == 429, "{status}");
        refused += usize::from(status == 429);
    }
    assert_eq!(
        refused, 60,
        "past the default 60 failures, failures get 429"
    );

    let (status, body) = server
        .post_as(&node_token, &heartbeat_path, &heartbeat())
        .await;
    assert_eq!(status, 200, "a valid node heartbeat: {body}");
    let (status, body) = server.get_as(&admin, "/api/v1/nodes").await;
    assert_eq!(status, 200, "a valid admin request: {body}");
    assert_eq!(server.get("/health").await.0, 200);
    let (status, body) = server.get_as("mapi_still-guessing", "/api/v1/nodes").await;
    assert_eq!(status, 429, "{body}");
    // bad tokens never refuse a password login from the same address
    let fresh = server.admin_token().await;
    assert_eq!(server.get_as(&fresh, "/api/v1/users").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_routes_are_never_limited() {
    let server = secure_with(|c| c.auth_failure_limit = 1).await;
    for _ in 0..3 {
        server.get_as("mapi_guess", "/api/v1/nodes").await;
    }
    for path in ["/health", "/", "/openapi.json", "/docs/", "/redoc"] {
        let (status, _) = server.get_as("mapi_guess", path).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_forwarded_clients_are_limited_separately() {
    let server = secure_with(|c| {
        c.auth_failure_limit = 3;
        c.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    let guesser = "198.51.100.1";
    let other = "198.51.100.2";
    for _ in 0..3 {
        assert_eq!(list_from(&server, "mapi_guess", guesser).await, 401);
    }
    assert_eq!(list_from(&server, "mapi_guess", guesser).await, 429);
    assert_eq!(
        list_from(&server, "mapi_guess", other).await,
        401,
        "another client behind the same proxy is counted on its own"
    );
    // a client cannot hide by prepending addresses: the proxy appends what it saw
    let forged = format!("203.0.113.50, {guesser}");
    assert_eq!(list_from(&server, "mapi_guess", &forged).await, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_untrusted_peer_a_forged_forwarded_address_changes_nothing() {
    let server = secure_with(|c| c.auth_failure_limit = 3).await;
    for i in 0..3 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(list_from(&server, "mapi_guess", &forged).await, 401);
    }
    assert_eq!(
        list_from(&server, "mapi_guess", "203.0.113.99").await,
        429,
        "still counted as the peer it is"
    );
    let forwarded = send(
        server
            .client
            .get(server.url("/api/v1/nodes"))
            .bearer_auth("mapi_guess")
            .header("Forwarded", "for=203.0.113.98"),
    )
    .await
    .0;
    assert_eq!(forwarded, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_for_one_user_back_off_from_any_address_and_a_success_resets() {
    let server = secure_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let right = server.admin_password.clone();
    // five failures, each from another address: no address limit is near
    for i in 0..5 {
        let (status, body) = login_from(&server, "wrong-password", &format!("10.9.0.{i}")).await;
        assert_eq!(status, 401, "{body}");
    }
    let response = server
        .client
        .post(server.url("/api/v1/auth/token"))
        .header("X-Forwarded-For", "10.9.1.1")
        .json(&json!({"username": "admin", "password": right}))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        429,
        "the account waits, from any address"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("user"), "{body}");

    // after the wait the right password works, and the count starts afresh
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = login_from(&server, &right, "10.9.1.2").await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 429, "{body}");
        assert!(Instant::now() < deadline, "the wait never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = login_from(&server, "wrong-password", "10.9.1.3").await;
    assert_eq!(status, 401, "a success reset the failures");
}
