//! Access tokens do not outlive their user: a token of a removed user stays dead
//! when a user of the same name is created again; setting a password ends every
//! access token issued before; removing a user revokes the API tokens it created.

use miaas_tests::{TestServer, miaas, send};
use serde_json::{Value, json};

async fn put_as(server: &TestServer, token: &str, path: &str, body: &Value) -> (u16, Value) {
    send(
        server
            .client
            .put(server.url(path))
            .bearer_auth(token)
            .json(body),
    )
    .await
}

async fn delete_as(server: &TestServer, token: &str, path: &str) -> u16 {
    send(server.client.delete(server.url(path)).bearer_auth(token))
        .await
        .0
}

async fn create_user(server: &TestServer, admin: &str, name: &str, role: &str, password: &str) {
    let (status, body) = server
        .post_as(
            admin,
            "/api/v1/users",
            &json!({"username": name, "role": role, "password": password}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_user_does_not_revive_the_old_users_tokens() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "alice", "operator", "alice-password-1").await;
    let stolen = server.login("alice", "alice-password-1").await;
    assert_eq!(server.get_as(&stolen, "/api/v1/nodes").await.0, 200);

    assert_eq!(delete_as(&server, &admin, "/api/v1/users/alice").await, 204);
    // the same name, even the same password: a new user
    create_user(&server, &admin, "alice", "admin", "alice-password-1").await;
    let (status, body) = server.get_as(&stolen, "/api/v1/nodes").await;
    assert_eq!(status, 401, "{body}");
    let fresh = server.login("alice", "alice-password-1").await;
    assert_eq!(server.get_as(&fresh, "/api/v1/users").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_a_password_ends_every_earlier_access_token() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "bob", "operator", "bob-password-1").await;
    create_user(&server, &admin, "carol", "operator", "carol-password").await;
    let bob = server.login("bob", "bob-password-1").await;
    let carol = server.login("carol", "carol-password").await;
    let path = "/api/v1/users/bob/password";

    let (status, body) = put_as(&server, &bob, path, &json!({"password": "bob-password-2"})).await;
    assert_eq!(status, 422, "your own needs the old one: {body}");
    let wrong = json!({"password": "bob-password-2", "old_password": "not-it-at-all"});
    assert_eq!(put_as(&server, &bob, path, &wrong).await.0, 403);
    let (status, body) = put_as(
        &server,
        &carol,
        path,
        &json!({"password": "carols-choice", "old_password": "carol-password"}),
    )
    .await;
    assert_eq!(status, 403, "nobody else's: {body}");
    assert_eq!(
        server.get_as(&bob, "/api/v1/nodes").await.0,
        200,
        "unchanged"
    );

    let own = json!({"password": "bob-password-2", "old_password": "bob-password-1"});
    let (status, body) = put_as(&server, &bob, path, &own).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.get_as(&bob, "/api/v1/nodes").await.0, 401);
    let (status, _) = server
        .post(
            "/api/v1/auth/token",
            &json!({"username": "bob", "password": "bob-password-1"}),
        )
        .await;
    assert_eq!(status, 401, "the old password is gone");
    let bob = server.login("bob", "bob-password-2").await;
    // the old password may also be named current_password, the new one new_password
    let renamed = json!({"password": "bob-password-3", "current_password": "bob-password-2"});
    assert_eq!(put_as(&server, &bob, path, &renamed).await.0, 204);
    let bob = server.login("bob", "bob-password-3").await;
    let renamed = json!({"new_password": "bob-password-4", "old_password": "bob-password-3"});
    assert_eq!(put_as(&server, &bob, path, &renamed).await.0, 204);
    let bob = server.login("bob", "bob-password-4").await;

    // an admin sets it without the old one
    let (status, _) = put_as(
        &server,
        &admin,
        path,
        &json!({"password": "reset-by-admin"}),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(server.get_as(&bob, "/api/v1/nodes").await.0, 401);
    server.login("bob", "reset-by-admin").await;
    let (status, _) = put_as(
        &server,
        &admin,
        "/api/v1/users/nobody/password",
        &json!({"password": "whatever-pw"}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_admins_api_tokens_are_refused() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "dora", "admin", "dora-password").await;
    let dora = server.login("dora", "dora-password").await;
    let (status, created) = server
        .post_as(
            &dora,
            "/api/v1/tokens",
            &json!({"name": "dora-ci", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let dora_api = created["token"].as_str().unwrap().to_string();
    let other_api = server.api_token("operator").await;
    assert_eq!(server.get_as(&dora_api, "/api/v1/users").await.0, 200);

    assert_eq!(delete_as(&server, &admin, "/api/v1/users/dora").await, 204);
    let (status, body) = server.get_as(&dora_api, "/api/v1/users").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        server.get_as(&other_api, "/api/v1/nodes").await.0,
        200,
        "tokens of other users stay"
    );
    let (_, tokens) = server.get_as(&admin, "/api/v1/tokens").await;
    let names: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(!names.contains(&"dora-ci"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miaas_users_passwd_sets_a_password_remotely_and_locally() {
    let server = TestServer::secure().await;
    let admin = server.admin_token().await;
    create_user(&server, &admin, "erin", "viewer", "erin-password-1").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config").display().to_string();
    let erin = server.login("erin", "erin-password-1").await;

    let remote = [
        ("MIAAS_SERVER", server.base.as_str()),
        ("MIAAS_TOKEN", erin.as_str()),
        ("XDG_CONFIG_HOME", config.as_str()),
    ];
    let run = miaas(
        dir.path(),
        &["users", "passwd", "erin", "--password-stdin"],
        &remote,
        Some("erin-password-2\nerin-password-1\n"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("changed the password of erin"),
        "{run:?}"
    );
    server.login("erin", "erin-password-2").await;
    let again = miaas(
        dir.path(),
        &["users", "passwd", "erin", "--password-stdin"],
        &remote,
        Some("erin-password-3\nerin-password-2\n"),
    );
    assert_eq!(again.code, 1, "the old token is dead: {again:?}");
    assert_eq!(again.stderr.trim().lines().count(), 1, "{again:?}");

    // local mode: access to the database is full access
    let key_file = server.secret_key_file.display().to_string();
    let local = [
        ("DATABASE_URL", server.database_url.as_str()),
        ("MIAAS_SECRET_KEY_FILE", key_file.as_str()),
        ("XDG_CONFIG_HOME", config.as_str()),
    ];
    let run = miaas(
        dir.path(),
        &["users", "passwd", "erin", "--password-stdin"],
        &local,
        Some("erin-password-4\n"),
    );
    assert_eq!(run.code, 0, "{run:?}");
    server.login("erin", "erin-password-4").await;
}
