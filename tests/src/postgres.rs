//! A PostgreSQL cluster of a test's own, which the test may stop and start.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A throwaway PostgreSQL cluster on 127.0.0.1, started by `.ci/start-postgres`.
pub struct OwnPostgres {
    dir: TempDir,
    /// Admin URL of the cluster.
    pub url: String,
}

impl OwnPostgres {
    /// Starts a cluster on a free port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        // the cluster runs as the postgres user, who must reach the data folder
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("open the temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/start-postgres");
        let data = dir.path().join("data");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&data)
            .arg(port.to_string())
            .output()
            .expect("run start-postgres");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("url")
            .trim()
            .to_string();
        Self { dir, url }
    }

    /// Stops the cluster (fast shutdown: connections are cut).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    /// Starts the cluster again on its port.
    pub fn resume(&self) {
        let log = self.data().join("server.log");
        let log = log.to_string_lossy().into_owned();
        self.pg_ctl(&["start", "-w", "-l", &log]);
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str]) {
        let pg_ctl = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL installed")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin/pg_ctl"))
            .filter(|p| p.exists())
            .max()
            .expect("pg_ctl");
        let data = self.data();
        let data = data.to_string_lossy();
        let mut all = vec![
            pg_ctl.to_string_lossy().into_owned(),
            "-D".into(),
            data.into_owned(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let status = if root {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(&all)
                .status()
        } else {
            Command::new(&all[0]).args(&all[1..]).status()
        }
        .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?}");
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            self.stop();
        }
    }
}
