//! `miaas login`, `users`, `tokens` and secret redaction in the CLI, against a real
//! server with authentication on and against its database directly.

use std::path::Path;

use miaas_tests::{Run, TestServer, miaas};

/// A user's environment: its own config directory (where logins are saved).
struct Shell {
    dir: tempfile::TempDir,
}

impl Shell {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn config(&self) -> String {
        self.dir.path().join("config").display().to_string()
    }

    fn run(&self, server: &TestServer, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_with(server, args, &[], stdin)
    }

    fn with_token(&self, server: &TestServer, token: &str, args: &[&str]) -> Run {
        self.run_with(server, args, &[("MIAAS_TOKEN", token)], None)
    }

    fn run_with(
        &self,
        server: &TestServer,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Run {
        let mut all = vec!["--server", server.base.as_str()];
        all.extend_from_slice(args);
        let config = self.config();
        let mut env = env.to_vec();
        env.push(("XDG_CONFIG_HOME", config.as_str()));
        miaas(self.dir.path(), &all, &env, stdin)
    }
}

fn compose_file(dir: &Path) -> String {
    let path = dir.join("compose.yml");
    std::fs::write(&path, "services:\n  web:\n    image: nginx\n").expect("write");
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_saves_a_private_token_that_later_commands_use_until_logout() {
    let server = TestServer::secure().await;
    let shell = Shell::new();
    let refused = shell.run(&server, &["nodes", "list"], None);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("miaas login"), "{refused:?}");
    assert_eq!(refused.stderr.trim().lines().count(), 1);

    let wrong = shell.run(&server, &["login", "--password-stdin"], Some("nope-nope\n"));
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(wrong.stderr.contains("Invalid username or password"));

    let password = format!("{}\n", server.admin_password);
    let login = shell.run(&server, &["login", "--password-stdin"], Some(&password));
    assert_eq!(login.code, 0, "{login:?}");
    let saved = Path::new(&shell.config()).join("miaas/credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&saved)
            .expect("saved")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !std::fs::read_to_string(&saved)
            .expect("saved")
            .contains(&server.admin_password)
    );
    shell.run(&server, &["nodes", "list"], None).ok();

    let compose = compose_file(shell.dir.path());
    shell
        .run(
            &server,
            &[
                "deploy",
                "-f",
                &compose,
                "--name",
                "web",
                "-e",
                "DB_PASSWORD=s3cr3t-value",
            ],
            None,
        )
        .ok();
    for args in [
        vec!["deployments", "get", "web", "-o", "json"],
        vec!["deployments", "list", "-o", "yaml"],
        vec!["ps"],
    ] {
        let run = shell.run(&server, &args, None).ok();
        assert!(!run.stdout.contains("s3cr3t-value"), "{args:?}: {run:?}");
    }
    let shown = shell.run(&server, &["deployments", "get", "web", "-o", "json"], None);
    assert_eq!(shown.json()["env"]["DB_PASSWORD"], "***");
    let revealed = shell
        .run(
            &server,
            &["deployments", "get", "web", "--reveal", "-o", "json"],
            None,
        )
        .ok();
    assert_eq!(revealed.json()["env"]["DB_PASSWORD"], "s3cr3t-value");

    shell.run(&server, &["logout"], None).ok();
    assert_eq!(shell.run(&server, &["nodes", "list"], None).code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_users_and_tokens_from_the_cli() {
    let server = TestServer::secure().await;
    let shell = Shell::new();
    let admin = server.admin_token().await;

    let created = shell.with_token(
        &server,
        &admin,
        &["users", "create", "alice", "--role", "operator"],
    );
    assert_eq!(created.code, 0, "{created:?}");
    let password = created.stdout.trim().to_string();
    assert!(
        password.len() >= 16,
        "only the password on stdout: {created:?}"
    );
    assert!(!server.login("alice", &password).await.is_empty());
    let users = shell.with_token(&server, &admin, &["users", "list"]).ok();
    assert!(users.stdout.contains("alice") && users.stdout.contains("operator"));

    let token = shell
        .with_token(
            &server,
            &admin,
            &["tokens", "create", "--name", "ci", "--role", "viewer"],
        )
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(token.starts_with("miaas_api_"), "{token}");
    shell.with_token(&server, &token, &["nodes", "list"]).ok();
    let compose = compose_file(shell.dir.path());
    let denied = shell.with_token(&server, &token, &["deploy", "-f", &compose, "--name", "x"]);
    assert_eq!(denied.code, 1);
    assert!(denied.stderr.contains("403"), "{denied:?}");
    let listed = shell
        .with_token(&server, &admin, &["tokens", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed[0]["name"], "ci");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    shell
        .with_token(&server, &admin, &["tokens", "rm", &id])
        .ok();
    assert_eq!(
        shell.with_token(&server, &token, &["nodes", "list"]).code,
        1
    );

    let join = shell.with_token(&server, &admin, &["tokens", "join"]).ok();
    assert_eq!(join.stdout.trim(), server.join_token);
    let rotated = shell
        .with_token(&server, &admin, &["tokens", "join", "--rotate"])
        .ok();
    assert_ne!(rotated.stdout.trim(), server.join_token);
    assert!(rotated.stdout.trim().starts_with("miaas_join_"));

    let operator = server.login("alice", &password).await;
    let refused = shell.with_token(&server, &operator, &["users", "list"]);
    assert_eq!(refused.code, 1, "operators do not manage users");
    shell
        .with_token(&server, &admin, &["users", "rm", "alice"])
        .ok();
    let gone = shell.with_token(&server, &admin, &["users", "rm", "alice"]);
    assert_eq!(gone.code, 3, "not found: {gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_mode_manages_access_without_a_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cp.db").display());
    let local = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend_from_slice(args);
        miaas(dir.path(), &all, &[], stdin)
    };
    local(
        &[
            "users",
            "create",
            "ops",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("a-long-password\n"),
    )
    .ok();
    let users = local(&["users", "list", "-o", "json"], None).ok().json();
    assert_eq!(users[0]["username"], "ops");
    assert_eq!(users[0]["role"], "admin");
    let join = local(&["tokens", "join"], None).ok();
    assert!(join.stdout.trim().starts_with("miaas_join_"));
    assert_eq!(
        local(&["tokens", "join"], None).ok().stdout,
        join.stdout,
        "stable"
    );
    let bad = local(&["users", "create", "x", "--role", "root"], None);
    assert_eq!(bad.code, 2, "{bad:?}");
    let login = local(&["login", "--password-stdin"], Some("x\n"));
    assert_eq!(login.code, 2, "login needs a server: {login:?}");

    // a server started on this database later lets the user in
    let server = TestServer::spawn_on(dir, url.clone(), |c| {
        c.auth = miaas_server::AuthMode::On;
    })
    .await;
    let token = server.login("ops", "a-long-password").await;
    let (status, _) = server.get_as(&token, "/api/v1/users").await;
    assert_eq!(status, 200);
    let (status, body) = server
        .post_as(
            join.stdout.trim(),
            "/api/v1/nodes/register",
            &miaas_tests::registration("w1"),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}
