//! A real `miaas agent` process joining a server under test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::binary;

/// A `miaas agent` process; killed when dropped.
pub struct AgentProcess {
    child: Option<Child>,
    /// Its state directory.
    pub state_dir: PathBuf,
    log: PathBuf,
}

impl AgentProcess {
    /// Starts an agent named `name` joining `server` with `join_token`, its state
    /// and log under `dir`, with `extra` flags and `env`.
    pub fn start(
        server: &str,
        join_token: &str,
        dir: &Path,
        name: &str,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        let state_dir = dir.join(format!("agent-{name}"));
        let log = dir.join(format!("agent-{name}.log"));
        let mut command = Command::new(binary("miaas"));
        command
            .args(["--server", server, "agent", "--name", name])
            .args(["--state-dir", &state_dir.display().to_string()])
            .args(["--heartbeat-interval", "1s"])
            .args(extra)
            .env("MIAAS_JOIN_TOKEN", join_token)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"));
        for (key, value) in env {
            command.env(key, value);
        }
        Self {
            child: Some(command.spawn().expect("start the agent")),
            state_dir,
            log,
        }
    }

    /// An agent with the simulated runtime (starts take 50 ms).
    pub fn simulated(server: &str, join_token: &str, dir: &Path, name: &str) -> Self {
        let simulated = ["--runtime", "simulated", "--simulated-start", "50ms"];
        Self::start(server, join_token, dir, name, &simulated, &[])
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and wait for the exit (which must be a success).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let status = child.wait().expect("agent exit");
            assert!(status.success(), "agent exit {status}: {}", self.log());
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl AgentProcess {
    /// Waits up to `patience` for the agent to exit by itself; its exit status,
    /// or `None` while it still runs.
    pub fn exit_within(
        &mut self,
        patience: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + patience;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
