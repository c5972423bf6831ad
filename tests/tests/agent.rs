//! `miaas agent` end to end: the real server and real agents as processes. With
//! the simulated runtime: deploy, restart adoption, removal, a killed agent's work
//! moving. With the Docker runtime against a stand-in `docker` (and `nvidia-smi`)
//! on `PATH`: exactly what Docker would receive.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::process::{Command, Stdio};

use miaas_tests::{AgentProcess, ServerProcess, binary, send};
use serde_json::{Value, json};

/// A control plane with authentication on, and an admin's token.
struct ControlPlane {
    server: ServerProcess,
    dir: tempfile::TempDir,
    join_token: String,
    admin: String,
    client: reqwest::Client,
}

impl ControlPlane {
    async fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Self::server(dir.path(), "0", extra);
        let admin = server.admin_token(dir.path()).await;
        Self {
            join_token: ServerProcess::saved_secret(dir.path(), "MIAAS_JOIN_TOKEN"),
            admin,
            client: reqwest::Client::new(),
            server,
            dir,
        }
    }

    fn server(dir: &Path, port: &str, extra: &[&str]) -> ServerProcess {
        let mut args = vec!["--host", "127.0.0.1", "--port", port];
        args.extend_from_slice(extra);
        ServerProcess::start(&binary("miaas-server"), &args, dir, &[("MIAAS_AUTH", "on")])
    }

    /// Stops the server (SIGTERM) and starts it again on the same port and
    /// database; the admin's token stays valid.
    fn restart(self) -> Self {
        let port = self.server.base.rsplit(':').next().unwrap().to_string();
        let (status, _) = self.server.terminate();
        assert!(status.success());
        Self {
            server: Self::server(self.dir.path(), &port, &[]),
            ..self
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        send(
            self.client
                .get(self.server.url(path))
                .bearer_auth(&self.admin),
        )
        .await
    }

    async fn deploy(&self, body: &Value) {
        let (status, answer) = send(
            self.client
                .post(self.server.url("/api/v1/deployments"))
                .bearer_auth(&self.admin)
                .json(body),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
    }

    async fn delete(&self, id: &str) {
        let (status, answer) = send(
            self.client
                .delete(self.server.url(&format!("/api/v1/deployments/{id}")))
                .bearer_auth(&self.admin),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Polls `path` until `done` holds; fails after 30 s.
    async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.get(path).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "{path} never got there: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A `miaas agent` named `name` joining this control plane.
    fn agent(&self, name: &str, extra: &[&str], env: &[(&str, String)]) -> AgentProcess {
        let server = &self.server.base;
        AgentProcess::start(server, &self.join_token, self.dir.path(), name, extra, env)
    }

    /// A simulated agent.
    fn simulated(&self, name: &str) -> AgentProcess {
        AgentProcess::simulated(&self.server.base, &self.join_token, self.dir.path(), name)
    }

    async fn node_named(&self, name: &str) -> Value {
        self.wait_for("/api/v1/nodes", |nodes| {
            nodes
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n["name"] == name))
        })
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap()
        .clone()
    }
}

/// The identity the agent saved in `state_dir`, once it did: the node is visible
/// as soon as it registered, and the agent saves its identity (and drops the token
/// it was waiting to have confirmed) right after. Fails after 20 s.
async fn saved_identity(state_dir: &Path) -> Value {
    let identity = state_dir.join("identity.json");
    let pending = state_dir.join("token.pending");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let saved = std::fs::read_to_string(&identity).ok();
        if let Some(parsed) = saved.and_then(|text| serde_json::from_str(&text).ok())
            && !pending.exists()
        {
            return parsed;
        }
        assert!(Instant::now() < deadline, "the identity is saved");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn running_on(node: &Value) -> impl Fn(&Value) -> bool + '_ {
    move |d: &Value| d["status"] == "running" && d["node_id"] == node["id"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_agent_runs_adopts_and_removes_its_deployments() {
    let cp = ControlPlane::start(&[]).await;
    let mut agent = cp.simulated("sim-1");
    let node = cp.node_named("sim-1").await;
    assert_eq!(node["capabilities"]["os"], std::env::consts::OS);
    assert!(node["capabilities"]["cpu_count"].as_u64().unwrap() >= 1);
    assert!(node["capabilities"]["mem_mb"].as_u64().unwrap() > 0);
    saved_identity(&agent.state_dir).await;
    let identity = agent.state_dir.join("identity.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&identity).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    cp.deploy(&json!({
        "deployment_id": "web", "template_id": "t",
        "rendered_compose": "services:\n  web:\n    image: nginx\n",
        "env": {"PASSWORD": "agent-secret"}
    }))
    .await;
    let running = cp
        .wait_for("/api/v1/deployments/web", running_on(&node))
        .await;
    assert!(
        running["message"].as_str().unwrap().contains("simulated"),
        "{running}"
    );
    let nodes = cp
        .wait_for("/api/v1/nodes", |n| n[0]["metrics"].is_object())
        .await;
    assert!(
        nodes[0]["metrics"]["mem_usage"].as_f64().unwrap() > 0.0,
        "{nodes}"
    );

    // a restart adopts what runs: no new start, no new report
    agent.stop();
    let stopped_at = cp.get("/api/v1/nodes").await.1[0]["last_seen"]
        .as_f64()
        .unwrap();
    let mut agent = cp.simulated("sim-1");
    let node_again = cp
        .wait_for("/api/v1/nodes", |n| {
            n[0]["last_seen"].as_f64().unwrap_or(0.0) > stopped_at + 1.0
        })
        .await;
    assert_eq!(
        node_again[0]["id"], node["id"],
        "the same node, no join token needed"
    );
    let (_, after) = cp.get("/api/v1/deployments/web").await;
    assert_eq!(after["updated_at"], running["updated_at"], "not restarted");
    assert!(agent.log().contains("adopted"), "{}", agent.log());
    assert!(
        !agent.log().contains("agent-secret"),
        "secrets are never logged"
    );

    cp.delete("web").await;
    cp.wait_for("/api/v1/deployments/web", |d| d["status"] == "deleted")
        .await;
    let dir = agent.state_dir.join("deployments/web");
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(Instant::now() < deadline, "its folder stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agents_deployment_is_lost_then_runs_elsewhere() {
    let cp = ControlPlane::start(&[
        "--heartbeat-timeout",
        "2s",
        "--reschedule-grace",
        "1s",
        "--sweep-interval",
        "200ms",
    ])
    .await;
    let mut first = cp.simulated("node-a");
    let node_a = cp.node_named("node-a").await;
    cp.deploy(&json!({
        "deployment_id": "api", "template_id": "t",
        "rendered_compose": "services:\n  api:\n    image: busybox\n"
    }))
    .await;
    cp.wait_for("/api/v1/deployments/api", running_on(&node_a))
        .await;
    let _second = cp.simulated("node-b");
    let node_b = cp.node_named("node-b").await;

    first.kill();
    cp.wait_for("/api/v1/deployments/api", |d| d["status"] == "lost")
        .await;
    cp.wait_for("/api/v1/deployments/api", running_on(&node_b))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_identity_or_join_token_the_agent_stops_saying_why() {
    let cp = ControlPlane::start(&[]).await;
    let state = cp.dir.path().join("empty-state");
    let out = Command::new(binary("miaas"))
        .args(["--server", &cp.server.base, "agent", "--name", "lonely"])
        .args([
            "--state-dir",
            state.to_str().unwrap(),
            "--runtime",
            "simulated",
        ])
        .env_remove("MIAAS_JOIN_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--join-token"), "{stderr}");
}

/// A variable of the agent's own environment that must never reach Compose.
const AGENT_ONLY: (&str, &str) = ("MIAAS_AGENT_ONLY", "agent-private-value");

/// A folder with the stand-in `docker` and `nvidia-smi`, first on `PATH`, and
/// the folder where the stand-in `docker` records what it is handed: the
/// environment an agent needs to use them (with [`AGENT_ONLY`] in it).
fn stand_ins() -> (tempfile::TempDir, PathBuf, [(&'static str, String); 2]) {
    let bin = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for tool in ["docker", "nvidia-smi"] {
        std::fs::copy(fixtures.join(tool), bin.path().join(tool)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let calls_dir = bin.path().join("calls");
    std::fs::create_dir(&calls_dir).unwrap();
    let env = [("PATH", path), (AGENT_ONLY.0, AGENT_ONLY.1.to_string())];
    (bin, calls_dir, env)
}

/// A GPU added to the machine: the agent measures again and the node re-registers
/// with three GPUs instead of two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_added_is_seen_and_the_node_registers_again() {
    let cp = ControlPlane::start(&[]).await;
    let (bin, _calls_dir, env) = stand_ins();
    let mut agent = cp.agent(
        "gpu-grow",
        &["--runtime", "docker", "--measure-interval", "1s"],
        &env,
    );
    let node = cp.node_named("gpu-grow").await;
    assert_eq!(
        node["capabilities"]["gpus"].as_array().map(Vec::len),
        Some(2)
    );

    let three = "#!/bin/sh\n\
                 echo '0, GPU-a, NVIDIA A100-SXM4-80GB, 81920'\n\
                 echo '1, GPU-b, NVIDIA A100-SXM4-80GB, 81920'\n\
                 echo '2, GPU-c, NVIDIA H100 80GB HBM3, 81559'\n";
    let staged = bin.path().join("nvidia-smi.new");
    std::fs::write(&staged, three).unwrap();
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::rename(&staged, bin.path().join("nvidia-smi")).unwrap();

    let id = node["id"].as_str().unwrap().to_string();
    let grown = cp
        .wait_for(&format!("/api/v1/nodes/{id}"), |n| {
            n["capabilities"]["gpus"].as_array().map(Vec::len) == Some(3)
        })
        .await;
    assert_eq!(
        grown["capabilities"]["gpus"][2]["model"],
        "NVIDIA H100 80GB HBM3"
    );
    assert_eq!(grown["id"], node["id"], "the same node");
    agent.stop();
}

/// The node registered, but its agent never got the answer (a timeout): the agent
/// started again registers with the join token, is told the name is taken, and
/// proves with the token it chose that it is that node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_registration_answer_was_lost_proves_it_is_that_node() {
    let cp = ControlPlane::start(&[]).await;
    let state_dir = cp.dir.path().join("agent-lost-answer");
    std::fs::create_dir_all(&state_dir).unwrap();
    let chosen = format!("mnode_{}", "3c".repeat(32));
    std::fs::write(state_dir.join("token.pending"), &chosen).unwrap();
    std::fs::set_permissions(
        state_dir.join("token.pending"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // what the lost registration did on the server
    let (status, answer) = send(
        cp.client
            .post(cp.server.url("/api/v1/nodes/register"))
            .bearer_auth(&cp.join_token)
            .json(&json!({
                "name": "lost-answer", "ip": "127.0.0.1",
                "capabilities": {"os": "not-measured-yet", "cpu_count": 1, "mem_mb": 512},
                "node_token": chosen
            })),
    )
    .await;
    assert_eq!(status, 201, "{answer}");

    let mut agent = cp.simulated("lost-answer");
    let node = cp
        .wait_for(
            &format!("/api/v1/nodes/{}", answer["node_id"].as_str().unwrap()),
            |n| n["capabilities"]["os"] == json!(std::env::consts::OS),
        )
        .await;
    assert_eq!(node["status"], "online", "{node}");
    let identity = saved_identity(&state_dir).await;
    assert_eq!(identity["node_id"], answer["node_id"]);
    assert_eq!(identity["node_token"], json!(chosen));
    agent.stop();
}

/// Neither `docker` nor `nvidia-smi` on `PATH`: the node says Docker is not
/// available and has no GPUs (not an error), and nothing is placed on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_without_docker_or_gpus_says_so_and_takes_no_deployment() {
    let cp = ControlPlane::start(&[]).await;
    let empty = tempfile::tempdir().unwrap();
    let env = [("PATH", empty.path().display().to_string())];
    let mut agent = cp.agent("bare-1", &["--runtime", "docker"], &env);
    let node = cp.node_named("bare-1").await;
    assert_eq!(node["capabilities"]["docker"]["available"], false, "{node}");
    assert_eq!(node["capabilities"]["gpus"], json!([]), "{node}");
    assert!(
        node["capabilities"]["mem_mb"].as_u64().unwrap_or(0) > 0,
        "{node}"
    );
    cp.deploy(&json!({
        "deployment_id": "nowhere", "template_id": "t",
        "rendered_compose": "services:\n  a:\n    image: x\n"
    }))
    .await;
    let pending = cp
        .wait_for("/api/v1/deployments/nowhere", |d| d["status"] == "pending")
        .await;
    let message = pending["message"].as_str().unwrap_or_default();
    assert!(message.contains("Docker"), "{pending}");
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_runtime_hands_compose_exactly_what_it_should() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    let agent = cp.agent("gpu-1", &["--runtime", "docker"], &env);
    let node = cp.node_named("gpu-1").await;
    assert_eq!(
        node["capabilities"]["docker"],
        json!({"version": "27.0.1", "available": true, "compose_version": "2.29.1"})
    );
    let gpus = node["capabilities"]["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 2, "{node}");
    assert_eq!(gpus[1]["model"], "NVIDIA A100-SXM4-80GB");
    assert_eq!(gpus[1]["mem_mb"], 81920);
    assert_eq!(gpus[1]["uuid"], "GPU-66666666-7777-8888-9999-000000000000");

    // interpolation is the server's: what Compose receives has nothing left to
    // interpolate, and the agent's own environment is not Compose's
    let compose = "services:\n  app:\n    image: trainer:${TAG}\n    command: echo $$HOME ${MODE}\n    \
                   environment:\n      J: '${MIAAS_JOIN_TOKEN}'\n      A: '${MIAAS_AGENT_ONLY:-unset}'\n    \
                   deploy:\n      resources:\n        reservations:\n          devices:\n            \
                   - driver: nvidia\n              count: 1\n              capabilities: [gpu]\n";
    cp.deploy(&json!({
        "deployment_id": "train", "template_id": "t", "rendered_compose": compose,
        "env": {"API_KEY": "k-$123", "MODE": "fast", "TAG": "1.2", "COMPOSE_PROFILES": "gpu"}
    }))
    .await;
    let running = cp
        .wait_for("/api/v1/deployments/train", running_on(&node))
        .await;
    let gpu = running["gpu_ids"][0].as_u64().unwrap().to_string();

    let calls = std::fs::read_to_string(calls_dir.join("calls")).unwrap();
    let dir = agent.state_dir.join("deployments/train");
    let up = format!(
        "compose -p miaas-train -f {}/compose.yaml up -d --remove-orphans",
        dir.display()
    );
    assert!(calls.lines().any(|l| l == up), "{calls}");
    let data_root = "info --format {{.DockerRootDir}}";
    assert!(
        calls.lines().any(|l| l == data_root),
        "the disk measured is Docker's: {calls}"
    );
    let handed: Value = serde_json::from_str(
        &std::fs::read_to_string(calls_dir.join("miaas-train.compose")).unwrap(),
    )
    .unwrap();
    let device = &handed["services"]["app"]["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(device["device_ids"], json!([gpu]), "{handed}");
    assert!(device.get("count").is_none(), "{handed}");
    assert_eq!(
        handed["services"]["app"]["environment"]["NVIDIA_VISIBLE_DEVICES"],
        json!(gpu),
        "{handed}"
    );
    let app = &handed["services"]["app"];
    assert_eq!(app["image"], "trainer:1.2", "{handed}");
    assert_eq!(app["command"], "echo $$HOME fast", "{handed}");
    assert!(app.get("env_file").is_none(), "{handed}");
    let environment = &app["environment"];
    assert_eq!(environment["API_KEY"], "k-$$123", "{handed}");
    assert_eq!(environment["MODE"], "fast");
    assert_eq!(environment["J"], "", "the join token is no deployment's");
    assert_eq!(environment["A"], "unset", "nor the agent's environment");
    let mode = std::fs::read_to_string(calls_dir.join("miaas-train.compose.mode")).unwrap();
    assert_eq!(mode.trim(), "600", "the document holds the secrets");
    assert!(
        !calls_dir.join("miaas-train.dotenv").exists(),
        "no .env beside it"
    );
    let environ = std::fs::read_to_string(calls_dir.join("miaas-train.environ")).unwrap();
    let names: Vec<&str> = environ
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .collect();
    for name in &names {
        let allowed = ["PATH", "HOME", "COMPOSE_PROFILES", "PWD", "SHLVL", "_"].contains(name)
            || name.starts_with("DOCKER_")
            || name.starts_with("XDG_");
        assert!(allowed, "Compose saw {name}: {environ}");
    }
    assert!(
        environ.lines().any(|l| l == "COMPOSE_PROFILES=gpu"),
        "{environ}"
    );
    assert!(!environ.contains(&cp.join_token) && !environ.contains(AGENT_ONLY.1));

    // a container that stops later is reported
    std::fs::write(calls_dir.join("miaas-train.up"), "exited").unwrap();
    let failed = cp
        .wait_for("/api/v1/deployments/train", |d| d["status"] == "failed")
        .await;
    assert!(
        failed["message"].as_str().unwrap().contains("exited"),
        "{failed}"
    );

    cp.delete("train").await;
    cp.wait_for("/api/v1/deployments/train", |d| d["status"] == "deleted")
        .await;
    let calls = std::fs::read_to_string(calls_dir.join("calls")).unwrap();
    let down = format!(
        "compose -p miaas-train -f {}/compose.yaml down --remove-orphans",
        dir.display()
    );
    assert!(calls.lines().any(|l| l == down), "{calls}");
    assert!(!agent.log().contains("k-123"), "secrets are never logged");
}

/// `docker` with `DOCKER_HOST`, for the real engine's test.
fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A control plane and an agent `name` on the real Docker engine `.ci/start-docker`
/// starts (with an image built offline): the agent's node, and the engine's
/// address. `None`, saying so, without an engine.
async fn on_a_docker_engine(name: &str) -> Option<(ControlPlane, AgentProcess, Value, String)> {
    let Ok(host) = std::env::var("MIAAS_TEST_DOCKER_HOST") else {
        eprintln!("MIAAS_TEST_DOCKER_HOST is not set: no Docker engine to run on");
        return None;
    };
    let cp = ControlPlane::start(&[]).await;
    let agent = cp.agent(
        name,
        &["--runtime", "docker"],
        &[("DOCKER_HOST", host.clone())],
    );
    let node = cp.node_named(name).await;
    Some((cp, agent, node, host))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_docker,
    ignore = "needs a Docker engine: set MIAAS_TEST_DOCKER_HOST (bash .ci/start-docker DIR starts one)"
)]
async fn with_a_real_docker_engine_a_deployment_runs_and_is_removed() {
    let Some((cp, agent, node, host)) = on_a_docker_engine("docker-1").await else {
        return;
    };
    assert_eq!(node["capabilities"]["docker"]["available"], true, "{node}");

    let id = format!("real-{}", std::process::id());
    let compose = "services:\n  app:\n    image: miaas-test/busybox:1\n    \
                   command: [\"sh\", \"-c\", \"echo first line; echo second line; sleep 300\"]\n";
    cp.deploy(&json!({
        "deployment_id": id, "template_id": "t", "rendered_compose": compose,
        "env": {"GREETING": "hello-from-miaas"}
    }))
    .await;
    let path = format!("/api/v1/deployments/{id}");
    let running = cp.wait_for(&path, |d| d["status"] != "scheduled").await;
    assert_eq!(running["status"], "running", "{running}\n{}", agent.log());

    let filter = format!("label=com.docker.compose.project=miaas-{id}");
    let names = docker(
        &host,
        &["ps", "--filter", &filter, "--format", "{{.Names}}"],
    );
    let container = names.lines().next().expect("a container").to_string();
    let env = docker(
        &host,
        &["inspect", "--format", "{{json .Config.Env}}", &container],
    );
    assert!(env.contains("GREETING=hello-from-miaas"), "{env}");

    // its logs, read by the agent with `compose logs` and sent up through the server
    let logs = cp
        .client
        .get(cp.server.url(&format!(
            "/api/v1/deployments/{id}/logs?tail=10&service=app"
        )))
        .bearer_auth(&cp.admin)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(logs.status(), 200);
    let mut lines = miaas_tests::Lines::new(logs);
    let mut texts = Vec::new();
    while let Some(line) = lines.next_json().await {
        if let Some(end) = line.get("end") {
            assert_eq!(line["error"], false, "{end}\n{}", agent.log());
            break;
        }
        assert_eq!(line["service"], "app", "{line}");
        assert!(
            line["ts"].as_str().is_some_and(|t| t.contains('T')),
            "{line}"
        );
        texts.push(line["line"].as_str().unwrap().to_string());
    }
    assert_eq!(texts, ["first line", "second line"], "{}", agent.log());

    cp.delete(&id).await;
    cp.wait_for(&path, |d| d["status"] == "deleted").await;
    let left = docker(
        &host,
        &["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"],
    );
    assert_eq!(left.trim(), "", "removed with `down`");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_carry_on_through_a_server_restart_and_report_failures() {
    let cp = ControlPlane::start(&[]).await;
    let _agent = cp.agent(
        "steady",
        &[
            "--runtime",
            "simulated",
            "--simulated-start",
            "50ms",
            "--simulated-fail",
            "bad-*",
        ],
        &[],
    );
    let node = cp.node_named("steady").await;
    cp.deploy(&json!({
        "deployment_id": "good", "template_id": "t",
        "rendered_compose": "services:\n  a:\n    image: x\n"
    }))
    .await;
    cp.wait_for("/api/v1/deployments/good", running_on(&node))
        .await;

    let cp = cp.restart();
    let restarted = cp.get("/health").await.0;
    assert_eq!(restarted, 200);
    cp.deploy(&json!({
        "deployment_id": "bad-1", "template_id": "t",
        "rendered_compose": "services:\n  a:\n    image: x\n"
    }))
    .await;
    let failed = cp
        .wait_for("/api/v1/deployments/bad-1", |d| d["status"] == "failed")
        .await;
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("simulated") && message.contains("bad-1"),
        "{message}"
    );
    let (_, good) = cp.get("/api/v1/deployments/good").await;
    assert_eq!(
        good["status"], "running",
        "untouched by the restart: {good}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_runs_where_its_gpus_fit_with_its_secrets_resolved() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    let _small = cp.simulated("cpu-only");
    let _agent = cp.agent("gpu-2", &["--runtime", "docker"], &env);
    let node = cp.node_named("gpu-2").await;
    cp.node_named("cpu-only").await;

    cp.deploy(&json!({
        "deployment_id": "qwen", "template_id": "vllm",
        "params": {"model": "Qwen/Qwen2.5-7B-Instruct", "gpus": 2, "hf_token": "hf-secret-123"}
    }))
    .await;
    let running = cp
        .wait_for("/api/v1/deployments/qwen", running_on(&node))
        .await;
    assert_eq!(running["gpu_ids"].as_array().unwrap().len(), 2, "{running}");
    assert_eq!(running["params"]["hf_token"], "***");

    let handed: Value = serde_json::from_str(
        &std::fs::read_to_string(calls_dir.join("miaas-qwen.compose")).unwrap(),
    )
    .unwrap();
    let vllm = &handed["services"]["vllm"];
    let device = &vllm["deploy"]["resources"]["reservations"]["devices"][0];
    assert_eq!(device["device_ids"], json!(["0", "1"]), "{handed}");
    let command: Vec<&str> = vllm["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        command
            .windows(2)
            .any(|w| w == ["--tensor-parallel-size", "2"]),
        "{command:?}"
    );
    // the stored document names the secret; the node's has it resolved
    assert_eq!(
        vllm["environment"]["HUGGING_FACE_HUB_TOKEN"], "hf-secret-123",
        "{handed}"
    );
    let (_, stored) = cp.get("/api/v1/deployments/qwen").await;
    let shown = stored["rendered_compose"].as_str().unwrap();
    assert!(
        shown.contains("${MIAAS_SECRET_HF_TOKEN}") && !shown.contains("hf-secret-123"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_docker,
    ignore = "needs a Docker engine: set MIAAS_TEST_DOCKER_HOST (bash .ci/start-docker DIR starts one)"
)]
async fn with_a_real_docker_engine_compose_fills_a_templates_secret() {
    let Some((cp, _agent, node, host)) = on_a_docker_engine("docker-t").await else {
        return;
    };
    let template = json!({
        "parameters": [
            {"name": "token", "type": "secret", "generate": "hex", "length": 16},
            {"name": "greeting", "type": "string", "default": "costs $5"}
        ],
        "compose": "services:\n  app:\n    image: miaas-test/busybox:1\n    command: [\"sh\", \"-c\", {{ \"echo \" ~ greeting ~ \" token=\" ~ token ~ \"; sleep 300\" }}]\n"
    });
    let (status, body) = send(
        cp.client
            .post(cp.server.url("/api/v1/templates/echo"))
            .bearer_auth(&cp.admin)
            .json(&template),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = format!("tpl-{}", std::process::id());
    cp.deploy(&json!({"deployment_id": id, "template_id": "echo", "params": {}}))
        .await;
    let path = format!("/api/v1/deployments/{id}");
    cp.wait_for(&path, running_on(&node)).await;
    let (_, revealed) = cp.get(&format!("{path}?reveal=true")).await;
    let token = revealed["env"]["MIAAS_SECRET_TOKEN"].as_str().unwrap();
    assert_eq!(token.len(), 16, "{revealed}");

    let filter = format!("label=com.docker.compose.project=miaas-{id}");
    let names = docker(
        &host,
        &["ps", "--filter", &filter, "--format", "{{.Names}}"],
    );
    let container = names.lines().next().expect("a container").to_string();
    let command = docker(
        &host,
        &["inspect", "--format", "{{json .Config.Cmd}}", &container],
    );
    assert!(
        command.contains(&format!("echo costs $5 token={token}; sleep 300")),
        "Compose filled the secret and kept the `$` of the value: {command}"
    );
    cp.delete(&id).await;
    cp.wait_for(&path, |d| d["status"] == "deleted").await;
}

/// Two ids that would have shared a Compose project (an id cleaned and suffixed
/// with 8 hex of its hash, and that very name as an id) run as two projects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_that_once_shared_a_project_run_as_two() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    let _agent = cp.agent("one-node", &["--runtime", "docker"], &env);
    let node = cp.node_named("one-node").await;
    let compose = "services:\n  app:\n    image: shop\n";
    for id in ["shop.prod", "shop-prod-039cbbb1"] {
        cp.deploy(&json!({"deployment_id": id, "template_id": "t", "rendered_compose": compose}))
            .await;
        cp.wait_for(&format!("/api/v1/deployments/{id}"), running_on(&node))
            .await;
    }
    let calls = std::fs::read_to_string(calls_dir.join("calls")).unwrap();
    let projects: std::collections::BTreeSet<&str> = calls
        .lines()
        .filter(|l| l.starts_with("compose -p ") && l.ends_with(" up -d --remove-orphans"))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    assert_eq!(projects.len(), 2, "{calls}");
    assert!(
        projects.contains("miaas-shop-prod-039cbbb1"),
        "{projects:?}"
    );
    let hashed = projects.iter().find(|p| p.starts_with("miaas_shop-prod_"));
    assert!(
        hashed.is_some_and(|p| p.len() == "miaas_shop-prod_".len() + 64),
        "{projects:?}"
    );
}

/// A deployment an older agent started under the old naming keeps its project,
/// and no other id can then take that project on the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_recorded_by_an_older_agent_is_kept_and_not_shared() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    let mut agent = cp.agent("legacy", &["--runtime", "docker"], &env);
    let node = cp.node_named("legacy").await;
    let compose = "services:\n  app:\n    image: shop\n";
    cp.deploy(
        &json!({"deployment_id": "shop.prod", "template_id": "t", "rendered_compose": compose}),
    )
    .await;
    cp.wait_for("/api/v1/deployments/shop.prod", running_on(&node))
        .await;
    agent.stop();
    // what an agent before injective project names recorded for this id
    let old = "miaas-shop-prod-039cbbb1";
    let folder = agent.state_dir.join("deployments/shop.prod");
    std::fs::write(folder.join("project"), old).unwrap();
    std::fs::write(folder.join("revision"), "0").unwrap();
    let _agent = cp.agent("legacy", &["--runtime", "docker"], &env);
    let started_old = format!("compose -p {old} -f {}/compose.yaml up", folder.display());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(calls_dir.join("calls"))
        .unwrap()
        .contains(&started_old)
    {
        assert!(
            Instant::now() < deadline,
            "restarted under its recorded project"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cp.deploy(&json!({"deployment_id": "shop-prod-039cbbb1", "template_id": "t", "rendered_compose": compose}))
        .await;
    let failed = cp
        .wait_for("/api/v1/deployments/shop-prod-039cbbb1", |d| {
            d["status"] != "scheduled"
        })
        .await;
    let message = failed["message"].as_str().unwrap();
    let calls = std::fs::read_to_string(calls_dir.join("calls")).unwrap();
    assert!(
        message.contains(old) && message.contains("shop.prod"),
        "{message}\n{calls}\n{}",
        _agent.log()
    );
}

/// Once registered, the agent keeps no join token: a node the control plane
/// forgot does not register itself again, and says how to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_agent_keeps_no_join_token() {
    let cp = ControlPlane::start(&[]).await;
    let mut agent = cp.simulated("forgotten");
    let node = cp.node_named("forgotten").await;
    saved_identity(&agent.state_dir).await;
    let (status, body) = send(
        cp.client
            .delete(
                cp.server
                    .url(&format!("/api/v1/nodes/{}", node["id"].as_str().unwrap())),
            )
            .bearer_auth(&cp.admin),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let exited = tokio::task::spawn_blocking(move || {
        let status = agent.exit_within(Duration::from_secs(30));
        (status, agent.log())
    })
    .await
    .unwrap();
    let (status, log) = exited;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {log}");
    assert!(log.contains("keeps no join token"), "{log}");
    let (_, nodes) = cp.get("/api/v1/nodes").await;
    assert_eq!(nodes, json!([]), "it did not register again");
}

/// A join token the server refuses stops the agent at once, saying so (it used to
/// register again and again, as fast as the server answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_join_token_stops_the_agent() {
    let cp = ControlPlane::start(&[]).await;
    let simulated = ["--runtime", "simulated"];
    let mut agent = AgentProcess::start(
        &cp.server.base,
        "mjoin_not-this-servers-token",
        cp.dir.path(),
        "stranger",
        &simulated,
        &[],
    );
    let (status, log) = tokio::task::spawn_blocking(move || {
        let status = agent.exit_within(Duration::from_secs(30));
        (status, agent.log())
    })
    .await
    .unwrap();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {log}");
    assert!(log.contains("join token"), "{log}");
    assert_eq!(log.matches("registering").count(), 1, "{log}");
}

/// A start that takes a minute (an image of several GB being pulled) does not
/// stop the heartbeats: with the server's default timeouts the node stays online
/// and the deployment on its node, `scheduled` with the start's progress as its
/// message, until it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_start_keeps_the_node_online_until_it_runs() {
    let cp = ControlPlane::start(&[]).await;
    let simulated = ["--runtime", "simulated", "--simulated-start", "60s"];
    let _agent = cp.agent("patient", &simulated, &[]);
    let node = cp.node_named("patient").await;
    cp.deploy(&json!({"deployment_id": "slow", "template_id": "t",
                      "rendered_compose": "services:\n  a:\n    image: x\n"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut progress_seen = false;
    loop {
        let (_, deployment) = cp.get("/api/v1/deployments/slow").await;
        assert_eq!(deployment["node_id"], node["id"], "{deployment}");
        if deployment["status"] == "running" {
            break;
        }
        assert_eq!(deployment["status"], "scheduled", "{deployment}");
        let message = deployment["message"].as_str().unwrap_or_default();
        progress_seen |= message.contains("pulling");
        let (_, seen) = cp
            .get(&format!("/api/v1/nodes/{}", node["id"].as_str().unwrap()))
            .await;
        assert_eq!(seen["status"], "online", "{seen}");
        assert!(Instant::now() < deadline, "never ran: {deployment}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(progress_seen, "the start's progress was shown");
}

/// Starts run side by side: two slow starts are both in progress at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_start_in_parallel() {
    let cp = ControlPlane::start(&[]).await;
    let simulated = ["--runtime", "simulated", "--simulated-start", "20s"];
    let _agent = cp.agent("busy", &simulated, &[]);
    cp.node_named("busy").await;
    for id in ["one", "two"] {
        cp.deploy(&json!({"deployment_id": id, "template_id": "t",
                          "rendered_compose": "services:\n  a:\n    image: x\n"}))
            .await;
    }
    let starting = |d: &Value| {
        d["status"] == "scheduled" && d["message"].as_str().is_some_and(|m| m.contains("pulling"))
    };
    cp.wait_for("/api/v1/deployments/one", starting).await;
    let (_, two) = cp.get("/api/v1/deployments/two").await;
    let (_, one) = cp.get("/api/v1/deployments/one").await;
    assert!(starting(&one), "{one}");
    let two = if starting(&two) {
        two
    } else {
        cp.wait_for("/api/v1/deployments/two", starting).await
    };
    let (_, one) = cp.get("/api/v1/deployments/one").await;
    assert!(
        starting(&one) && starting(&two),
        "both in progress at once: {one} {two}"
    );
}

/// An engine that never answers: the start is stopped after --start-timeout and
/// reported failed with the reason, while heartbeats go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_engine_is_timed_out_and_reported() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    std::fs::write(calls_dir.join("up.hangs"), "").unwrap();
    let _agent = cp.agent(
        "hung",
        &["--runtime", "docker", "--start-timeout", "3s"],
        &env,
    );
    let node = cp.node_named("hung").await;
    cp.deploy(&json!({"deployment_id": "stuck", "template_id": "t",
                      "rendered_compose": "services:\n  app:\n    image: x\n"}))
        .await;
    let failed = cp
        .wait_for("/api/v1/deployments/stuck", |d| d["status"] == "failed")
        .await;
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("did not finish within 3s"), "{message}");
    let (_, seen) = cp
        .get(&format!("/api/v1/nodes/{}", node["id"].as_str().unwrap()))
        .await;
    assert_eq!(seen["status"], "online", "{seen}");
}

/// A new revision supersedes a start in progress: the old revision never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_revision_supersedes_a_start_in_progress() {
    let cp = ControlPlane::start(&[]).await;
    let simulated = ["--runtime", "simulated", "--simulated-start", "4s"];
    let _agent = cp.agent("changing", &simulated, &[]);
    let node = cp.node_named("changing").await;
    let deploy = |image: &str| {
        json!({"deployment_id": "app", "template_id": "t",
               "rendered_compose": format!("services:\n  a:\n    image: {image}\n")})
    };
    cp.deploy(&deploy("one")).await;
    cp.wait_for("/api/v1/deployments/app", |d| {
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("starting revision 1"))
    })
    .await;
    cp.deploy(&deploy("two")).await;
    let running = cp
        .wait_for("/api/v1/deployments/app", running_on(&node))
        .await;
    assert_eq!(running["revision"], 2, "{running}");
    let (status, events) = cp
        .get("/api/v1/events?follow=false&topic=deployment:app&type=deployment.running")
        .await;
    assert_eq!(status, 200, "{events}");
    let revisions: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["revision"])
        .collect();
    assert_eq!(revisions, [&json!(2)], "revision 1 never ran: {events}");
}

/// Health from Docker: the containers' healthcheck verdicts and restart counts,
/// as `docker inspect` gives them, reach the deployment at the next heartbeat:
/// `none` without a healthcheck, then `starting`, `healthy` with restarts, and
/// `unhealthy` (an event each for healthy and unhealthy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_health_and_restarts_reach_the_deployment() {
    let cp = ControlPlane::start(&[]).await;
    let (_bin, calls_dir, env) = stand_ins();
    let _agent = cp.agent("checked", &["--runtime", "docker"], &env);
    cp.node_named("checked").await;
    cp.deploy(&json!({"deployment_id": "svc", "template_id": "t",
                      "rendered_compose": "services:\n  app:\n    image: x\n"}))
        .await;
    let path = "/api/v1/deployments/svc";
    let running = cp.wait_for(path, |d| d["status"] == "running").await;
    assert_eq!(running["health"], "none", "{running}");
    assert_eq!(running["restarts"], 0, "{running}");

    let project = "miaas-svc";
    let set = |health: &str, restarts: u32| {
        std::fs::write(calls_dir.join(format!("{project}.health")), health).unwrap();
        std::fs::write(
            calls_dir.join(format!("{project}.restarts")),
            restarts.to_string(),
        )
        .unwrap();
    };
    set("starting", 0);
    cp.wait_for(path, |d| d["health"] == "starting").await;
    set("healthy", 2);
    let healthy = cp
        .wait_for(path, |d| d["health"] == "healthy" && d["restarts"] == 2)
        .await;
    assert_eq!(healthy["status"], "running");
    set("unhealthy", 3);
    let sick = cp
        .wait_for(path, |d| d["health"] == "unhealthy" && d["restarts"] == 3)
        .await;
    assert_eq!(sick["status"], "running", "unhealthy still runs: {sick}");
    let calls = std::fs::read_to_string(calls_dir.join("calls")).unwrap();
    assert!(calls.contains("inspect --format"), "{calls}");

    // events are stored a moment after the change they tell of (in batches)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let events = loop {
        let (_, events) = cp
            .get("/api/v1/events?follow=false&topic=deployment:svc")
            .await;
        let told = events
            .as_array()
            .is_some_and(|all| all.iter().any(|e| e["type"] == "deployment.unhealthy"));
        if told || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    let healthy_at = kinds.iter().position(|k| *k == "deployment.healthy");
    let unhealthy_at = kinds.iter().position(|k| *k == "deployment.unhealthy");
    assert!(
        healthy_at.is_some() && healthy_at < unhealthy_at,
        "{kinds:?}"
    );
}

/// A real engine's healthchecks: a service whose check passes after a few
/// seconds is `starting`, then `healthy`, and `miaas deploy --wait` returns only
/// then; one whose check never passes turns `unhealthy` and `--wait` exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_docker,
    ignore = "needs a Docker engine: set MIAAS_TEST_DOCKER_HOST (bash .ci/start-docker DIR starts one)"
)]
async fn with_a_real_docker_engine_deploy_wait_follows_the_healthchecks() {
    let Some((cp, agent, _node, _host)) = on_a_docker_engine("docker-health").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, check: &str, command: &str, start_period: &str| {
        let path = dir.path().join(name);
        let text = format!(
            "services:\n  app:\n    image: miaas-test/busybox:1\n    \
             command: [\"sh\", \"-c\", \"{command}\"]\n    \
             healthcheck:\n      test: {check}\n      interval: 1s\n      \
             timeout: 1s\n      retries: 2\n      start_period: {start_period}\n"
        );
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let token = [("MIAAS_TOKEN", cp.admin.as_str())];
    let deploy = |id: &str, file: &str| {
        let args = [
            "--server",
            cp.server.base.as_str(),
            "deploy",
            "-f",
            file,
            "--name",
            id,
            "--wait",
            "--timeout",
            "2m",
        ];
        miaas_tests::miaas(dir.path(), &args, &token, None)
    };

    let pid = std::process::id();
    let slow = write(
        "slow.yaml",
        "[\"CMD-SHELL\", \"cat /ready\"]",
        "sleep 4; echo yes > /ready; sleep 300",
        "30s",
    );
    let id = format!("ready-{pid}");
    let run = deploy(&id, &slow);
    assert_eq!(run.code, 0, "{run:?}\n{}", agent.log());
    assert!(run.stdout.contains("health: healthy"), "{run:?}");
    assert!(
        run.stderr.contains(&format!("{id}: running (starting)")),
        "it was seen starting before it was ready: {run:?}"
    );
    let (_, d) = cp.get(&format!("/api/v1/deployments/{id}")).await;
    assert_eq!(d["health"], "healthy", "{d}");

    let never = write(
        "never.yaml",
        "[\"CMD-SHELL\", \"exit 1\"]",
        "sleep 300",
        "0s",
    );
    let sick = format!("sick-{pid}");
    let run = deploy(&sick, &never);
    assert_eq!(run.code, 1, "{run:?}\n{}", agent.log());
    assert!(run.stderr.contains("(unhealthy"), "{run:?}");
    let (_, d) = cp.get(&format!("/api/v1/deployments/{sick}")).await;
    assert_eq!(d["health"], "unhealthy", "{d}");
    assert_eq!(d["status"], "running", "{d}");

    for id in [id, sick] {
        cp.delete(&id).await;
        cp.wait_for(&format!("/api/v1/deployments/{id}"), |d| {
            d["status"] == "deleted"
        })
        .await;
    }
}
