//! A runtime that pretends: a deployment is `running` after a delay, or `failed`
//! when its id matches a pattern. For demos, tests and fleet simulations. What it
//! "runs" is recorded in each deployment's folder, so a restarted agent finds it
//! running as a real one would.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use miaas_core::model::{DesiredDeployment, DockerInfo, LogLine, LogRequest};
use tokio::sync::mpsc;

use super::{Health, Runtime};

/// The simulation's settings.
#[derive(Debug, Clone)]
pub struct SimulatedRuntime {
    /// How long a start takes.
    pub start_delay: Duration,
    /// Deployment ids matching this glob (`*` for any run of characters) fail.
    pub fail_pattern: Option<String>,
}

const MARKER: &str = "simulated";

#[async_trait]
impl Runtime for SimulatedRuntime {
    async fn apply(&self, deployment: &DesiredDeployment, dir: &Path) -> Health {
        tokio::time::sleep(self.start_delay).await;
        let failing = self
            .fail_pattern
            .as_deref()
            .is_some_and(|p| glob_matches(p, &deployment.deployment_id));
        if failing {
            let _ = std::fs::remove_file(dir.join(MARKER));
            return Health::Failed(format!(
                "simulated: deployment {} fails (matches --simulated-fail)",
                deployment.deployment_id
            ));
        }
        if let Err(err) = std::fs::write(dir.join(MARKER), deployment.revision.to_string()) {
            return Health::Failed(format!("simulated: cannot record the start: {err}"));
        }
        Health::Running(format!(
            "simulated: revision {} running (no containers)",
            deployment.revision
        ))
    }

    async fn remove(&self, _project: &str, dir: &Path) -> Result<(), String> {
        match std::fs::remove_file(dir.join(MARKER)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(format!("simulated: {err}")),
        }
    }

    async fn health(&self, _project: &str, dir: &Path) -> Health {
        match std::fs::read_to_string(dir.join(MARKER)) {
            Ok(revision) => Health::Running(format!(
                "simulated: revision {} running (no containers)",
                revision.trim()
            )),
            Err(_) => Health::Absent,
        }
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

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = match parts.split_first() {
        Some(split) => split,
        None => return text.is_empty(),
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    if rest.is_empty() {
        return remaining.is_empty();
    }
    let (last, middle) = rest.split_last().unwrap_or((&"", &[]));
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_with_stars() {
        assert!(glob_matches("bad-*", "bad-1"));
        assert!(glob_matches("*fail*", "will-fail-now"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("bad-*", "good-1"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*c", "abc") && !glob_matches("a*c", "abd"));
    }
}
