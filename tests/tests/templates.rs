//! Templates over HTTP: the catalog, dry runs, deployments rendered by the server,
//! templates added through the API (versioned) and from a folder.

use std::time::Duration;

use miaas_tests::{TestServer, registration, send};
use serde_json::{Value, json};

/// Registers `name` with `gpus` GPUs; answers its id.
async fn node_with_gpus(server: &TestServer, name: &str, gpus: u32) -> String {
    let mut body = registration(name);
    body["capabilities"]["gpus"] = (0..gpus)
        .map(|id| json!({"id": id, "model": "NVIDIA A100", "mem_mb": 81920}))
        .collect();
    server.register_body(&body).await.0
}

async fn put(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    send(server.client.put(server.url(path)).json(body)).await
}

fn whoami(port: u32) -> Value {
    json!({
        "name": "Who am I",
        "description": "echoes requests",
        "category": "web",
        "parameters": [
            {"name": "port", "type": "integer", "default": port, "min": 1, "max": 65535},
            {"name": "greeting", "type": "string", "default": "hi"}
        ],
        "compose": "services:\n  web:\n    image: traefik/whoami\n    ports: [{{ port ~ \":80\" }}]\n    environment:\n      GREETING: {{ greeting }}\n"
    })
}

#[tokio::test]
async fn the_catalog_lists_filters_and_describes_each_template() {
    let server = TestServer::spawn().await;
    let (status, list) = server.get("/api/v1/templates").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for id in [
        "postgres",
        "redis",
        "nginx",
        "ollama",
        "vllm",
        "jupyter",
        "text-embeddings-inference",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["source"] == "builtin")
    );

    let (_, ai) = server.get("/api/v1/templates?category=AI").await;
    let mut ai: Vec<&str> = ai
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    ai.sort();
    assert_eq!(
        ai,
        ["jupyter", "ollama", "text-embeddings-inference", "vllm"]
    );

    let (status, vllm) = server.get("/api/v1/templates/vllm").await;
    assert_eq!(status, 200);
    assert_eq!(vllm["version"], 2);
    assert!(vllm["compose"].as_str().unwrap().contains("{{ model }}"));
    let schema = &vllm["schema"];
    assert_eq!(schema["required"], json!(["model"]));
    assert_eq!(schema["properties"]["gpus"]["type"], "integer");
    assert_eq!(schema["properties"]["gpus"]["minimum"], 1);
    assert_eq!(schema["properties"]["gpus"]["default"], 1);
    assert_eq!(schema["properties"]["hf_token"]["writeOnly"], true);
    assert_eq!(schema["additionalProperties"], false);

    let (status, body) = server.get("/api/v1/templates/nope").await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("nope"));
}

#[tokio::test]
async fn a_render_is_a_dry_run_with_secrets_masked() {
    let server = TestServer::spawn().await;
    let (status, rendered) = server
        .post(
            "/api/v1/templates/postgres/render",
            &json!({"params": {"password": "hunter2-secret", "port": 6543}}),
        )
        .await;
    assert_eq!(status, 200, "{rendered}");
    let compose = rendered["rendered_compose"].as_str().unwrap();
    assert!(!compose.contains("hunter2"), "{compose}");
    let document: Value = serde_saphyr::from_str(compose).unwrap();
    assert_eq!(
        document["services"]["postgres"]["ports"],
        json!(["6543:5432"])
    );
    assert_eq!(rendered["params"]["password"], "***");
    assert_eq!(rendered["params"]["port"], 6543);
    assert_eq!(rendered["params"]["user"], "postgres", "defaults filled in");
    assert_eq!(rendered["secret_env"], json!(["MIAAS_SECRET_PASSWORD"]));
    assert_eq!(rendered["requirements"]["mem_mb"], 512);
    assert_eq!(rendered["template_version"], 2);
    let (_, deployments) = server.get("/api/v1/deployments").await;
    assert_eq!(deployments, json!([]), "nothing deployed");
}

#[tokio::test]
async fn bad_parameters_are_422_naming_the_parameter_and_change_nothing() {
    let server = TestServer::spawn().await;
    let cases = [
        (json!({"model": "m", "nope": 1}), "params.nope"),
        (json!({}), "params.model"),
        (json!({"model": "m", "gpus": "two"}), "params.gpus"),
        (json!({"model": "m", "gpus": 0}), "params.gpus"),
        (json!({"model": "has space"}), "params.model"),
        (json!({"model": "m", "dtype": "int3"}), "params.dtype"),
    ];
    for (params, field) in cases {
        let (status, body) = server
            .post(
                "/api/v1/templates/vllm/render",
                &json!({ "params": params }),
            )
            .await;
        assert_eq!(status, 422, "{params}: {body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{params}: {body}"
        );
        let (status, body) = server
            .post(
                "/api/v1/deployments",
                &json!({"deployment_id": "v", "template_id": "vllm", "params": params}),
            )
            .await;
        assert_eq!(status, 422, "{params}: {body}");
        assert!(body["detail"].as_str().unwrap().starts_with(field));
    }
    assert_eq!(server.get("/api/v1/deployments/v").await.0, 404);

    // neither a compose document nor params (the original's contract: the server
    // renders only when asked with `params`), an unknown template, both at once
    let (status, body) = server
        .post(
            "/api/v1/deployments",
            &json!({"deployment_id": "x", "template_id": "postgres"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("rendered_compose")
    );
    let (status, body) = server
        .post(
            "/api/v1/deployments",
            &json!({"deployment_id": "x", "template_id": "no-such-template", "params": {}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("no-such-template")
    );
    let (status, body) = server
        .post(
            "/api/v1/deployments",
            &json!({"deployment_id": "x", "template_id": "redis", "params": {},
                    "rendered_compose": "services: {a: {image: b}}"}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("params"));
    assert_eq!(
        server
            .post("/api/v1/templates/nope/render", &json!({}))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn a_template_deployment_is_placed_where_its_gpus_fit_and_revised_by_its_params() {
    let server = TestServer::spawn().await;
    let _one = node_with_gpus(&server, "one-gpu", 1).await;
    let two = node_with_gpus(&server, "two-gpus", 2).await;
    let request = json!({
        "deployment_id": "qwen", "template_id": "vllm",
        "params": {"model": "Qwen/Qwen2.5-7B-Instruct", "gpus": 2}
    });

    let (status, plan) = server
        .post(
            "/api/v1/placement/plan",
            &json!({"template_id": "vllm", "params": request["params"]}),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(plan["requirements"]["gpus"], 2);
    let candidates: Vec<&Value> = plan["candidates"].as_array().unwrap().iter().collect();
    assert_eq!(candidates.len(), 1, "{plan}");
    assert_eq!(candidates[0]["node_id"], two);

    let (status, ack) = server.post("/api/v1/deployments", &request).await;
    assert_eq!(status, 202, "{ack}");
    let (_, d) = server.get("/api/v1/deployments/qwen").await;
    assert_eq!(d["status"], "scheduled", "{d}");
    assert_eq!(d["node_id"], two);
    assert_eq!(d["gpu_ids"].as_array().unwrap().len(), 2);
    assert_eq!(d["requirements"]["gpus"], 2);
    assert_eq!(d["template_id"], "vllm");
    assert_eq!(d["template_version"], 2);
    assert_eq!(d["params"]["model"], "Qwen/Qwen2.5-7B-Instruct");
    assert_eq!(d["params"]["dtype"], "auto", "defaults are recorded");
    assert_eq!(d["params"]["hf_token"], "***");
    assert!(
        d["rendered_compose"]
            .as_str()
            .unwrap()
            .contains("Qwen/Qwen2.5-7B-Instruct")
    );

    // the same request again changes nothing; new params make a new revision
    let (_, ack) = server.post("/api/v1/deployments", &request).await;
    assert!(
        ack["message"].as_str().unwrap().contains("unchanged"),
        "{ack}"
    );
    let mut longer = request.clone();
    longer["params"]["max_model_len"] = json!(8192);
    server.post("/api/v1/deployments", &longer).await;
    let (_, d) = server.get("/api/v1/deployments/qwen").await;
    assert_eq!(d["revision"], 2);
    assert_eq!(d["params"]["max_model_len"], 8192);
    assert!(
        d["rendered_compose"]
            .as_str()
            .unwrap()
            .contains("--max-model-len")
    );
    assert_eq!(d["node_id"], two, "same requirements: it stays");

    // three GPUs fit nowhere, and placement says why
    let mut three = request.clone();
    three["deployment_id"] = json!("big");
    three["params"]["gpus"] = json!(3);
    server.post("/api/v1/deployments", &three).await;
    let (_, big) = server.get("/api/v1/deployments/big").await;
    assert_eq!(big["status"], "pending", "{big}");
    assert!(
        big["placement"]["message"]
            .as_str()
            .unwrap()
            .contains("GPU"),
        "{big}"
    );
}

#[tokio::test]
async fn a_generated_secret_is_made_once_kept_across_updates_and_sealed_at_rest() {
    let server = TestServer::secure().await;
    let operator = server.api_token("operator").await;
    let admin = server.admin_token().await;
    let request = |port: u32| json!({"deployment_id": "db", "template_id": "postgres", "params": {"port": port}});
    let post = |body: Value| {
        let (server, operator) = (&server, &operator);
        async move { server.post_as(operator, "/api/v1/deployments", &body).await }
    };
    let revealed = || async {
        let (status, d) = server
            .get_as(&admin, "/api/v1/deployments/db?reveal=true")
            .await;
        assert_eq!(status, 200, "{d}");
        d
    };
    assert_eq!(post(request(5432)).await.0, 202);
    let (_, shown) = server.get_as(&operator, "/api/v1/deployments/db").await;
    assert_eq!(shown["params"]["password"], "***");
    assert_eq!(shown["env"]["MIAAS_SECRET_PASSWORD"], "***");
    let first = revealed().await;
    let password = first["env"]["MIAAS_SECRET_PASSWORD"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(
        !first["rendered_compose"]
            .as_str()
            .unwrap()
            .contains(&password)
    );
    assert_eq!(first["params"]["password"], "***", "params never hold it");

    post(request(6000)).await;
    let revised = revealed().await;
    assert_eq!(revised["revision"], 2);
    assert_eq!(revised["env"]["MIAAS_SECRET_PASSWORD"], password.as_str());

    let mut given = request(6000);
    given["params"]["password"] = json!("my-own-password");
    post(given).await;
    let changed = revealed().await;
    assert_eq!(changed["revision"], 3);
    assert_eq!(changed["env"]["MIAAS_SECRET_PASSWORD"], "my-own-password");

    // without the server's key the stored environment cannot be read: it is sealed
    let keyless = miaas_core::store::connect(&server.database_url)
        .await
        .unwrap();
    let err = keyless.changes_since(0).await.unwrap_err().to_string();
    assert!(err.contains("encrypted"), "{err}");
}

#[tokio::test]
async fn templates_added_through_the_api_are_checked_versioned_and_removable() {
    let server = TestServer::spawn().await;
    let (status, created) = server.post("/api/v1/templates/whoami", &whoami(8080)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["version"].clone(), created["source"].clone()),
        (json!(1), json!("stored"))
    );
    let (status, body) = server.post("/api/v1/templates/whoami", &whoami(8080)).await;
    assert_eq!(status, 409, "{body}");

    let (status, updated) = put(&server, "/api/v1/templates/whoami", &whoami(9090)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    // what GET shows can be sent back as it is
    let (_, read) = server.get("/api/v1/templates/whoami").await;
    let (status, again) = put(&server, "/api/v1/templates/whoami", &read).await;
    assert_eq!(
        (status, again["version"].clone()),
        (200, json!(3)),
        "{again}"
    );
    let mut typo = whoami(1);
    typo["paramters"] = json!([]);
    let (status, body) = put(&server, "/api/v1/templates/whoami", &typo).await;
    assert_eq!(status, 422, "an unknown field is refused: {body}");
    let (_, listed) = server.get("/api/v1/templates?category=web").await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "whoami" && t["version"] == 3),
        "{listed}"
    );

    let deploy = json!({"deployment_id": "who", "template_id": "whoami", "params": {}});
    assert_eq!(server.post("/api/v1/deployments", &deploy).await.0, 202);
    let (_, d) = server.get("/api/v1/deployments/who").await;
    assert_eq!(d["template_version"], 3);
    assert!(d["rendered_compose"].as_str().unwrap().contains("9090:80"));

    let (status, _) = server.delete("/api/v1/templates/whoami").await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/v1/templates/whoami").await.0, 404);
    assert_eq!(server.delete("/api/v1/templates/whoami").await.0, 404);
    let (_, kept) = server.get("/api/v1/deployments/who").await;
    assert_eq!(kept["status"], "pending", "the deployment stays: {kept}");
    let (status, again) = server.post("/api/v1/templates/whoami", &whoami(7070)).await;
    assert_eq!(status, 201);
    assert_eq!(again["version"], 4, "numbering goes on after a removal");

    // built-in templates cannot be changed or removed
    assert_eq!(
        server.post("/api/v1/templates/redis", &whoami(1)).await.0,
        409
    );
    assert_eq!(
        put(&server, "/api/v1/templates/redis", &whoami(1)).await.0,
        409
    );
    assert_eq!(server.delete("/api/v1/templates/redis").await.0, 409);
    assert_eq!(server.get("/api/v1/templates/redis").await.1["version"], 2);

    // each change is an event (stored just after it: waited for)
    let events = server
        .wait_for("/api/v1/events?follow=false&type=template", |page| {
            page.as_array().is_some_and(|events| events.len() >= 5)
        })
        .await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "template.created",
            "template.updated",
            "template.updated",
            "template.removed",
            "template.created"
        ],
        "{events}"
    );
    assert_eq!(events[1]["subject"], "whoami");
}

#[tokio::test]
async fn a_bad_template_is_refused_with_a_useful_message() {
    let server = TestServer::spawn().await;
    let mut broken = whoami(80);
    broken["compose"] = json!("services:\n  web:\n    image: {{ image\n");
    let (status, body) = server.post("/api/v1/templates/broken", &broken).await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("line"), "{body}");

    let mut undeclared = whoami(80);
    undeclared["compose"] = json!("services:\n  web:\n    image: {{ image }}\n");
    let (status, body) = server
        .post("/api/v1/templates/undeclared", &undeclared)
        .await;
    assert_eq!(status, 422);
    assert!(body["detail"].as_str().unwrap().contains("image"), "{body}");

    let mut no_services = whoami(80);
    no_services["compose"] = json!("image: {{ greeting }}\nports: [{{ port }}]\n");
    let (status, body) = server
        .post("/api/v1/templates/no-services", &no_services)
        .await;
    assert_eq!(status, 422);
    assert!(
        body["detail"].as_str().unwrap().contains("services"),
        "{body}"
    );
    let (status, body) = server.post("/api/v1/templates/bad%20id", &whoami(80)).await;
    assert_eq!(status, 422, "{body}");
    let (_, list) = server.get("/api/v1/templates").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t["source"] == "builtin")
    );
}

#[tokio::test]
async fn values_stay_data_in_a_deployment_rendered_by_the_server() {
    let server = TestServer::spawn().await;
    server.post("/api/v1/templates/whoami", &whoami(80)).await;
    for (i, attack) in [
        "x\"\n    privileged: true\n    image: \"evil",
        "x\nservices:\n  evil:\n    image: evil",
        "{{ port }}: *anchor &a",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("who-{i}");
        let request = json!({
            "deployment_id": id, "template_id": "whoami",
            "params": {"greeting": attack}
        });
        assert_eq!(server.post("/api/v1/deployments", &request).await.0, 202);
        let (_, d) = server.get(&format!("/api/v1/deployments/{id}")).await;
        let document: Value =
            serde_saphyr::from_str(d["rendered_compose"].as_str().unwrap()).unwrap();
        let services = document["services"].as_object().unwrap();
        assert_eq!(services.len(), 1, "{attack:?}");
        assert!(services["web"].get("privileged").is_none(), "{attack:?}");
        assert_eq!(services["web"]["environment"]["GREETING"], attack);
    }
}

#[tokio::test]
async fn a_templates_folder_is_served_and_read_again_when_a_file_changes() {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("whoami.yaml");
    let write = |version: u32| {
        let mut spec = whoami(8080);
        spec["version"] = json!(version);
        std::fs::write(&file, serde_json::to_string(&spec).unwrap()).unwrap();
    };
    write(1);
    let dir = folder.path().to_path_buf();
    let server = TestServer::spawn_with(|c| c.templates_dir = Some(dir)).await;
    let (status, t) = server.get("/api/v1/templates/whoami").await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["source"].clone(), t["version"].clone()),
        (json!("directory"), json!(1))
    );
    assert_eq!(
        put(&server, "/api/v1/templates/whoami", &whoami(1)).await.0,
        409
    );
    assert_eq!(server.delete("/api/v1/templates/whoami").await.0, 409);

    write(2);
    server
        .wait_for("/api/v1/templates/whoami", |t| t["version"] == 2)
        .await;
    std::fs::remove_file(&file).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while server.get("/api/v1/templates/whoami").await.0 != 404 {
        assert!(tokio::time::Instant::now() < deadline, "still served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn only_operators_change_templates_and_viewers_read_and_render() {
    let server = TestServer::secure().await;
    let viewer = server.api_token("viewer").await;
    let operator = server.api_token("operator").await;
    let (status, _) = server.get_as(&viewer, "/api/v1/templates").await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post_as(&viewer, "/api/v1/templates/redis/render", &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post_as(&viewer, "/api/v1/templates/whoami", &whoami(80))
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .post_as(&operator, "/api/v1/templates/whoami", &whoami(80))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = send(
        server
            .client
            .delete(server.url("/api/v1/templates/whoami"))
            .bearer_auth(&viewer),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = send(server.client.get(server.url("/api/v1/templates"))).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reads_the_templates_folder_again_and_the_server_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("templates");
    std::fs::create_dir(&folder).unwrap();
    let file = folder.join("whoami.json");
    let write = |version: u32| {
        let mut spec = whoami(8080);
        spec["version"] = json!(version);
        std::fs::write(&file, serde_json::to_string(&spec).unwrap()).unwrap();
    };
    write(1);
    let folder_arg = folder.display().to_string();
    let server = miaas_tests::ServerProcess::start(
        &miaas_tests::binary("miaas-server"),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--templates-dir",
            &folder_arg,
        ],
        dir.path(),
        &[("MIAAS_AUTH", "off")],
    );
    let client = reqwest::Client::new();
    let version = || async {
        let (status, t) = send(client.get(server.url("/api/v1/templates/whoami"))).await;
        assert_eq!(status, 200, "{t}");
        t["version"].clone()
    };
    assert_eq!(version().await, 1);
    write(2);
    let hangup = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hangup.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while version().await != 2 {
        assert!(tokio::time::Instant::now() < deadline, "never read again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = server.terminate();
    assert!(
        status.success(),
        "the server lived through SIGHUP and stopped cleanly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_in_the_templates_folder_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "compose: \"{{ x\"\n").unwrap();
    let out = std::process::Command::new(miaas_tests::binary("miaas-server"))
        .args(["--host", "127.0.0.1", "--port", "0", "--auth", "off"])
        .args(["--database-url", "sqlite::memory:"])
        .arg("--templates-dir")
        .arg(dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.yaml"), "{stderr}");
}
