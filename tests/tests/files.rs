//! Files that hold secrets are the owner's alone: the SQLite database with its
//! `-wal` and `-shm`, the key file and the credentials file, whatever the umask.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use miaas_tests::{ServerProcess, binary};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The real server under a permissive umask (022, the usual default).
fn start(dir: &Path) -> ServerProcess {
    let server = binary("miaas-server");
    let script = "umask 022 && exec \"$0\" --host 127.0.0.1 --port 0";
    ServerProcess::start(
        Path::new("/bin/sh"),
        &["-c", script, server.to_str().unwrap()],
        dir,
        &[("MIAAS_AUTH", "on")],
    )
}

const PRIVATE_FILES: [&str; 5] = [
    "control_plane.db",
    "control_plane.db-wal",
    "control_plane.db-shm",
    "control_plane.db.key",
    "control_plane.db.credentials",
];

#[test]
fn the_database_key_and_credentials_files_are_created_0600() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    for name in PRIVATE_FILES {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn database_files_an_older_install_left_readable_are_made_private() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _) = start(dir.path()).terminate();
    assert!(status.success());
    for name in ["control_plane.db", "control_plane.db-wal"] {
        let path = dir.path().join(name);
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let server = start(dir.path());
    for name in PRIVATE_FILES {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
    drop(server);
}

#[test]
fn a_key_file_others_may_read_or_a_symlinked_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _) = start(dir.path()).terminate();
    assert!(status.success());
    let key = dir.path().join("control_plane.db.key");
    let refused = |why: &str| {
        let out = std::process::Command::new(binary("miaas-server"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .current_dir(dir.path())
            .env("MIAAS_AUTH", "on")
            .env_remove("DATABASE_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{why}: {stderr}");
        stderr
    };

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = refused("readable by others");
    assert!(stderr.contains("chmod 600"), "{stderr}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let moved = dir.path().join("real.key");
    std::fs::rename(&key, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &key).unwrap();
    let stderr = refused("a symbolic link");
    assert!(stderr.contains("symbolic link"), "{stderr}");
}

#[test]
fn folders_the_server_creates_for_its_files_are_0700() {
    let dir = tempfile::tempdir().unwrap();
    let server = binary("miaas-server");
    let db = dir.path().join("data/db/cp.db");
    let key = dir.path().join("keys/miaas.key");
    let credentials = dir.path().join("first/credentials");
    let script = "umask 022 && exec \"$0\" --host 127.0.0.1 --port 0";
    let running = ServerProcess::start(
        Path::new("/bin/sh"),
        &["-c", script, server.to_str().unwrap()],
        dir.path(),
        &[
            ("MIAAS_AUTH", "on"),
            ("DATABASE_URL", &format!("sqlite://{}", db.display())),
            ("MIAAS_SECRET_KEY_FILE", key.to_str().unwrap()),
            ("MIAAS_CREDENTIALS_FILE", credentials.to_str().unwrap()),
        ],
    );
    for folder in ["data", "data/db", "keys", "first"] {
        assert_eq!(mode(&dir.path().join(folder)), 0o700, "{folder}");
    }
    for file in [&db, &key, &credentials] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let (status, _) = running.terminate();
    assert!(status.success());
}
