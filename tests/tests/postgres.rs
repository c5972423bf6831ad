//! PostgreSQL: several replicas on one database, a replica dying, PostgreSQL
//! restarting under a stream of writes, and moving a SQLite install onto PostgreSQL.
//! These run when MIAAS_TEST_POSTGRES_URL names a server (CI always sets it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use miaas_tests::{
    OwnPostgres, ServerProcess, TestServer, binary, deployment, heartbeat, miaas, postgres_url,
    registration, send,
};
use serde_json::{Value, json};

async fn postgres() -> Option<String> {
    let url = postgres_url().await;
    if url.is_none() {
        eprintln!("MIAAS_TEST_POSTGRES_URL is not set: PostgreSQL tests have nothing to run on");
    }
    url
}

fn sized(name: &str, cpus: u32) -> Value {
    let mut body = registration(name);
    body["capabilities"]["cpu_count"] = json!(cpus);
    body["capabilities"]["gpus"] = json!([]);
    body
}

fn needing(id: &str, cpus: f64) -> Value {
    let mut body = deployment(id);
    body["requirements"] = json!({"cpus": cpus});
    body
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn two_replicas_place_500_concurrent_deploys_without_overcommit() {
    let Some(url) = postgres().await else { return };
    // replicas share the key that seals secrets, as the README says they must
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("miaas.key");
    let shared = |c: &mut miaas_server::ServerConfig| c.secret_key_file = Some(key_file.clone());
    let a = TestServer::spawn_on(tempfile::tempdir().unwrap(), url.clone(), shared).await;
    let b = TestServer::spawn_on(tempfile::tempdir().unwrap(), url, shared).await;
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        let (status, _) = server
            .post("/api/v1/nodes/register", &sized(&format!("n{i}"), 4))
            .await;
        assert_eq!(status, 201);
    }
    let fits = 5 * 4;
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            let request = server
                .client
                .post(server.url("/api/v1/deployments"))
                .json(&needing(&format!("d{i:03}"), 1.0));
            tokio::spawn(send(request))
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 202, "{body}");
    }
    let (_, list) = b.get("/api/v1/deployments").await;
    let list = list.as_array().unwrap();
    let ids: BTreeSet<String> = list
        .iter()
        .map(|d| d["deployment_id"].to_string())
        .collect();
    assert_eq!(
        (list.len(), ids.len()),
        (500, 500),
        "none lost or duplicated"
    );
    let scheduled = list.iter().filter(|d| d["status"] == "scheduled").count();
    assert_eq!(scheduled, fits);
    assert_eq!(
        list.iter().filter(|d| d["status"] == "pending").count(),
        500 - fits
    );
    let (_, nodes) = a.get("/api/v1/nodes").await;
    for node in nodes.as_array().unwrap() {
        assert_eq!(node["reserved"]["cpus"], 4.0, "{node}");
        let here = list.iter().filter(|d| d["node_id"] == node["id"]).count();
        assert_eq!(here, 4, "{node}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn the_sweep_goes_on_when_a_replica_dies() {
    let Some(url) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        url.as_str(),
        "--heartbeat-timeout",
        "800ms",
        "--reschedule-grace",
        "200ms",
        "--sweep-interval",
        "100ms",
    ];
    let first = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let second = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let client = reqwest::Client::new();
    let register = |body: Value| send(client.post(first.url("/api/v1/nodes/register")).json(&body));
    let (_, a) = register(sized("a", 4)).await;
    send(
        client
            .post(first.url("/api/v1/deployments"))
            .json(&needing("d", 1.0)),
    )
    .await;
    let (_, b) = register(sized("b", 4)).await;
    let (_, d) = send(client.get(first.url("/api/v1/deployments/d"))).await;
    assert_eq!(d["node_id"], a["node_id"]);

    first.kill();
    let b_id = b["node_id"].as_str().unwrap().to_string();
    let b_token = b["node_token"].as_str().unwrap().to_string();
    let beat = second.url(&format!("/api/v1/nodes/{b_id}/heartbeat"));
    let deployment = second.url("/api/v1/deployments/d");
    wait_until("d to move to b through the surviving replica", async || {
        send(client.post(&beat).bearer_auth(&b_token).json(&heartbeat())).await;
        let (_, d) = send(client.get(&deployment)).await;
        d["status"] == "scheduled" && d["node_id"] == json!(b_id)
    })
    .await;
    let (_, node_a) =
        send(client.get(second.url(&format!("/api/v1/nodes/{}", a["node_id"].as_str().unwrap()))))
            .await;
    assert_eq!(node_a["status"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn a_postgres_restart_loses_no_acknowledged_write_and_the_server_recovers() {
    if postgres().await.is_none() {
        return;
    }
    let pg = OwnPostgres::start();
    let server = TestServer::spawn_on(tempfile::tempdir().unwrap(), pg.url.clone(), |c| {
        c.db_statement_timeout = Duration::from_secs(5);
    })
    .await;
    assert_eq!(server.get("/health").await.0, 200);

    // a stream of writes, each remembered when acknowledged
    let writer = {
        let client = server.client.clone();
        let url = server.url("/api/v1/deployments");
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..400 {
                let id = format!("w{i:03}");
                let answer = client.post(&url).json(&deployment(&id)).send().await;
                if answer.is_ok_and(|r| r.status().is_success()) {
                    acknowledged.push(id);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            acknowledged
        })
    };
    wait_until(
        "some writes to be acknowledged before the outage",
        async || {
            let (_, list) = server.get("/api/v1/deployments").await;
            list.as_array().is_some_and(|l| l.len() >= 20)
        },
    )
    .await;
    pg.stop();
    wait_until("/health to say 503 while PostgreSQL is down", async || {
        server.get("/health").await.0 == 503
    })
    .await;
    let (status, body) = server.get("/api/v1/nodes").await;
    assert_eq!(status, 503, "{body}");
    pg.resume();
    wait_until("/health to recover without a server restart", async || {
        server.get("/health").await.0 == 200
    })
    .await;

    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() > 50,
        "{} writes acknowledged",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() < 400,
        "the outage should refuse some writes"
    );
    let (status, list) = server.get("/api/v1/deployments").await;
    assert_eq!(status, 200);
    let stored: BTreeSet<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployment_id"].as_str().unwrap().to_string())
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged write {id} was lost");
    }
    assert_eq!(
        server
            .post("/api/v1/deployments", &deployment("after"))
            .await
            .0,
        202
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn db_copy_moves_a_sqlite_install_onto_postgres_with_the_same_answers() {
    let Some(pg_url) = postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("cp.db").display());
    // one key for the install, before and after the move
    let key_file = dir.path().join("install.key");
    let keyed = |c: &mut miaas_server::ServerConfig| c.secret_key_file = Some(key_file.clone());
    let key_env = [("MIAAS_SECRET_KEY_FILE", key_file.to_str().unwrap())];
    let sqlite =
        TestServer::spawn_on(tempfile::tempdir().unwrap(), sqlite_url.clone(), keyed).await;
    let (node, token) = sqlite.register("worker-01").await;
    // an agent that did not report its disk: it stays unknown on the other side
    let mut no_disk = registration("worker-02");
    no_disk["capabilities"]
        .as_object_mut()
        .unwrap()
        .remove("disk_mb");
    let (status, body) = sqlite.post("/api/v1/nodes/register", &no_disk).await;
    assert_eq!(status, 201, "{body}");
    sqlite
        .post_as(
            &token,
            &format!("/api/v1/nodes/{node}/heartbeat"),
            &heartbeat(),
        )
        .await;
    for id in ["one", "two", "three"] {
        sqlite.post("/api/v1/deployments", &deployment(id)).await;
    }
    sqlite.delete("/api/v1/deployments/two").await;
    // a template added through the API, in two versions, and a deployment of it
    let template = |port: u32| {
        json!({"parameters": [{"name": "port", "type": "integer", "default": port}],
               "compose": "services:\n  web:\n    image: traefik/whoami\n    ports: [{{ port ~ \":80\" }}]\n"})
    };
    let (status, body) = sqlite
        .post("/api/v1/templates/whoami", &template(8080))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        sqlite
            .client
            .put(sqlite.url("/api/v1/templates/whoami"))
            .json(&template(9090)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let from_template = json!({"deployment_id": "four", "template_id": "whoami", "params": {}});
    assert_eq!(
        sqlite.post("/api/v1/deployments", &from_template).await.0,
        202
    );
    let nodes = sqlite.get("/api/v1/nodes").await.1;
    let deployments = sqlite.get("/api/v1/deployments").await.1;
    let (admin_password, join_token) = (sqlite.admin_password.clone(), sqlite.join_token.clone());
    sqlite.stop().await;

    let run = miaas(
        dir.path(),
        &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
        &key_env,
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        "copied 2 nodes, 4 deployments and 2 template versions; counts verified"
    );
    let again = miaas(
        dir.path(),
        &["db", "copy", "--from", &sqlite_url, "--to", &pg_url],
        &key_env,
        None,
    );
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("not empty"), "{again:?}");

    let pg = TestServer::spawn_on(tempfile::tempdir().unwrap(), pg_url, keyed).await;
    let copied = pg.get("/api/v1/nodes").await.1;
    assert_eq!(copied, nodes);
    assert_eq!(copied[1]["name"], "worker-02");
    assert_eq!(
        copied[1]["capabilities"].get("disk_mb"),
        Some(&Value::Null),
        "an unknown disk stays unknown, not 0"
    );
    assert_eq!(pg.get("/api/v1/deployments").await.1, deployments);
    let (_, whoami) = pg.get("/api/v1/templates/whoami").await;
    assert_eq!(whoami["version"], 2, "{whoami}");
    let (status, _) = pg
        .post_as(
            &token,
            &format!("/api/v1/nodes/{node}/heartbeat"),
            &heartbeat(),
        )
        .await;
    assert_eq!(status, 200, "node tokens survive the move");
    let admin = pg.login("admin", &admin_password).await;
    let (status, _) = pg
        .post_as(
            &join_token,
            "/api/v1/nodes/register",
            &registration("worker-03"),
        )
        .await;
    assert_eq!(status, 201, "the join token survives the move");
    let (status, shown) = pg.get_as(&admin, "/api/v1/cluster/join-token").await;
    assert_eq!(
        (status, shown["join_token"].as_str()),
        (200, Some(join_token.as_str()))
    );
}

#[test]
fn a_replica_without_the_shared_key_refuses_to_start_and_says_which_key() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = runtime.block_on(postgres()) else {
        return;
    };
    let first_dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", url.as_str()), ("MIAAS_AUTH", "on")];
    let local = ["--host", "127.0.0.1", "--port", "0"];
    let first = ServerProcess::start(&binary("miaas-server"), &local, first_dir.path(), &env);
    let key = std::fs::read_to_string(first_dir.path().join("miaas.key")).expect("its key file");
    let key_id = miaas_core::secrets::SecretKey::parse(&key).unwrap().id();

    let second_dir = tempfile::tempdir().unwrap();
    let second = std::process::Command::new(binary("miaas-server"))
        .args(["--host", "127.0.0.1", "--port", "0"])
        .current_dir(second_dir.path())
        .env("DATABASE_URL", &url)
        .env("MIAAS_AUTH", "on")
        .env_remove("MIAAS_SECRET_KEY")
        .env_remove("MIAAS_SECRET_KEY_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a second replica");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    for needed in ["MIAAS_SECRET_KEY", "--secret-key-file", key_id.as_str()] {
        assert!(stderr.contains(needed), "names {needed}: {stderr}");
    }
    assert!(
        !second_dir.path().join("miaas.key").exists(),
        "no key of its own is generated"
    );

    // with the shared key it starts and serves what the first sealed
    let shared_key_file = first_dir.path().join("miaas.key");
    let keyed = [
        ("DATABASE_URL", url.as_str()),
        ("MIAAS_AUTH", "on"),
        ("MIAAS_SECRET_KEY_FILE", shared_key_file.to_str().unwrap()),
    ];
    let third = ServerProcess::start(&binary("miaas-server"), &local, second_dir.path(), &keyed);
    let (status, _) = third.terminate();
    assert!(status.success());
    let (status, _) = first.terminate();
    assert!(status.success());
}

/// Each replica keeps the fleet and remembered credentials in memory; what another
/// replica committed must hold on the very next request, without any wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn a_replica_sees_the_others_writes_and_revocations_on_the_next_request() {
    let Some(url) = postgres().await else { return };
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("miaas.key");
    let secure = |c: &mut miaas_server::ServerConfig| {
        c.secret_key_file = Some(key_file.clone());
        c.auth = miaas_server::AuthMode::On;
    };
    let a = TestServer::spawn_on(tempfile::tempdir().unwrap(), url.clone(), secure).await;
    let b = TestServer::spawn_on(tempfile::tempdir().unwrap(), url, secure).await;
    let token = a.api_token("operator").await;
    // b reads the fleet and remembers the token
    assert_eq!(b.get_as(&token, "/api/v1/nodes").await.0, 200);

    let (status, node) = a
        .post_as(&a.join_token, "/api/v1/nodes/register", &sized("n1", 4))
        .await;
    assert_eq!(status, 201, "{node}");
    let id = node["node_id"].as_str().unwrap().to_string();
    let (status, seen) = b.get_as(&token, &format!("/api/v1/nodes/{id}")).await;
    assert_eq!((status, seen["name"].clone()), (200, json!("n1")), "{seen}");

    let admin = a.admin_token().await;
    let cordon = a
        .client
        .patch(a.url(&format!("/api/v1/nodes/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"schedulable": false}));
    assert_eq!(send(cordon).await.0, 200);
    let (_, seen) = b.get_as(&token, &format!("/api/v1/nodes/{id}")).await;
    assert_eq!(seen["schedulable"], false, "{seen}");

    let (_, tokens) = a.get_as(&admin, "/api/v1/tokens").await;
    let token_id = tokens.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoke = a
        .client
        .delete(a.url(&format!("/api/v1/tokens/{token_id}")))
        .bearer_auth(&admin);
    assert!(send(revoke).await.0 < 300);
    assert_eq!(
        b.get_as(&token, "/api/v1/nodes").await.0,
        401,
        "revoked on a, refused by b's next request"
    );
}
