//! Helpers for the end-to-end tests: a real server on 127.0.0.1, port 0, over a fresh
//! SQLite file, in this process ([`TestServer`]) or as the real binary
//! ([`ServerProcess`]).

mod agent;
mod browser;
mod cli;
mod https;
mod postgres;
mod process;
mod streams;

use std::sync::Arc;

use miaas_core::store::Store;
use miaas_server::{Application, AuthMode, ServerConfig};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub use agent::AgentProcess;
pub use browser::{Browser, PAGE_PATIENCE};
pub use cli::{Modes, Run, miaas};
pub use https::{eventually, trusting};
pub use postgres::OwnPostgres;
pub use process::{ServerProcess, admin_token_over, binary};
pub use streams::{Lines, STREAM_PATIENCE, Sse, SseEvent};

/// A server running inside the test process on its own database.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A plain HTTP client.
    pub client: reqwest::Client,
    /// The server's store, for tests that act on the database directly.
    pub store: Arc<dyn Store>,
    /// The database URL the server uses.
    pub database_url: String,
    /// The file holding the key that seals secrets (give it to `miaas` in local mode
    /// as `MIAAS_SECRET_KEY_FILE`).
    pub secret_key_file: std::path::PathBuf,
    /// The bootstrap admin's password (created on the fresh database).
    pub admin_password: String,
    /// The cluster's join token (created on the fresh database).
    pub join_token: String,
    /// Whether the server checks credentials (see [`TestServer::secure`]).
    pub auth: bool,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

impl TestServer {
    /// A server with the default configuration, but authentication off (the
    /// original API, for the suites that test everything else).
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server with authentication on, as in production.
    pub async fn secure() -> Self {
        Self::spawn_with(|config| config.auth = AuthMode::On).await
    }

    /// A server whose configuration `tweak` adjusts (authentication starts off;
    /// host and port are then forced to 127.0.0.1:0).
    pub async fn spawn_with(tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = test_database_url(dir.path()).await;
        Self::spawn_on(dir, database_url, tweak).await
    }

    /// A server on `database_url`, keeping `dir` alive as long as it runs.
    pub async fn spawn_on(
        dir: TempDir,
        database_url: String,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = miaas_server::telemetry::init("info", miaas_server::LogFormat::Text);
        }
        let mut config = ServerConfig::with_database(&database_url);
        config.secret_key_file = Some(dir.path().join("miaas.key"));
        config.auth = AuthMode::Off;
        tweak(&mut config);
        let secret_key_file = config.secret_key_file.clone().expect("a key file");
        config.host = "127.0.0.1".into();
        config.port = 0;
        let options = config.store_options().expect("store options");
        let store = miaas_core::store::connect_with(&config.database_url, &options)
            .await
            .expect("open store");
        let app = Application::build_with_store(&config, store.clone())
            .await
            .expect("build server");
        let created = app.bootstrap_credentials().clone();
        let admin_password = created.admin.map(|(_, pw)| pw).unwrap_or_default();
        let join_token = created.join_token.unwrap_or_default();
        let auth = config.auth == AuthMode::On;
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            app.run_until(stop).await.expect("server runs");
        });
        Self {
            base,
            client: reqwest::Client::new(),
            store,
            database_url,
            secret_key_file,
            admin_password,
            join_token,
            auth,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `path`; returns status and JSON body (`Null` when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.client.get(self.url(path))).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.client.post(self.url(path)).json(body)).await
    }

    /// POST `body` as JSON to `path` with `Authorization: Bearer <token>`.
    pub async fn post_as(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        send(
            self.client
                .post(self.url(path))
                .bearer_auth(token)
                .json(body),
        )
        .await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.client.delete(self.url(path))).await
    }

    /// Registers `name` (with the join token); returns `(node_id, node_token)`.
    pub async fn register(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .post_as(
                &self.join_token,
                "/api/v1/nodes/register",
                &registration(name),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        (
            body["node_id"].as_str().expect("node_id").to_string(),
            body["node_token"].as_str().expect("node_token").to_string(),
        )
    }

    /// Registers the node `body` describes (as sent, without a credential: for
    /// servers with authentication off); returns `(node_id, node_token)`.
    pub async fn register_body(&self, body: &Value) -> (String, String) {
        let (status, reg) = self.post("/api/v1/nodes/register", body).await;
        assert_eq!(status, 201, "{reg}");
        (
            reg["node_id"].as_str().expect("node_id").to_string(),
            reg["node_token"].as_str().expect("node_token").to_string(),
        )
    }

    /// Polls GET `path` until `done` holds for its JSON; fails after 20 s.
    pub async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let (_, body) = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never reached the state: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// An access token of the bootstrap admin (`POST /api/v1/auth/token`).
    pub async fn admin_token(&self) -> String {
        self.login("admin", &self.admin_password.clone()).await
    }

    /// An access token of `username`.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/token",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Creates an API token with `role` (as the admin); returns the token.
    pub async fn api_token(&self, role: &str) -> String {
        let admin = self.admin_token().await;
        let (status, body) = self
            .post_as(
                &admin,
                "/api/v1/tokens",
                &json!({"name": format!("{role}-token"), "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// GET `path` with `Authorization: Bearer <token>`.
    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        send(self.client.get(self.url(path)).bearer_auth(token)).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Set to `postgres` (with [`POSTGRES_ENV`]) to run the HTTP and CLI suites on
/// PostgreSQL instead of SQLite.
pub const BACKEND_ENV: &str = "MIAAS_TEST_BACKEND";

/// Two servers on one fresh PostgreSQL schema, sharing the key that seals secrets
/// (as the README says replicas must); `None`, saying so, when
/// [`POSTGRES_ENV`] is not set.
pub async fn postgres_replicas() -> Option<(TestServer, TestServer)> {
    let Some(url) = postgres_url().await else {
        eprintln!("{POSTGRES_ENV} is not set: nothing to run on");
        return None;
    };
    let first_dir = tempfile::tempdir().expect("temp dir");
    let key_file = first_dir.path().join("miaas.key");
    let shared = |c: &mut ServerConfig| c.secret_key_file = Some(key_file.clone());
    let first = TestServer::spawn_on(first_dir, url.clone(), shared).await;
    let second = TestServer::spawn_on(tempfile::tempdir().expect("temp dir"), url, shared).await;
    Some((first, second))
}

/// Starts a simulated agent named `name` (state under `dir`) on `server`, waits
/// until it is online, deploys `id` and waits until it runs there.
pub async fn running_on_an_agent(
    server: &TestServer,
    dir: &std::path::Path,
    name: &str,
    id: &str,
) -> AgentProcess {
    let agent = AgentProcess::simulated(&server.base, &server.join_token, dir, name);
    server
        .wait_for("/api/v1/nodes", |nodes| {
            nodes.as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["name"] == name && n["status"] == "online")
            })
        })
        .await;
    let (status, _) = server.post("/api/v1/deployments", &deployment(id)).await;
    assert_eq!(status, 202);
    server
        .wait_for(&format!("/api/v1/deployments/{id}"), |d| {
            d["status"] == "running"
        })
        .await;
    agent
}

/// A PostgreSQL server URL for tests (an admin URL; each test gets its own schema).
pub const POSTGRES_ENV: &str = "MIAAS_TEST_POSTGRES_URL";

/// A fresh PostgreSQL schema URL when [`POSTGRES_ENV`] is set.
pub async fn postgres_url() -> Option<String> {
    let admin = std::env::var(POSTGRES_ENV).ok()?;
    let schema = format!("t{}", uuid::Uuid::new_v4().simple());
    Some(
        miaas_core::store::postgres::schema_url(&admin, &schema)
            .await
            .expect("create a test schema"),
    )
}

/// A fresh database for one test: a SQLite file in `dir`, or a PostgreSQL schema
/// when [`BACKEND_ENV`] says `postgres`.
pub async fn test_database_url(dir: &std::path::Path) -> String {
    if std::env::var(BACKEND_ENV).as_deref() == Ok("postgres") {
        return postgres_url()
            .await
            .unwrap_or_else(|| panic!("{BACKEND_ENV}=postgres needs {POSTGRES_ENV}"));
    }
    format!("sqlite://{}", dir.join("test.db").display())
}

/// Sends a request; returns status and JSON body (`Null` when the body is not JSON).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request reaches the server");
    let status = response.status().as_u16();
    let text = response.text().await.expect("response body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A registration body for `name`, shaped like the original README's example.
pub fn registration(name: &str) -> Value {
    json!({
        "name": name,
        "ip": "192.168.1.10",
        "capabilities": {
            "os": "linux",
            "cpu_count": 8,
            "mem_mb": 16000,
            "disk_mb": 500000,
            "gpus": [{"id": 0, "model": "RTX 3090", "mem_mb": 24000}],
            "docker": {"version": "24.0.0", "available": true}
        }
    })
}

/// A heartbeat body, as in the original README.
pub fn heartbeat() -> Value {
    json!({
        "cpu_usage": 45.5,
        "mem_usage": 60.2,
        "disk_free_mb": 450000,
        "running_containers": ["postgres", "redis"]
    })
}

/// A deployment request for `id`.
pub fn deployment(id: &str) -> Value {
    json!({
        "deployment_id": id,
        "template_id": "postgres",
        "rendered_compose": "version: '3.8'\nservices:\n  postgres:\n    image: postgres:16\n",
        "env": {"POSTGRES_PASSWORD": "secret"},
        "action": "apply"
    })
}
