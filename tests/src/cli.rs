//! Running the real `miaas` binary.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::{TestServer, binary};

/// What one `miaas` run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON (panics with the output when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {self:?}"))
    }

    /// Asserts a zero exit and returns itself.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

/// Runs `miaas args...` in `cwd` with a clean environment (plus `env`), feeding
/// `stdin` when given.
pub fn miaas(cwd: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
    let mut command = Command::new(binary("miaas"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("MIAAS_SERVER")
        .env_remove("MIAAS_TOKEN")
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run miaas");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait for miaas");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Both ways to reach one control plane: the server and its database file.
pub struct Modes {
    /// The server (authentication off).
    pub server: TestServer,
    dir: tempfile::TempDir,
}

impl Modes {
    /// A fresh server, and an empty working folder for `miaas`.
    pub async fn new() -> Self {
        Self {
            server: TestServer::spawn().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The working folder of `miaas`.
    pub fn cwd(&self) -> &Path {
        self.dir.path()
    }

    /// `miaas --server <the server> args...`.
    pub fn remote(&self, args: &[&str]) -> Run {
        let mut all = vec!["--server", self.server.base.as_str()];
        all.extend_from_slice(args);
        miaas(self.cwd(), &all, &[], None)
    }

    /// `miaas --database-url <its database> args...`, with its key.
    pub fn local(&self, args: &[&str]) -> Run {
        let mut all = vec!["--database-url", self.server.database_url.as_str()];
        all.extend_from_slice(args);
        miaas(self.cwd(), &all, &self.key_env(), None)
    }

    /// The server's key (as `MIAAS_SECRET_KEY_FILE`), so local mode opens what
    /// the server sealed.
    pub fn key_env(&self) -> [(&str, &str); 1] {
        [(
            "MIAAS_SECRET_KEY_FILE",
            self.server.secret_key_file.to_str().unwrap(),
        )]
    }

    /// Runs `args` both ways; returns (remote, local).
    pub fn both(&self, args: &[&str]) -> (Run, Run) {
        (self.remote(args), self.local(args))
    }

    /// Writes `text` to `relative` in the working folder; answers its path.
    pub fn write(&self, relative: &str, text: &str) -> String {
        let path = self.cwd().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}
