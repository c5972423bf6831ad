//! `miaas db backup` takes a consistent copy of a running server's SQLite database
//! while writers keep going; `miaas db restore` gives a server that answers as at
//! the backup's moment, needs the key to open the secrets, and refuses to
//! overwrite a database in use or holding data unless `--force`.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use miaas_tests::{ServerProcess, binary, miaas, registration, send};
use serde_json::{Value, json};

fn deployment(id: &str) -> Value {
    json!({
        "deployment_id": id,
        "template_id": "custom",
        "rendered_compose": "services:\n  app:\n    image: busybox\n",
        "env": {"API_KEY": format!("key-of-{id}")},
    })
}

fn server_args(db: &std::path::Path) -> Vec<String> {
    ["--host", "127.0.0.1", "--port", "0", "--database-url"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("sqlite://{}", db.display())])
        .collect()
}

async fn deployment_ids(server: &ServerProcess) -> Vec<String> {
    let (status, body) = send(reqwest::Client::new().get(server.url("/api/v1/deployments"))).await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["deployment_id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_backup_under_load_restores_to_the_state_at_its_moment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let args = server_args(&db);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let client = reqwest::Client::new();
    let (status, _) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&registration("backup-node")),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        client
            .post(server.url("/api/v1/deployments"))
            .json(&deployment("first")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let first = send(client.get(server.url("/api/v1/deployments/first"))).await;

    // writers keep deploying while the backup is taken
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let (stop, mut stopping) = tokio::sync::watch::channel(false);
    let writer = {
        let acknowledged = acknowledged.clone();
        let url = server.url("/api/v1/deployments");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                if *stopping.borrow_and_update() {
                    break;
                }
                let id = format!("load-{i:05}");
                let (status, _) = send(client.post(&url).json(&deployment(&id))).await;
                if status == 202 {
                    acknowledged.lock().unwrap().push(id);
                }
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while acknowledged.lock().unwrap().len() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers' deployments are acknowledged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let db_url = format!("sqlite://{}", db.display());
    let cwd = dir.path().to_path_buf();
    let backup = tokio::task::spawn_blocking(move || {
        miaas(
            &cwd,
            &["--database-url", &db_url, "db", "backup", "backup.db"],
            &[],
            None,
        )
    })
    .await
    .unwrap()
    .ok();
    let after: Vec<String> = acknowledged.lock().unwrap().clone();
    stop.send(true).unwrap();
    writer.await.unwrap();
    assert!(backup.stdout.contains("deployments"), "{backup:?}");
    let file = dir.path().join("backup.db");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the backup holds hashes");
    assert!(!dir.path().join("backup.db.partial").exists());

    // a second backup to the same name is refused
    let again = miaas(
        dir.path(),
        &[
            "--database-url",
            &format!("sqlite://{}", db.display()),
            "db",
            "backup",
            "backup.db",
        ],
        &[],
        None,
    );
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");

    // without the key the secrets cannot be opened: nothing is restored
    let elsewhere = tempfile::tempdir().unwrap();
    let restored = elsewhere.path().join("restored.db");
    let restored_url = format!("sqlite://{}", restored.display());
    let backup_path = file.display().to_string();
    let restore = |force: bool, key: bool| {
        let mut args = vec![
            "--database-url",
            restored_url.as_str(),
            "db",
            "restore",
            backup_path.as_str(),
        ];
        if force {
            args.push("--force");
        }
        let key_file = dir.path().join("cp.db.key").display().to_string();
        let env: Vec<(&str, &str)> = if key {
            vec![("MIAAS_SECRET_KEY_FILE", key_file.as_str())]
        } else {
            vec![]
        };
        miaas(elsewhere.path(), &args, &env, None)
    };
    let keyless = restore(false, false);
    assert_eq!(keyless.code, 1, "{keyless:?}");
    assert!(keyless.stderr.contains("sealed with key id"), "{keyless:?}");
    assert!(!restored.exists(), "nothing replaced without the key");

    let done = restore(false, true).ok();
    assert!(done.stdout.contains("restored"), "{done:?}");
    let refused = restore(false, true);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    restore(true, true).ok();

    // the restored server answers as the original did at the backup's moment
    let key_file = dir.path().join("cp.db.key").display().to_string();
    let args = server_args(&restored);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let copy = ServerProcess::start(
        &binary("miaas-server"),
        &args,
        elsewhere.path(),
        &[("MIAAS_SECRET_KEY_FILE", key_file.as_str())],
    );
    let ids = deployment_ids(&copy).await;
    for id in &before {
        assert!(
            ids.contains(id),
            "{id}, acknowledged before the backup, is in it"
        );
    }
    for id in &ids {
        assert!(
            id == "first" || after.contains(id),
            "{id} was acknowledged by the end of the backup"
        );
    }
    let copied = send(client.get(copy.url("/api/v1/deployments/first"))).await;
    assert_eq!(copied, first, "the same answer");
    let (status, nodes) = send(client.get(copy.url("/api/v1/nodes"))).await;
    assert_eq!(status, 200);
    assert_eq!(nodes[0]["name"], "backup-node", "{nodes}");

    // a database in use is never replaced
    let busy = restore(true, true);
    assert_eq!(busy.code, 1, "{busy:?}");
    assert!(busy.stderr.contains("already served"), "{busy:?}");
    drop(copy);
    drop(server);

    // the same backup fills an empty PostgreSQL database
    let Some(postgres) = miaas_tests::postgres_url().await else {
        return;
    };
    let key = [("MIAAS_SECRET_KEY_FILE", key_file.as_str())];
    let into_postgres = |args: &[&str]| {
        let mut all = vec!["--database-url", postgres.as_str()];
        all.extend_from_slice(args);
        miaas(elsewhere.path(), &all, &key, None)
    };
    into_postgres(&["db", "restore", &backup_path]).ok();
    let listed = into_postgres(&["deployments", "list", "-o", "json"])
        .ok()
        .json();
    let mut on_postgres: Vec<String> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|d| d["deployment_id"].as_str().map(str::to_string))
        .collect();
    on_postgres.sort();
    assert_eq!(on_postgres, ids);
    let refused = into_postgres(&["db", "restore", &backup_path]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("not empty"), "{refused:?}");
}

#[tokio::test]
async fn a_file_that_is_not_a_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("junk.db"),
        "not a database at all, not even close",
    )
    .unwrap();
    let run = miaas(
        dir.path(),
        &[
            "--database-url",
            "sqlite://target.db",
            "db",
            "restore",
            "junk.db",
        ],
        &[],
        None,
    );
    assert_ne!(run.code, 0, "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{run:?}");
    assert!(!dir.path().join("target.db").exists());
}
