//! The real binaries, started as child processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Path of a binary of this workspace (`miaas-server`, `miaas`), built by
/// `cargo test --workspace` beside the test executables.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // test executables live in <profile>/deps, other binaries in <profile>
    let parent = exe.parent().expect("the executable's folder");
    let dir = if parent.ends_with("deps") {
        parent.parent().expect("target profile directory")
    } else {
        parent
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        path.display()
    );
    path
}

/// A server binary running as a child process, stopped (SIGTERM) when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: mpsc::Receiver<String>,
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The log line that said where it listens.
    listening: String,
    /// The log lines before it.
    started: Vec<String>,
}

impl ServerProcess {
    /// Starts `binary` with `args` in `cwd` (port 0 on 127.0.0.1 unless `args` say
    /// otherwise; authentication off unless `env` sets `MIAAS_AUTH`) and waits
    /// until it logs the address it listens on.
    pub fn start(binary: &Path, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .args(args)
            .current_dir(cwd)
            .env_remove("DATABASE_URL")
            .env("LOG_LEVEL", "info")
            .env("MIAAS_AUTH", "off")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start server binary");
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = printed.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + START_DEADLINE;
        let mut seen = Vec::new();
        let (address, listening) = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .split_whitespace()
                        .find_map(|word| word.strip_prefix("address="))
                    {
                        break (addr.to_string(), line);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; its log:\n{}", seen.join("\n"));
                }
            }
        };
        Self {
            child: Some(child),
            base: format!("http://{address}"),
            log: rx,
            printed,
            listening,
            started: seen,
        }
    }

    /// What it logged before it said where it listens (its warnings at start).
    pub fn startup_log(&self) -> &[String] {
        &self.started
    }

    /// The value of `field=` in the log line that said where it listens (e.g.
    /// `metrics_address`).
    pub fn listening(&self, field: &str) -> Option<String> {
        let prefix = format!("{field}=");
        self.listening
            .split_whitespace()
            .find_map(|word| word.strip_prefix(prefix.as_str()))
            .map(str::to_string)
    }

    /// What the process printed on standard output so far (not its log).
    pub fn printed(&self) -> Vec<String> {
        self.printed.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A secret its first start saved beside the database in `dir`
    /// (`control_plane.db.credentials`): `MIAAS_ADMIN_PASSWORD` or `MIAAS_JOIN_TOKEN`.
    pub fn saved_secret(dir: &Path, name: &str) -> String {
        let saved = std::fs::read_to_string(dir.join("control_plane.db.credentials"))
            .expect("the saved credentials");
        let prefix = format!("{name}=");
        saved
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("{name} in the saved credentials"))
            .to_string()
    }

    /// An access token of the bootstrap admin, whose password the first start
    /// saved in `dir`.
    pub async fn admin_token(&self, dir: &Path) -> String {
        admin_token_over(&reqwest::Client::new(), &self.base, dir).await
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM and waits for the process to exit; returns its status and the
    /// log lines it wrote after starting.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running child");
        signal_term(&child);
        let status = child.wait().expect("wait for server");
        let log = self.log.try_iter().collect();
        (status, log)
    }
}

impl ServerProcess {
    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal_term(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_term(&child);
            let _ = child.wait();
        }
    }
}

/// An access token of the bootstrap admin of the server at `base` (whose first
/// start saved the password in `dir`), asked for with `client` (one trusting the
/// server's own CA, for HTTPS).
pub async fn admin_token_over(client: &reqwest::Client, base: &str, dir: &Path) -> String {
    let password = ServerProcess::saved_secret(dir, "MIAAS_ADMIN_PASSWORD");
    let login = serde_json::json!({"username": "admin", "password": password});
    let request = client
        .post(format!("{base}/api/v1/auth/token"))
        .json(&login);
    let (status, answer) = crate::send(request).await;
    assert_eq!(status, 200, "{answer}");
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}
