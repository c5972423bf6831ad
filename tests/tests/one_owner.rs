//! A SQLite file has one owner: while a server runs on it, `miaas` in local mode
//! does not write it behind the server's back (it is refused and told the
//! server's URL), and a second server does not start on it. Once the server is
//! gone, even killed, the file is free again.

use std::process::Command;

use miaas_tests::{ServerProcess, binary};

fn local(db_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(binary("miaas"))
        .arg("--database-url")
        .arg(db_url)
        .args(args)
        .env_remove("MIAAS_SERVER")
        .env("NO_COLOR", "1")
        .output()
        .expect("run miaas")
}

#[tokio::test]
async fn local_mode_and_a_second_server_are_refused_while_a_server_owns_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cp.db");
    let db_url = format!("sqlite://{}", db.display());
    let args = [
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--database-url",
        &db_url,
    ];

    let server = ServerProcess::start(&binary("miaas-server"), &args, dir.path(), &[]);
    let refused = local(&db_url, &["nodes", "rm", "anything"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("--server {}", server.base)),
        "names the server: {stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let second = Command::new(binary("miaas-server"))
        .args(args)
        .current_dir(dir.path())
        .env("MIAAS_AUTH", "off")
        .output()
        .expect("run a second server");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(
        said.contains("already served by the server at"),
        "says why: {said}"
    );

    // the kernel drops the lock of a killed server: the file is usable at once
    server.kill();
    let listed = local(&db_url, &["nodes", "list", "-o", "json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let lock = std::fs::metadata(dir.path().join("cp.db.lock")).expect("the lock file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(lock.permissions().mode() & 0o777, 0o600);
}
