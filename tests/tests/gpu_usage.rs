//! Live GPU usage, end to end: a real `miaas agent` with the stand-in
//! `nvidia-smi` on `PATH` reports it in its heartbeats; heartbeats of the original
//! shape stay valid and bad values are refused; `miaas nodes get`, `/metrics` with
//! `--metrics-per-node` and the dashboard show it.

use std::path::Path;

use miaas_tests::{
    AgentProcess, ServerProcess, TestServer, binary, heartbeat, miaas, registration, send,
};
use serde_json::{Value, json};

/// A node with two A100s, as the stand-in `nvidia-smi` describes them.
fn two_gpus(name: &str) -> Value {
    let mut node = registration(name);
    node["capabilities"]["gpus"] = json!([
        {"id": 0, "model": "NVIDIA A100-SXM4-80GB", "mem_mb": 81920},
        {"id": 1, "model": "NVIDIA A100-SXM4-80GB", "mem_mb": 81920}
    ]);
    node
}

/// A heartbeat with GPU 0 busy and GPU 1 idle, its power unknown.
fn busy_heartbeat() -> Value {
    let mut beat = heartbeat();
    beat["gpus"] = json!([
        {"id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61,
         "power_w": 250.5},
        {"id": 1, "utilization": 0, "mem_used_mb": 1024, "temperature_c": 45,
         "power_w": null}
    ]);
    beat
}

/// Registers `body` on `server` and sends `beat` as that node; answers its id.
async fn node_with(server: &TestServer, body: &Value, beat: &Value) -> String {
    let (id, token) = server.register_body(body).await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    let (status, answer) = server.post_as(&token, &path, beat).await;
    assert_eq!(status, 200, "{answer}");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reports_what_nvidia_smi_says_each_heartbeat() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/nvidia-smi");
    std::fs::copy(fixture, bin.path().join("nvidia-smi")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let simulated = ["--runtime", "simulated"];
    let mut agent = AgentProcess::start(
        &server.base,
        &server.join_token,
        dir.path(),
        "gpu-agent",
        &simulated,
        &[("PATH", path)],
    );
    let nodes = server
        .wait_for("/api/v1/nodes", |nodes| {
            nodes.as_array().is_some_and(|n| {
                n.iter()
                    .any(|n| n["name"] == "gpu-agent" && n["metrics"]["gpus"][1].is_object())
            })
        })
        .await;
    let node = (nodes.as_array().unwrap().iter())
        .find(|n| n["name"] == "gpu-agent")
        .unwrap()
        .clone();
    assert_eq!(
        node["metrics"]["gpus"],
        json!([
            {"id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61,
             "power_w": 250.5},
            {"id": 1, "utilization": 0.0, "mem_used_mb": 1024, "temperature_c": 45,
             "power_w": null}
        ]),
        "{node}"
    );

    // what nvidia-smi says next is in a later heartbeat
    let staged = bin.path().join("usage.new");
    std::fs::write(
        &staged,
        "0, 99, 80000, 83, [Not Supported]\n1, [N/A], 0, 40, 60.25\n",
    )
    .unwrap();
    std::fs::rename(&staged, bin.path().join("usage")).unwrap();
    let id = node["id"].as_str().unwrap();
    let later = server
        .wait_for(&format!("/api/v1/nodes/{id}"), |n| {
            n["metrics"]["gpus"][0]["utilization"] == 99.0
        })
        .await;
    assert_eq!(
        later["metrics"]["gpus"],
        json!([
            {"id": 0, "utilization": 99.0, "mem_used_mb": 80000, "temperature_c": 83,
             "power_w": null},
            {"id": 1, "utilization": null, "mem_used_mb": 0, "temperature_c": 40,
             "power_w": 60.25}
        ])
    );
    agent.stop();
}

#[tokio::test]
async fn heartbeats_without_gpus_stay_valid_and_bad_values_are_422() {
    let server = TestServer::spawn().await;
    let (id, token) = server.register("worker-01").await;
    let path = format!("/api/v1/nodes/{id}/heartbeat");
    let node_path = format!("/api/v1/nodes/{id}");
    for original in [heartbeat(), json!({})] {
        let (status, answer) = server.post_as(&token, &path, &original).await;
        assert_eq!(status, 200, "{answer}");
        let (_, node) = server.get(&node_path).await;
        assert_eq!(node["metrics"]["gpus"], json!([]), "{node}");
    }

    // nested under metrics, as some clients group them
    let nested = json!({"metrics": {"gpus": [{"id": 0, "utilization": 12.5}]}});
    let (status, answer) = server.post_as(&token, &path, &nested).await;
    assert_eq!(status, 200, "{answer}");
    let (_, node) = server.get(&node_path).await;
    assert_eq!(
        node["metrics"]["gpus"],
        json!([{"id": 0, "utilization": 12.5, "mem_used_mb": null, "temperature_c": null,
                "power_w": null}])
    );

    let refused = [
        (
            json!({"gpus": [{"id": 0, "utilization": 101}]}),
            "gpus[0].utilization",
        ),
        (
            json!({"metrics": {"gpus": [{"id": 0}, {"id": 1, "power_w": -1}]}}),
            "metrics.gpus[1].power_w",
        ),
        (json!({"gpus": [{"id": 3}, {"id": 3}]}), "gpus[1].id"),
        (
            json!({"gpus": [{"id": 0}], "metrics": {"gpus": [{"id": 0}]}}),
            "gpus",
        ),
        (
            json!({"gpus": [{"id": 0, "mem_used_mb": -5}]}),
            "mem_used_mb",
        ),
        (
            json!({"gpus": [{"id": 0, "utilization": "high"}]}),
            "utilization",
        ),
    ];
    for (body, field) in refused {
        let (status, answer) = server.post_as(&token, &path, &body).await;
        assert_eq!(status, 422, "{body}: {answer}");
        let detail = answer["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    let (_, node) = server.get(&node_path).await;
    assert_eq!(
        node["metrics"]["gpus"][0]["utilization"], 12.5,
        "a refused heartbeat changes nothing: {node}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_prints_each_gpu_with_its_usage_and_holder() {
    let server = TestServer::spawn().await;
    let id = node_with(&server, &two_gpus("gpu-box"), &busy_heartbeat()).await;
    let compose = "services:\n  vllm:\n    image: vllm/vllm-openai\n    deploy:\n      \
                   resources:\n        reservations:\n          devices:\n            \
                   - driver: nvidia\n              count: 1\n              capabilities: [gpu]\n";
    let (status, answer) = server
        .post(
            "/api/v1/deployments",
            &json!({"deployment_id": "vllm-1", "template_id": "vllm", "rendered_compose": compose}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let placed = server
        .wait_for("/api/v1/deployments/vllm-1", |d| {
            d["node_id"] == json!(id) && d["gpu_ids"].as_array().is_some_and(|g| g.len() == 1)
        })
        .await;
    let held = placed["gpu_ids"][0].as_u64().unwrap();

    let cwd = tempfile::tempdir().unwrap();
    let run = miaas(
        cwd.path(),
        &["--server", &server.base, "nodes", "get", "gpu-box"],
        &[],
        None,
    )
    .ok();
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("gpu "))
        .collect();
    let held_by = |gpu: u64| if gpu == held { "vllm-1" } else { "-" };
    assert_eq!(
        lines,
        vec![
            format!(
                "gpu 0  NVIDIA A100-SXM4-80GB  util 37%  mem 20480/81920 MiB  61°C  250.5 W  \
                 deployment {}",
                held_by(0)
            ),
            format!(
                "gpu 1  NVIDIA A100-SXM4-80GB  util 0%  mem 1024/81920 MiB  45°C  - W  \
                 deployment {}",
                held_by(1)
            ),
        ],
        "{run:?}"
    );
    assert!(
        run.stdout.contains("gpu-box"),
        "the node's table comes first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_metrics_have_a_gauge_per_gpu_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &binary("miaas-server"),
        &["--host", "127.0.0.1", "--port", "0", "--metrics-per-node"],
        dir.path(),
        &[],
    );
    let client = reqwest::Client::new();
    let (status, node) = send(
        client
            .post(server.url("/api/v1/nodes/register"))
            .json(&two_gpus("n1")),
    )
    .await;
    assert_eq!(status, 201, "{node}");
    let path = format!(
        "/api/v1/nodes/{}/heartbeat",
        node["node_id"].as_str().unwrap()
    );
    let mut beat = busy_heartbeat();
    beat["gpus"][1]["utilization"] = Value::Null;
    let token = node["node_token"].as_str().unwrap();
    let (status, answer) = send(
        client
            .post(server.url(&path))
            .bearer_auth(token)
            .json(&beat),
    )
    .await;
    assert_eq!(status, 200, "{answer}");

    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| {
        text.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .parse::<f64>()
                .ok()
        })
    };
    assert_eq!(
        value(r#"miaas_node_gpu_utilization_ratio{node="n1",gpu="0"}"#),
        Some(0.37),
        "{text}"
    );
    assert_eq!(
        value(r#"miaas_node_gpu_memory_used_bytes{node="n1",gpu="0"}"#),
        Some(20480.0 * 1_048_576.0)
    );
    assert_eq!(
        value(r#"miaas_node_gpu_memory_used_bytes{node="n1",gpu="1"}"#),
        Some(1024.0 * 1_048_576.0)
    );
    assert!(
        !text.contains(r#"miaas_node_gpu_utilization_ratio{node="n1",gpu="1"}"#),
        "an unknown value has no sample: {text}"
    );
    assert!(text.contains("# TYPE miaas_node_gpu_utilization_ratio gauge"));
}

#[tokio::test]
async fn the_dashboard_shows_gpu_bars_and_the_average_in_the_list() {
    let server = TestServer::spawn().await;
    let id = node_with(&server, &two_gpus("gpu-box"), &busy_heartbeat()).await;
    node_with(&server, &registration("cpu-box"), &heartbeat()).await;
    let page = |path: String| {
        let request = server.client.get(server.url(&path));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };

    let html = page(format!("/ui/nodes/{id}")).await;
    let cell = |id: &str| {
        let start = html
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("{id}: {html}"));
        let end = start + html[start..].find("</td>").unwrap();
        html[start..end].to_string()
    };
    let utilization = cell("gpu-0-utilization");
    assert!(
        utilization.contains(r#"<span style="width: 37%">"#) && utilization.contains("37 %"),
        "{utilization}"
    );
    let memory = cell("gpu-0-memory");
    assert!(
        memory.contains(r#"<span style="width: 25%">"#) && memory.contains("20480/81920 MiB"),
        "{memory}"
    );
    assert!(cell("gpu-1-memory").contains("1024/81920 MiB"));
    assert!(html.contains("250.5 W") && html.contains("61 °C"), "{html}");

    let list = page("/ui/nodes".into()).await;
    let uses: Vec<&str> = list
        .split("<td class=\"gpu-use\">")
        .skip(1)
        .map(|rest| &rest[..rest.find("</td>").unwrap()])
        .collect();
    // ordered by name: cpu-box, then gpu-box at (37 + 0) / 2
    assert_eq!(uses.len(), 2, "{list}");
    assert_eq!(uses[0], "–");
    assert!(
        uses[1].contains(r#"width: 19%"#) && uses[1].ends_with("18.5 %"),
        "{}",
        uses[1]
    );
}
