//! The real binaries: `miaas-server` and `miaas serve`, restarts, configuration.

use std::process::Command;

use miaas_tests::{ServerProcess, binary, deployment, heartbeat, registration, send};
use serde_json::{Value, json};

async fn get(client: &reqwest::Client, url: String) -> Value {
    let (status, body) = send(client.get(url)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn local_args(db_url: &str) -> Vec<String> {
    [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        db_url,
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test]
async fn everything_acknowledged_before_a_restart_is_there_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("cp.db").display());
    let args = local_args(&db_url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = reqwest::Client::new();

    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let (_, reg) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("w1")),
    )
    .await;
    let node_id = reg["node_id"].as_str().unwrap().to_string();
    let token = reg["node_token"].as_str().unwrap().to_string();
    send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("w2")),
    )
    .await;
    let beat = format!("/api/v1/nodes/{node_id}/heartbeat");
    let (status, _) = send(
        client
            .post(server.url(&beat))
            .bearer_auth(&token)
            .json(&heartbeat()),
    )
    .await;
    assert_eq!(status, 200);
    for id in ["d1", "d2"] {
        send(
            client
                .post(server.url("/api/v1/deployments"))
                .json(&deployment(id)),
        )
        .await;
    }
    let mut changed = deployment("d1");
    changed["env"] = json!({"A": "b"});
    send(
        client
            .post(server.url("/api/v1/deployments"))
            .json(&changed),
    )
    .await;
    send(client.delete(server.url("/api/v1/deployments/d2"))).await;

    let nodes_before = get(&client, server.url("/api/v1/nodes")).await;
    let deployments_before = get(&client, server.url("/api/v1/deployments")).await;
    assert_eq!(nodes_before.as_array().unwrap().len(), 2);
    assert_eq!(deployments_before[0]["revision"], 2);
    assert_eq!(deployments_before[1]["status"], "deleting");
    let (status, log) = server.terminate();
    assert!(
        status.success(),
        "graceful stop exits 0: {status:?} {log:?}"
    );

    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    assert_eq!(
        get(&client, server.url("/api/v1/nodes")).await,
        nodes_before
    );
    assert_eq!(
        get(&client, server.url("/api/v1/deployments")).await,
        deployments_before
    );
    let (status, _) = send(
        client
            .post(server.url(&beat))
            .bearer_auth(&token)
            .json(&heartbeat()),
    )
    .await;
    assert_eq!(status, 200, "a node's token survives a restart");
}

#[tokio::test]
async fn the_default_database_is_control_plane_db_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0"],
        dir.path(),
        &[],
    );
    let client = reqwest::Client::new();
    let (status, _) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("w")),
    )
    .await;
    assert_eq!(status, 201);
    assert!(dir.path().join("control_plane.db").is_file());
}

#[tokio::test]
async fn the_sqlalchemy_url_form_means_the_relative_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", "sqlite:///./control_plane.db")];
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0"],
        dir.path(),
        &env,
    );
    let client = reqwest::Client::new();
    assert_eq!(
        get(&client, server.url("/health")).await["status"],
        "healthy"
    );
    assert!(dir.path().join("control_plane.db").is_file());
}

#[tokio::test]
async fn miaas_serve_starts_the_same_server_configured_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MIAAS_HOST", "127.0.0.1"),
        ("MIAAS_PORT", "0"),
        ("MIAAS_PUBLIC_URL", "http://cp.internal:8080"),
        ("MIAAS_HEARTBEAT_TIMEOUT", "2m"),
        ("CORS_ORIGINS", "http://ui.example"),
        ("LOG_LEVEL", "INFO"),
    ];
    let server = ServerProcess::start(&binary("miaas"), &["serve"], dir.path(), &env);
    let client = reqwest::Client::new();
    let (status, reg) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("w")),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(reg["control_plane_url"], "http://cp.internal:8080");
    let preflight = client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/nodes"))
        .header("Origin", "http://ui.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://ui.example"
    );
    assert!(dir.path().join("control_plane.db").is_file());
    let (status, log) = server.terminate();
    assert!(status.success());
    assert!(log.iter().any(|l| l.contains("shutdown")), "{log:?}");
}

#[test]
fn both_binaries_document_every_setting_in_help() {
    for (bin, args) in [
        ("miaas-server", vec!["--help"]),
        ("miaas", vec!["serve", "--help"]),
    ] {
        let out = Command::new(binary(bin)).args(&args).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        for needle in [
            "--host",
            "MIAAS_HOST",
            "--port",
            "MIAAS_PORT",
            "--database-url",
            "DATABASE_URL",
            "LOG_LEVEL",
            "CORS_ORIGINS",
            "--heartbeat-timeout",
            "MIAAS_HEARTBEAT_TIMEOUT",
            "--public-url",
            "MIAAS_PUBLIC_URL",
        ] {
            assert!(help.contains(needle), "{bin} --help lacks {needle}");
        }
    }
}

#[test]
fn bad_configuration_is_one_clear_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary("miaas-server"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database-url",
            "mysql://db/x",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unsupported scheme"), "{stderr}");
    assert!(!stderr.contains("panicked"));

    let out = Command::new(binary("miaas-server"))
        .args(["--heartbeat-timeout", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn with_no_migrate_the_server_refuses_an_unmigrated_database_until_db_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let out = Command::new(binary("miaas-server"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-migrate",
            "--database-url",
            &db_url,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("miaas db migrate"), "{stderr}");

    let out = Command::new(binary("miaas"))
        .args(["--database-url", &db_url, "db", "migrate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "database schema is up to date"
    );
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-migrate",
            "--database-url",
            &db_url,
        ],
        dir.path(),
        &[],
    );
    drop(server);
}

fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

#[tokio::test]
async fn environments_are_sealed_at_rest_and_survive_a_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let db_url = format!("sqlite://{}", db.display());
    let args = local_args(&db_url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let client = reqwest::Client::new();
    let secret = "hunter2-very-secret";
    let mut body = deployment("app");
    body["env"] = json!({"DB_PASSWORD": secret});

    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let (status, _) = send(client.post(server.url("/api/v1/deployments")).json(&body)).await;
    assert_eq!(status, 202);
    let (status, _) = server.terminate();
    assert!(status.success());
    let key_file = dir.path().join("cp.db.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the generated key file is private");
    for file in ["cp.db", "cp.db-wal"] {
        assert!(
            !file_contains(&dir.path().join(file), secret),
            "{file} holds the secret in clear"
        );
    }
    let old_key = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();

    // rotate: a new key, the old one as previous; everything is re-sealed at start
    let new_key = "ab".repeat(32);
    let rotate = [
        ("MIAAS_SECRET_KEY", new_key.as_str()),
        ("MIAAS_PREVIOUS_SECRET_KEYS", old_key.as_str()),
    ];
    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &rotate);
    let (_, d) = send(client.get(server.url("/api/v1/deployments/app"))).await;
    assert_eq!(d["env"]["DB_PASSWORD"], secret);
    server.terminate();

    // the old key is no longer needed
    let only_new = [("MIAAS_SECRET_KEY", new_key.as_str())];
    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &only_new);
    let (status, d) = send(client.get(server.url("/api/v1/deployments/app"))).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["env"]["DB_PASSWORD"], secret);
    server.terminate();

    // with a wrong key it refuses to start, naming the key the database needs
    let out = Command::new(binary("miaas-server"))
        .args(&args)
        .current_dir(dir.path())
        .env("MIAAS_SECRET_KEY", "cd".repeat(32))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = miaas_core::secrets::SecretKey::parse(&new_key)
        .unwrap()
        .id();
    assert!(
        stderr.contains(&format!("sealed with key id {expected}")),
        "{stderr}"
    );
    assert!(
        !stderr.contains(secret) && !stderr.contains(&new_key),
        "{stderr}"
    );
}
