//! Deployments run with Docker Compose: the compose document the server resolved
//! (mode 0600: it holds the deployment's secrets) is written to the deployment's
//! folder, and `docker compose -p <project> -f compose.yaml up -d --remove-orphans`
//! runs it (Compose v2 through `docker`, else the separate `docker-compose` v1).
//! Removal runs `down`; volumes are kept. How it does comes from the containers
//! Docker labels with the project: their states, their healthchecks' verdicts
//! and their restart counts (`docker inspect`).
//!
//! Compose and Docker run with a clean environment: `PATH`, `HOME`, `DOCKER_*`
//! and `XDG_*` of the agent's own, and the deployment's `COMPOSE_PROFILES`;
//! never `MIAAS_*` (the join token) or anything else. The document leaves Compose
//! nothing to interpolate, and no `.env` lies beside it.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use miaas_core::model::{DeploymentHealth, DesiredDeployment, DockerInfo, LogLine, LogRequest};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::compose_file::rendered_for_node;
use super::{Condition, Running, Runtime};

/// How long a `docker` command other than `up` may take, so that a hung engine
/// cannot hang the agent (`down` stops containers, which may take a while).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How long an `up` may take by default: long enough to pull a model server's
/// image of several GB.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The most lines of an `up`'s output kept for its error message.
const KEPT_LINES: usize = 5;

/// The Docker runtime, with the Compose command found on `PATH`.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    /// `["docker", "compose"]`, `["docker-compose"]`, or none found.
    compose: Option<Vec<String>>,
    /// The version that Compose reports, e.g. `2.29.1`.
    compose_version: Option<String>,
    /// How long an `up` may take.
    start_timeout: Duration,
}

impl DockerRuntime {
    /// Finds Compose: `docker compose` (v2) first, then `docker-compose` (v1).
    pub async fn detect() -> Self {
        for candidate in [vec!["docker", "compose"], vec!["docker-compose"]] {
            let mut args: Vec<&str> = candidate[1..].to_vec();
            args.push("version");
            if let Ok(said) = run(candidate[0], &args).await {
                let compose_version = compose_version(&said);
                tracing::info!(compose = %candidate.join(" "), version = ?compose_version, "using Docker Compose");
                return Self {
                    compose: Some(candidate.iter().map(|s| s.to_string()).collect()),
                    compose_version,
                    start_timeout: DEFAULT_START_TIMEOUT,
                };
            }
        }
        tracing::warn!(
            "neither `docker compose` nor `docker-compose` answers: deployments will fail"
        );
        Self {
            compose: None,
            compose_version: None,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }

    /// The same runtime, whose `up` may take `timeout`.
    pub fn with_start_timeout(self, timeout: Duration) -> Self {
        Self {
            start_timeout: timeout,
            ..self
        }
    }

    async fn compose(&self, project: &str, args: &[&str]) -> Result<String, String> {
        let (program, all) = self.compose_command(project, args)?;
        run(program, &all).await
    }

    /// The program and arguments of `compose -p project args`.
    fn compose_command<'a>(
        &'a self,
        project: &'a str,
        args: &[&'a str],
    ) -> Result<(&'a str, Vec<&'a str>), String> {
        let Some(compose) = &self.compose else {
            return Err("Docker Compose is not installed on this node".into());
        };
        let mut all: Vec<&str> = compose[1..].iter().map(String::as_str).collect();
        all.extend(["-p", project]);
        all.extend_from_slice(args);
        Ok((&compose[0], all))
    }
}

/// What `docker inspect` says of each container: its healthcheck's status
/// (empty without a healthcheck) and its restart count.
const INSPECT_FORMAT: &str =
    "{{if .State.Health}}{{.State.Health.Status}}{{end}} {{.RestartCount}}";

/// The deployment's health and restarts from the lines of [`INSPECT_FORMAT`].
fn container_health(text: &str) -> (DeploymentHealth, u32) {
    let mut restarts = 0u32;
    let mut each = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (status, count) = match (words.next(), words.next()) {
            (Some(status), Some(count)) => (Some(status), count),
            (Some(count), None) => (None, count),
            _ => continue,
        };
        restarts = restarts.saturating_add(count.parse().unwrap_or(0));
        // a status Docker may add later counts as a healthcheck not yet passed
        each.push(status.map(|s| DeploymentHealth::parse(s).unwrap_or(DeploymentHealth::Starting)));
    }
    (DeploymentHealth::of_containers(each), restarts)
}

/// The version in what `compose version` prints: `Docker Compose version v2.29.1`
/// (v2) or `docker-compose version 1.29.2, build unknown` (v1).
fn compose_version(said: &str) -> Option<String> {
    let line = said.lines().next()?;
    let (_, after) = line.split_once("version")?;
    let word = after.split([' ', ',']).find(|w| !w.is_empty())?;
    let version = word.strip_prefix('v').unwrap_or(word);
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| version.to_string())
}

/// What of the agent's environment Compose and Docker are given: only what they
/// need to find the engine and their own files.
fn clean_environment() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            name == "PATH"
                || name == "HOME"
                || name.starts_with("DOCKER_")
                || name.starts_with("XDG_")
        })
        .collect()
}

/// `program args` with a clean environment ([`clean_environment`]) and `extra`.
fn command(program: &str, args: &[&str], extra: Option<(&str, &str)>) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(clean_environment())
        .envs(extra)
        .kill_on_drop(true);
    command
}

/// Runs `program args` ([`command`]) for at most [`COMMAND_TIMEOUT`]; its
/// standard output, or a short message with the end of what it printed.
async fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let mut command = command(program, args, None);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, command.output())
        .await
        .map_err(|_| format!("`{program} {}` timed out", args.join(" ")))?
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = tail[tail.len().saturating_sub(5)..].join("\n");
    Err(format!(
        "`{program} {}` failed ({}): {tail}",
        args.first().copied().unwrap_or_default(),
        output.status
    ))
}

/// Runs `program args` ([`command`]) for at most `timeout`, sending every line it
/// prints on standard error (Compose's progress) to `progress`; the last lines in
/// the error message when it fails.
async fn run_streaming(
    program: &str,
    args: &[&str],
    extra: Option<(&str, &str)>,
    timeout: Duration,
    progress: mpsc::Sender<String>,
) -> Result<(), String> {
    let mut child = command(program, args, extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| format!("{program} has no error output"))?;
    let said = async {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        let mut last: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim().to_string();
            if line.is_empty() {
                continue;
            }
            let _ = progress.try_send(line.clone());
            if last.len() == KEPT_LINES {
                last.pop_front();
            }
            last.push_back(line);
        }
        Vec::from(last).join("\n")
    };
    let finished = async {
        let (tail, status) = tokio::join!(said, child.wait());
        (tail, status)
    };
    let what = format!("`{program} {}`", args.join(" "));
    // dropped on a timeout (or when the start is superseded), the child is killed
    let (tail, status) = tokio::time::timeout(timeout, finished).await.map_err(|_| {
        format!(
            "{what} did not finish within {}",
            humantime::format_duration(timeout)
        )
    })?;
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{what} failed ({status}): {tail}")),
        Err(err) => Err(format!("cannot run {program}: {err}")),
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    miaas_core::private_file::overwrite(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|err| format!("cannot write {}: {err}", path.display()))
}

#[async_trait]
impl Runtime for DockerRuntime {
    async fn apply(
        &self,
        deployment: &DesiredDeployment,
        dir: &Path,
        project: &str,
        progress: mpsc::Sender<String>,
    ) -> Condition {
        let compose_path = dir.join("compose.yaml");
        // an older agent wrote the environment to `.env`, which Compose would read
        // on its own: the document holds it now
        let _ = std::fs::remove_file(dir.join(".env"));
        let written = rendered_for_node(deployment)
            .and_then(|compose| write_private(&compose_path, &compose));
        if let Err(message) = written {
            return Condition::Failed(message);
        }
        let compose_file = compose_path.display().to_string();
        let up = ["-f", compose_file.as_str(), "up", "-d", "--remove-orphans"];
        let profiles = deployment.env.get("COMPOSE_PROFILES").map(String::as_str);
        let started = match self.compose_command(project, &up) {
            Ok((program, args)) => {
                let profiles = profiles.map(|p| ("COMPOSE_PROFILES", p));
                run_streaming(program, &args, profiles, self.start_timeout, progress).await
            }
            Err(message) => Err(message),
        };
        match started {
            Ok(()) => match self.condition(project, dir).await {
                Condition::Absent => Condition::Failed("`up` started no container".into()),
                health => health,
            },
            Err(message) => Condition::Failed(message),
        }
    }

    async fn remove(&self, project: &str, dir: &Path) -> Result<(), String> {
        let compose_path = dir.join("compose.yaml");
        let file = compose_path.display().to_string();
        let args: Vec<&str> = if compose_path.exists() {
            vec!["-f", file.as_str(), "down", "--remove-orphans"]
        } else {
            vec!["down", "--remove-orphans"]
        };
        self.compose(project, &args).await.map(drop)
    }

    async fn condition(&self, project: &str, _dir: &Path) -> Condition {
        let filter = format!("label=com.docker.compose.project={project}");
        let listed = run(
            "docker",
            &["ps", "-a", "--filter", &filter, "--format", "{{json .}}"],
        )
        .await;
        let text = match listed {
            Ok(text) => text,
            Err(message) => return Condition::Failed(message),
        };
        let containers: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect();
        if containers.is_empty() {
            return Condition::Absent;
        }
        let stopped: Vec<String> = containers
            .iter()
            .filter(|c| c["State"].as_str() != Some("running"))
            .map(|c| {
                format!(
                    "{} is {} ({})",
                    c["Names"].as_str().unwrap_or("a container"),
                    c["State"].as_str().unwrap_or("not running"),
                    c["Status"].as_str().unwrap_or("")
                )
            })
            .collect();
        if !stopped.is_empty() {
            return Condition::Failed(stopped.join("; "));
        }
        let ids: Vec<&str> = containers.iter().filter_map(|c| c["ID"].as_str()).collect();
        let mut args = vec!["inspect", "--format", INSPECT_FORMAT];
        args.extend(ids);
        let (health, restarts) = match run("docker", &args).await {
            Ok(text) => container_health(&text),
            Err(message) => return Condition::Failed(message),
        };
        let message = match health {
            DeploymentHealth::None => format!("{} container(s) running", containers.len()),
            health => format!(
                "{} container(s) running, {}",
                containers.len(),
                health.as_str()
            ),
        };
        Condition::Running(Running {
            message,
            health,
            restarts,
        })
    }

    async fn running_containers(&self) -> Vec<String> {
        run(
            "docker",
            &["ps", "--filter", "name=miaas-", "--format", "{{.Names}}"],
        )
        .await
        .map(|text| text.lines().map(str::to_string).collect())
        .unwrap_or_default()
    }

    /// `compose logs --no-color --timestamps`, line by line.
    async fn logs(
        &self,
        project: &str,
        dir: &Path,
        request: &LogRequest,
        lines: mpsc::Sender<LogLine>,
    ) -> Result<(), String> {
        let compose_path = dir.join("compose.yaml").display().to_string();
        let tail = request.tail.map(|t| t.to_string());
        let mut args = vec![
            "-f",
            compose_path.as_str(),
            "logs",
            "--no-color",
            "--timestamps",
        ];
        if request.follow {
            args.push("--follow");
        }
        if let Some(tail) = &tail {
            args.extend(["--tail", tail.as_str()]);
        }
        if let Some(since) = &request.since {
            args.extend(["--since", since.as_str()]);
        }
        if let Some(service) = &request.service {
            // after `--`: a name can never be taken for an option
            args.extend(["--", service.as_str()]);
        }
        let (program, args) = self.compose_command(project, &args)?;
        let mut child = command(program, &args, None)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run {program}: {err}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| "the logs command has no output".to_string())?;
        let mut reader = tokio::io::BufReader::new(stdout).lines();
        loop {
            let next = tokio::select! {
                next = reader.next_line() => next,
                () = lines.closed() => break,
            };
            match next {
                Ok(Some(text)) => {
                    let Some(line) = super::log_lines::parse(&text) else {
                        continue;
                    };
                    if lines.send(line).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => return Err(format!("reading the logs failed: {err}")),
            }
        }
        // dropping the child kills a `--follow` still running
        let _ = child.start_kill();
        Ok(())
    }

    async fn data_root(&self) -> Option<std::path::PathBuf> {
        let said = run("docker", &["info", "--format", "{{.DockerRootDir}}"])
            .await
            .ok()?;
        let root = said.trim();
        (!root.is_empty()).then(|| std::path::PathBuf::from(root))
    }

    async fn engine(&self) -> Option<DockerInfo> {
        let version = run("docker", &["version", "--format", "{{.Server.Version}}"]).await;
        Some(match version {
            Ok(version) if !version.trim().is_empty() => DockerInfo {
                version: version.trim().to_string(),
                available: true,
                compose_version: self.compose_version.clone(),
                extra: Default::default(),
            },
            _ => DockerInfo {
                version: "none".into(),
                available: false,
                compose_version: self.compose_version.clone(),
                extra: Default::default(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{DeploymentHealth, compose_version, container_health};

    #[test]
    fn health_and_restarts_of_the_containers() {
        assert_eq!(container_health(" 0\n 2\n"), (DeploymentHealth::None, 2));
        assert_eq!(
            container_health("healthy 0\n 1\n"),
            (DeploymentHealth::Healthy, 1)
        );
        assert_eq!(
            container_health("healthy 0\nstarting 0\n"),
            (DeploymentHealth::Starting, 0)
        );
        assert_eq!(
            container_health("unhealthy 3\nstarting 0\nhealthy 1\n"),
            (DeploymentHealth::Unhealthy, 4)
        );
    }

    #[test]
    fn compose_versions_of_v1_and_v2() {
        assert_eq!(
            compose_version("Docker Compose version v2.29.1\n").as_deref(),
            Some("2.29.1")
        );
        assert_eq!(
            compose_version("docker-compose version 1.29.2, build unknown\n").as_deref(),
            Some("1.29.2")
        );
        assert_eq!(compose_version("no version here"), None);
        assert_eq!(compose_version(""), None);
    }
}
