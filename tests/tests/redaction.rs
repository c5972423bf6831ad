//! Database passwords never reach help texts or error messages, in either form
//! (`user:password@host` or `?password=`).

use miaas_tests::{binary, miaas};

const SECRET: &str = "hunter2-db-secret";

#[test]
fn help_never_shows_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://miaas:{SECRET}@127.0.0.1:1/miaas");
    let cli = miaas(
        dir.path(),
        &["--help"],
        &[("DATABASE_URL", url.as_str())],
        None,
    );
    assert_eq!(cli.code, 0, "{cli:?}");
    assert!(cli.stdout.contains("--database-url"), "{cli:?}");
    assert!(!cli.stdout.contains(SECRET), "{}", cli.stdout);
    let server = std::process::Command::new(binary("miaas-server"))
        .arg("--help")
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&server.stdout);
    assert!(
        help.contains("--database-url") && !help.contains(SECRET),
        "{help}"
    );
}

#[test]
fn connection_errors_never_show_the_database_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("postgres://miaas:{SECRET}@127.0.0.1:1/miaas"),
        format!("postgres://127.0.0.1:1/miaas?user=miaas&password={SECRET}"),
    ] {
        let run = miaas(
            dir.path(),
            &["--database-url", &url, "nodes", "list"],
            &[],
            None,
        );
        assert_eq!(run.code, 1, "{run:?}");
        assert!(!run.stderr.contains(SECRET), "{}", run.stderr);
        assert!(run.stderr.contains("***"), "{}", run.stderr);
    }
}
