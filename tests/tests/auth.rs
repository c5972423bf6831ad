//! Logins, expiry, revocation, the join token, the first start and the hardening
//! around them, against a real server.

use std::time::{Duration, Instant};

use miaas_tests::{ServerProcess, TestServer, binary, heartbeat, registration, send};
use serde_json::json;

async fn delete_as(server: &TestServer, token: &str, path: &str) -> u16 {
    send(server.client.delete(server.url(path)).bearer_auth(token))
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_give_expiring_tokens_and_wrong_passwords_give_401() {
    let server = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        // long enough that a login on a busy machine is still valid at first use
        // (expiry is in whole seconds), short enough to wait for
        c.access_token_ttl = Duration::from_secs(3);
    })
    .await;
    let (status, body) = server
        .post(
            "/api/v1/auth/token",
            &json!({"username": "admin", "password": server.admin_password}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3);
    let token = body["access_token"].as_str().expect("token").to_string();
    let (status, _) = server.get_as(&token, "/api/v1/nodes").await;
    assert_eq!(status, 200);
    // expiry takes effect at once (no leeway)
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = server.get_as(&token, "/api/v1/nodes").await;
        if status == 401 {
            assert!(
                body["detail"].as_str().unwrap().contains("expired"),
                "{body}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the token never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (username, password) in [("admin", "wrong-password"), ("nobody", "whatever-pw")] {
        let (status, body) = server
            .post(
                "/api/v1/auth/token",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["detail"], "Invalid username or password");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_and_removed_users_stop_working_at_once() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let (status, created) = server
        .post_as(
            &admin,
            "/api/v1/tokens",
            &json!({"name": "ci", "role": "operator"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().expect("token").to_string();
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(created["role"], "operator");
    let (_, listed) = server.get_as(&admin, "/api/v1/tokens").await;
    assert_eq!(listed.as_array().expect("list").len(), 1);
    assert!(
        !listed.to_string().contains(&token),
        "tokens are never listed"
    );
    let (status, _) = server
        .post_as(
            &token,
            "/api/v1/deployments",
            &miaas_tests::deployment("d1"),
        )
        .await;
    assert_eq!(status, 202, "an operator token deploys");
    assert_eq!(
        delete_as(&server, &admin, &format!("/api/v1/tokens/{id}")).await,
        204
    );
    let (status, body) = server.get_as(&token, "/api/v1/deployments").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        delete_as(&server, &admin, &format!("/api/v1/tokens/{id}")).await,
        404
    );

    let (status, created) = server
        .post_as(
            &admin,
            "/api/v1/users",
            &json!({"username": "alice", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201);
    let password = created["password"].as_str().expect("generated password");
    assert!(password.len() >= 16);
    let alice = server.login("alice", password).await;
    assert_eq!(server.get_as(&alice, "/api/v1/nodes").await.0, 200);
    let (_, users) = server.get_as(&admin, "/api/v1/users").await;
    assert!(
        !users.to_string().contains("argon2"),
        "hashes never leave: {users}"
    );
    assert_eq!(delete_as(&server, &admin, "/api/v1/users/alice").await, 204);
    assert_eq!(server.get_as(&alice, "/api/v1/nodes").await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_validated_and_the_last_admin_stays() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    let cases = [
        (json!({"username": "bob", "password": "short"}), 422),
        (json!({"username": "has space"}), 422),
        (json!({"username": "bob", "role": "root"}), 422),
        (json!({"username": "admin"}), 409),
    ];
    for (body, want) in cases {
        let (status, answer) = server.post_as(&admin, "/api/v1/users", &body).await;
        assert_eq!(status, want, "{body} -> {answer}");
    }
    assert_eq!(delete_as(&server, &admin, "/api/v1/users/admin").await, 409);
    assert_eq!(
        delete_as(&server, &admin, "/api/v1/users/nobody").await,
        404
    );
    let (_, users) = server.get_as(&admin, "/api/v1/users").await;
    assert_eq!(
        users.as_array().expect("users").len(),
        1,
        "nothing was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_the_join_token_and_rotation_keeps_nodes_working() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    for token in [None, Some("miaas_join_wrong"), Some(admin.as_str())] {
        let mut request = server
            .client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("intruder"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let (status, _) = send(request).await;
        assert_eq!(status, if token == Some(&admin) { 403 } else { 401 });
    }
    let (_, nodes) = server.get_as(&admin, "/api/v1/nodes").await;
    assert_eq!(nodes, json!([]), "nothing was stored");

    let (node_id, node_token) = server.register("worker-01").await;
    let (status, shown) = server.get_as(&admin, "/api/v1/cluster/join-token").await;
    assert_eq!(status, 200);
    assert_eq!(shown["join_token"], server.join_token.as_str());
    let (status, rotated) = server
        .post_as(&admin, "/api/v1/cluster/join-token/rotate", &json!({}))
        .await;
    assert_eq!(status, 200);
    let fresh = rotated["join_token"].as_str().expect("join token");
    assert_ne!(fresh, server.join_token);
    let (status, _) = server
        .post_as(
            &server.join_token,
            "/api/v1/nodes/register",
            &registration("late"),
        )
        .await;
    assert_eq!(status, 401, "the old join token no longer registers");
    let (status, _) = server
        .post_as(fresh, "/api/v1/nodes/register", &registration("late"))
        .await;
    assert_eq!(status, 201);
    let (status, _) = server
        .post_as(
            &node_token,
            &format!("/api/v1/nodes/{node_id}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 200, "registered nodes keep working");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_guessed_tokens_are_rate_limited_but_expired_ones_are_not() {
    let server = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        c.auth_failure_limit = 3;
    })
    .await;
    for _ in 0..3 {
        let (status, _) = server
            .post(
                "/api/v1/auth/token",
                &json!({"username": "admin", "password": "guess-guess"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let response = server
        .client
        .post(server.url("/api/v1/auth/token"))
        .json(&json!({"username": "admin", "password": server.admin_password}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429, "even the right password waits");
    assert!(response.headers().contains_key("retry-after"));
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "anonymous routes stay open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_closed_by_default_and_never_allows_credentials() {
    let closed = TestServer::secure().await;
    let response = closed
        .client
        .get(closed.url("/health"))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("request");
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "no cross-origin access unless CORS_ORIGINS allows it"
    );
    let open = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        c.cors_origins = Some("*".into());
    })
    .await;
    let response = open
        .client
        .request(reqwest::Method::OPTIONS, open.url("/api/v1/nodes"))
        .header("Origin", "http://ui.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .expect("preflight");
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(!headers.contains_key("access-control-allow-credentials"));
}

#[tokio::test]
async fn the_openapi_document_declares_who_may_call_each_route() {
    let server = TestServer::secure().await;
    let (_, doc) = server.get("/openapi.json").await;
    let schemes = &doc["components"]["securitySchemes"];
    for scheme in ["bearer", "node_token", "join_token"] {
        assert_eq!(schemes[scheme]["scheme"], "bearer", "{scheme}");
    }
    let public = ["/health", "/", "/api/v1/auth/token", "/cacerts"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            let security = &operation["security"];
            if public.contains(&path.as_str()) {
                assert!(
                    security.is_null() || security == &json!([{}]),
                    "{method} {path} is public"
                );
            } else {
                assert!(
                    security.is_array(),
                    "{method} {path} declares its credential"
                );
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} documents 401"
                );
            }
        }
    }
    let text = doc.to_string();
    for credential in [&server.admin_password, &server.join_token] {
        assert!(!text.contains(credential.as_str()));
    }
}

#[test]
fn auth_off_is_refused_unless_the_server_listens_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(binary("miaas-server"))
        .args(["--host", "0.0.0.0", "--port", "0", "--auth", "off"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the server");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    let env_off = std::process::Command::new(binary("miaas-server"))
        .args(["--host", "0.0.0.0", "--port", "0"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env("MIAAS_AUTH", "off")
        .output()
        .expect("run the server");
    assert!(!env_off.status.success(), "MIAAS_AUTH=off too");
}

#[test]
fn the_first_start_prints_the_credentials_once_and_saves_them_privately() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = ["--host", "127.0.0.1", "--port", "0"];
    let env = [("MIAAS_AUTH", "on")];
    let first = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &env);
    let file = dir.path().join("control_plane.db.credentials");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !first
        .printed()
        .iter()
        .any(|l| l.contains("MIAAS_JOIN_TOKEN="))
    {
        assert!(
            Instant::now() < deadline,
            "never printed: {:?}",
            first.printed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let printed = first.printed().join("\n");
    let saved = std::fs::read_to_string(&file).expect("credentials file");
    for key in ["MIAAS_ADMIN_PASSWORD=", "MIAAS_JOIN_TOKEN="] {
        let line = saved
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("{key} in {saved}"));
        assert!(printed.contains(line), "printed as saved: {line}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (status, _) = first.terminate();
    assert!(status.success());
    let second = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &env);
    assert_eq!(second.printed(), Vec::<String>::new(), "shown only once");
    let (_, log) = second.terminate();
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        saved,
        "a second start creates nothing"
    );
}
