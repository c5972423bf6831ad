//! A runtime that pretends: a deployment is `running` after a delay, or `failed`
//! when its id matches a pattern; its health is `starting` for a while after it
//! started, then `healthy`, or `unhealthy` when its id matches another pattern.
//! For demos, tests and fleet simulations. What it "runs" is recorded in each
//! deployment's folder (the revision and when it started), so a restarted agent
//! finds it running as a real one would.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use miaas_core::model::{DeploymentHealth, DesiredDeployment, DockerInfo, LogLine, LogRequest};
use tokio::sync::mpsc;

use super::{Condition, Running, Runtime};

/// The simulation's settings.
#[derive(Debug, Clone)]
pub struct SimulatedRuntime {
    /// How long a start takes.
    pub start_delay: Duration,
    /// Deployment ids matching this pattern fail: a glob matching the whole id
    /// (`*` any run of characters, `?` one), or a regular expression found in it.
    pub fail_pattern: Option<String>,
    /// How long after its start a deployment's health stays `starting` before it
    /// turns `healthy`.
    pub ready_after: Duration,
    /// Deployment ids matching this pattern (as [`Self::fail_pattern`]) run
    /// but turn `unhealthy` once `ready_after` has passed.
    pub unhealthy_pattern: Option<String>,
}

impl SimulatedRuntime {
    /// A simulation whose starts take `start_delay`, nothing failing, every
    /// deployment healthy at once.
    pub fn new(start_delay: Duration) -> Self {
        Self {
            start_delay,
            fail_pattern: None,
            ready_after: Duration::ZERO,
            unhealthy_pattern: None,
        }
    }

    /// The condition of `deployment_id` running `revision` since `started`
    /// (epoch seconds).
    fn running(&self, deployment_id: &str, revision: &str, started: f64) -> Condition {
        let since = (epoch_seconds() - started).max(0.0);
        let health = if since < self.ready_after.as_secs_f64() {
            DeploymentHealth::Starting
        } else if (self.unhealthy_pattern.as_deref())
            .is_some_and(|p| pattern_matches(p, deployment_id))
        {
            DeploymentHealth::Unhealthy
        } else {
            DeploymentHealth::Healthy
        };
        Condition::Running(Running {
            message: format!("simulated: revision {revision} running (no containers)"),
            health,
            restarts: 0,
        })
    }
}

fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const MARKER: &str = "simulated";

/// The file in a deployment's folder naming the deployment it simulates.
const ID_FILE: &str = "simulated-id";

#[async_trait]
impl Runtime for SimulatedRuntime {
    async fn apply(
        &self,
        deployment: &DesiredDeployment,
        dir: &Path,
        _project: &str,
        progress: mpsc::Sender<String>,
    ) -> Condition {
        // says what it does every second, as an `up` pulling an image would
        let started = tokio::time::Instant::now();
        while started.elapsed() < self.start_delay {
            let left = self.start_delay - started.elapsed();
            let _ = progress.try_send(format!(
                "simulated: pulling, {} s left",
                left.as_secs_f64().ceil()
            ));
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
        let failing = self
            .fail_pattern
            .as_deref()
            .is_some_and(|p| pattern_matches(p, &deployment.deployment_id));
        if failing {
            let _ = std::fs::remove_file(dir.join(MARKER));
            return Condition::Failed(format!(
                "simulated: deployment {} fails (matches --simulated-fail)",
                deployment.deployment_id
            ));
        }
        let _ = std::fs::write(dir.join(ID_FILE), &deployment.deployment_id);
        let started = epoch_seconds();
        let record = format!("{}\n{started}\n", deployment.revision);
        if let Err(err) = std::fs::write(dir.join(MARKER), record) {
            return Condition::Failed(format!("simulated: cannot record the start: {err}"));
        }
        let revision = deployment.revision.to_string();
        self.running(&deployment.deployment_id, &revision, started)
    }

    async fn remove(&self, _project: &str, dir: &Path) -> Result<(), String> {
        match std::fs::remove_file(dir.join(MARKER)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(format!("simulated: {err}")),
        }
    }

    async fn condition(&self, _project: &str, dir: &Path) -> Condition {
        let Ok(record) = std::fs::read_to_string(dir.join(MARKER)) else {
            return Condition::Absent;
        };
        let mut lines = record.lines();
        let revision = lines.next().unwrap_or_default().trim().to_string();
        let started = (lines.next())
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        // the deployment's id, which the condition of a project is not asked with
        let id = std::fs::read_to_string(dir.join(ID_FILE)).unwrap_or_default();
        self.running(id.trim(), &revision, started)
    }

    async fn running_containers(&self) -> Vec<String> {
        Vec::new()
    }

    async fn engine(&self) -> Option<DockerInfo> {
        None
    }

    /// Generated lines: up to 50 of the `tail` asked for, then, with `follow`, one
    /// every 200 ms.
    async fn logs(
        &self,
        _project: &str,
        dir: &Path,
        request: &LogRequest,
        lines: mpsc::Sender<LogLine>,
    ) -> Result<(), String> {
        if !dir.join(MARKER).exists() {
            return Err(format!(
                "simulated: {} is not running here",
                request.deployment_id
            ));
        }
        let service = request.service.clone().unwrap_or_else(|| "app".into());
        let line = |text: String| LogLine {
            ts: Some(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()),
            service: service.clone(),
            stream: "stdout".into(),
            line: text,
        };
        let id = &request.deployment_id;
        for n in 1..=request.tail.unwrap_or(200).min(50) {
            if lines
                .send(line(format!("simulated line {n} of {id}")))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        if !request.follow {
            return Ok(());
        }
        for n in 1.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if lines
                .send(line(format!("simulated live line {n} of {id}")))
                .await
                .is_err()
            {
                break;
            }
        }
        Ok(())
    }
}

/// Whether `id` matches `pattern`: as a glob over the whole id (`*` any run of
/// characters, `?` one), or, when it uses other regular expression syntax, as a
/// regular expression found in it (`^fail-\d+$`, `fail-.*`, `bad|broken`).
pub fn pattern_matches(pattern: &str, id: &str) -> bool {
    let glob: String = pattern
        .chars()
        .map(|c| match c {
            '*' => ".*".to_string(),
            '?' => ".".to_string(),
            other => regex::escape(&other.to_string()),
        })
        .collect();
    let whole = regex::Regex::new(&format!("^(?:{glob})$")).is_ok_and(|r| r.is_match(id));
    let is_regex = pattern.contains(['^', '$', '.', '|', '+', '(', '[', '{', '\\']);
    whole || (is_regex && regex::Regex::new(pattern).is_ok_and(|r| r.is_match(id)))
}

#[cfg(test)]
mod tests {
    use super::pattern_matches;

    #[test]
    fn globs_match_the_whole_id() {
        assert!(pattern_matches("bad-*", "bad-1"));
        assert!(pattern_matches("*fail*", "will-fail-now"));
        assert!(pattern_matches("exact", "exact"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("a*c", "abc") && !pattern_matches("a*c", "abd"));
        assert!(pattern_matches("web-?", "web-1") && !pattern_matches("web-?", "web-10"));
        assert!(!pattern_matches("bad-*", "good-1"));
    }

    #[test]
    fn regular_expressions_are_found_in_the_id() {
        assert!(pattern_matches("^fail-[0-9]+$", "fail-12"));
        assert!(!pattern_matches("^fail-[0-9]+$", "fail-x"));
        assert!(pattern_matches("fail-.*", "fail-x"));
        assert!(pattern_matches("bad|broken", "is-broken"));
        assert!(!pattern_matches("bad|broken", "fine"));
        assert!(
            !pattern_matches("exact", "inexact-but-no"),
            "a plain word is matched whole"
        );
    }
}
