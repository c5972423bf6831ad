//! The `miaas` binary against a real server (`--server`) and against the same SQLite
//! file directly (`--database-url`): same output, exit codes, error messages.

use miaas_tests::{Modes, miaas};
use serde_json::{Value, json};

const COMPOSE: &str = "services:\n  web:\n    image: nginx\n    deploy:\n      resources:\n        reservations:\n          cpus: '1'\n          memory: 1G\n";

/// Drops the columns that hold times ("0s ago", "1s"), which move between runs.
fn without_times(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split("   ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty() && !cell.ends_with(" ago") && !is_age(cell))
                .map(String::from)
                .collect()
        })
        .collect()
}

fn is_age(cell: &str) -> bool {
    cell.len() >= 2
        && cell[..cell.len() - 1].chars().all(|c| c.is_ascii_digit())
        && cell.ends_with(['s', 'm', 'h', 'd'])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_print_the_same_either_way() {
    let m = Modes::new().await;
    m.server.register("worker-01").await;
    m.server.register("worker-02").await;
    let compose = m.write("shop/compose.yml", COMPOSE);
    m.remote(&["deploy", "-f", &compose]).ok();
    m.local(&["deploy", "-f", &compose, "--name", "shop-2"])
        .ok();

    for args in [
        vec!["nodes", "list", "-o", "json"],
        vec!["nodes", "get", "worker-01", "-o", "json"],
        vec!["-o", "json", "ps"],
        vec!["deployments", "list", "-o", "json"],
        vec!["deployments", "get", "shop", "-o", "json"],
        vec!["plan", "-f", &compose, "-o", "json"],
    ] {
        let (remote, local) = m.both(&args);
        assert_eq!(remote.ok().json(), local.ok().json(), "{args:?}");
    }
    for args in [
        vec!["nodes", "list"],
        vec!["nodes", "list", "-o", "wide"],
        vec!["ps"],
        vec!["deployments", "list", "-o", "wide"],
        vec!["deployments", "get", "shop"],
        vec!["nodes", "get", "worker-02"],
        vec!["plan", "-f", &compose],
    ] {
        let (remote, local) = m.both(&args);
        assert_eq!(
            without_times(&remote.ok().stdout),
            without_times(&local.ok().stdout),
            "{args:?}"
        );
    }
    let yaml = m.remote(&["nodes", "list", "-o", "yaml"]).ok();
    let from_yaml: Value = serde_saphyr::from_str(&yaml.stdout).unwrap();
    assert_eq!(from_yaml, m.remote(&["nodes", "list", "-o", "json"]).json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_takes_bare_requirements_without_a_file() {
    let m = Modes::new().await;
    m.server.register("worker-01").await;
    let (remote, local) = m.both(&["-o", "json", "plan", "--cpus", "1", "--memory", "1G"]);
    let plan = remote.ok().json();
    assert_eq!(plan, local.ok().json());
    assert_eq!(plan["requirements"]["cpus"], 1.0, "{plan}");
    assert_eq!(plan["requirements"]["mem_mb"], 1024, "{plan}");
    assert_eq!(plan["requirements"]["gpus"], 0, "{plan}");
    assert_eq!(plan["candidates"][0]["name"], "worker-01", "{plan}");

    // what no node offers is rejected, with the reason; the table says it too
    let (remote, local) = m.both(&["plan", "--cpus", "64", "--tag", "zone=eu"]);
    let (remote, local) = (remote.ok().stdout, local.ok().stdout);
    assert_eq!(remote, local);
    assert!(
        remote.starts_with("Requirements: cpus 64, memory 0 MiB, gpus 0, tags zone=eu\n"),
        "{remote}"
    );
    assert!(remote.contains("Candidates: none"), "{remote}");
    assert!(remote.contains("worker-01"), "{remote}");

    // nothing to plan for is a usage error
    let nothing = m.remote(&["plan"]);
    assert_eq!(nothing.code, 2, "{nothing:?}");
    assert!(nothing.stderr.contains("--cpus"), "{nothing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_have_the_documented_columns_and_human_units() {
    let m = Modes::new().await;
    let (id, _) = m.server.register("worker-01").await;
    let compose = m.write("app/compose.yml", COMPOSE);
    m.remote(&["deploy", "-f", &compose]).ok();

    let nodes = m.remote(&["nodes", "list"]).ok().stdout;
    let lines: Vec<&str> = nodes.lines().collect();
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "ID",
            "IP",
            "STATUS",
            "CPU",
            "MEMORY",
            "GPUS",
            "LAST SEEN",
            "DEPLOYMENTS"
        ]
    );
    let row = lines[1];
    assert!(row.starts_with("worker-01"), "{row}");
    assert!(
        row.contains(&id[..8]) && !row.contains(&id),
        "short id: {row}"
    );
    assert!(
        row.contains("online") && row.contains("1/8") && row.contains("1.0 GiB/15.6 GiB"),
        "{row}"
    );
    assert!(row.contains("s ago"), "{row}");
    assert!(!nodes.contains("\u{1b}["), "no colour when not a terminal");
    assert!(!nodes.contains("179"), "no raw epoch: {nodes}");

    let wide = m.remote(&["nodes", "list", "-o", "wide"]).ok().stdout;
    assert!(
        wide.contains(&id) && wide.contains("DOCKER") && wide.contains("24.0.0"),
        "{wide}"
    );

    let ps = m.remote(&["ps"]).ok().stdout;
    let header: Vec<&str> = ps
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(header, ["ID", "STATUS", "NODE", "TEMPLATE", "AGE"]);
    assert!(ps.lines().nth(1).unwrap().starts_with("app"), "{ps}");
    assert!(ps.contains("scheduled") && ps.contains("worker-01"), "{ps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_names_env_requirements_and_stdin() {
    let m = Modes::new().await;
    m.server.register("worker-01").await;
    let compose = m.write("My Project/docker-compose.yml", COMPOSE);
    let env_file = m.write(
        ".env",
        "# comment\nexport DB_USER=admin\nDB_PASS=\"s3cret\"\n",
    );
    let run = m
        .remote(&[
            "deploy",
            "-f",
            &compose,
            "-e",
            "LEVEL=debug",
            "--env-file",
            &env_file,
        ])
        .ok();
    assert!(
        run.stdout.contains("deployment myproject accepted"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("scheduled on node worker-01"),
        "{run:?}"
    );
    let (_, d) = m.server.get("/api/v1/deployments/myproject").await;
    assert_eq!(d["template_id"], "myproject");
    assert_eq!(
        d["env"],
        json!({"DB_PASS": "s3cret", "DB_USER": "admin", "LEVEL": "debug"})
    );
    assert_eq!(d["requirements"]["cpus"], 1.0);

    let args = [
        "--database-url",
        m.server.database_url.as_str(),
        "deploy",
        "-f",
        "-",
        "--name",
        "piped",
        "--template",
        "tmpl",
        "--cpus",
        "2.5",
        "--memory",
        "2G",
        "--tag",
        "zone=eu",
        "--node",
        "worker-01",
    ];
    let run = miaas(m.cwd(), &args, &m.key_env(), Some(COMPOSE));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("pending"),
        "the tag is missing: {run:?}"
    );
    let (_, d) = m.server.get("/api/v1/deployments/piped").await;
    assert_eq!(d["template_id"], "tmpl");
    assert_eq!(d["requirements"]["cpus"], 2.5);
    assert_eq!(d["requirements"]["mem_mb"], 2048);
    assert_eq!(d["requirements"]["tags"], json!(["zone=eu"]));
    assert_eq!(d["requirements"]["node"], "worker-01");
    assert_eq!(d["placement"]["reasons"]["missing_tags"], 1);

    let again = [
        "deploy",
        "-f",
        &compose,
        "-e",
        "LEVEL=debug",
        "--env-file",
        &env_file,
        "-o",
        "json",
    ];
    let json_out = m.remote(&again).ok().json();
    assert_eq!(json_out["deployment_id"], "myproject");
    assert_eq!(
        json_out["revision"], 1,
        "the same spec again changes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_wait_for_scheduled_succeeds_when_scheduled_and_fails_with_the_reason_on_timeout() {
    let m = Modes::new().await;
    m.server.register("worker-01").await;
    let compose = m.write("w/compose.yml", COMPOSE);
    for run in [
        m.remote(&[
            "deploy",
            "-f",
            &compose,
            "--wait-for",
            "scheduled",
            "--timeout",
            "10s",
        ]),
        m.local(&[
            "deploy",
            "-f",
            &compose,
            "--name",
            "w2",
            "--wait",
            "--wait-for",
            "scheduled",
        ]),
    ] {
        let run = run.ok();
        assert!(run.stdout.contains("scheduled"), "{run:?}");
        assert!(
            run.stderr.contains("scheduled"),
            "status lines on stderr: {run:?}"
        );
    }
    for run in [
        m.remote(&[
            "deploy",
            "-f",
            &compose,
            "--name",
            "huge",
            "--cpus",
            "64",
            "--wait",
            "--timeout",
            "1s",
        ]),
        m.local(&[
            "deploy",
            "-f",
            &compose,
            "--name",
            "huge2",
            "--cpus",
            "64",
            "--wait",
            "--timeout",
            "1s",
        ]),
    ] {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("timed out"), "{run:?}");
        assert!(run.stderr.contains("too little free CPU"), "{run:?}");
    }
    // no agent runs it: --wait (until ready) times out where it stands
    let run = m.remote(&[
        "deploy",
        "-f",
        &compose,
        "--name",
        "w3",
        "--wait",
        "--timeout",
        "1s",
    ]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("(it is scheduled)"), "{run:?}");
    let run = m.remote(&["deploy", "-f", &compose, "--timeout", "1s"]);
    assert_eq!(run.code, 2, "--timeout needs --wait: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_commands_work_by_name_id_or_prefix_either_way() {
    let m = Modes::new().await;
    let (a, _) = m.server.register("alpha").await;
    let (b, _) = m.server.register("bravo").await;
    let compose = m.write("x/compose.yml", COMPOSE);

    let run = m.remote(&["nodes", "cordon", "alpha"]).ok();
    assert_eq!(run.stdout.trim(), "node alpha cordoned");
    let run = m.local(&["nodes", "uncordon", &a[..6]]).ok();
    assert_eq!(run.stdout.trim(), "node alpha uncordoned");
    let node = m.local(&["nodes", "cordon", &a, "-o", "json"]).ok().json();
    assert_eq!(node["schedulable"], false);
    m.remote(&["nodes", "uncordon", "alpha"]).ok();

    let run = m.remote(&["nodes", "tag", "bravo", "zone=eu", "ssd"]).ok();
    assert_eq!(run.stdout.trim(), "node bravo tags: zone=eu, ssd");
    let run = m
        .local(&["nodes", "tag", "bravo", "gpu=a100", "--remove", "ssd"])
        .ok();
    assert_eq!(run.stdout.trim(), "node bravo tags: zone=eu, gpu=a100");

    m.remote(&["deploy", "-f", &compose, "--tag", "zone=eu"])
        .ok();
    let run = m.remote(&["nodes", "drain", "bravo"]).ok();
    assert!(
        run.stdout
            .contains("node bravo drained: 0 deployment(s) moved, 1 pending"),
        "{run:?}"
    );
    let (_, d) = m.server.get("/api/v1/deployments/x").await;
    assert_eq!(d["status"], "pending");

    let report = m.local(&["nodes", "rm", "bravo", "-o", "json"]).ok().json();
    assert_eq!(report["node_id"], json!(b));
    assert_eq!(m.server.get(&format!("/api/v1/nodes/{b}")).await.0, 404);
    let run = m.remote(&["nodes", "rm", "alpha"]).ok();
    assert!(run.stdout.contains("node alpha removed"), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_removal_and_shortcuts_either_way() {
    let m = Modes::new().await;
    m.server.register("worker-01").await;
    let compose = m.write("a/compose.yml", COMPOSE);
    m.remote(&["deploy", "-f", &compose, "--name", "one"]).ok();
    m.remote(&["deploy", "-f", &compose, "--name", "two"]).ok();
    let run = m.remote(&["rm", "one"]).ok();
    assert_eq!(run.stdout.trim(), "deployment one deleting");
    let run = m.local(&["deployments", "rm", "two", "-o", "json"]).ok();
    assert_eq!(run.json()["status"], "deleting");
    let (_, one) = m.server.get("/api/v1/deployments/one").await;
    assert_eq!(one["status"], "deleting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_error_messages() {
    let m = Modes::new().await;
    let (a, _) = m.server.register("abc-1").await;
    m.server.register("abc-2").await;
    for run in [
        m.remote(&["nodes", "get", "nope"]),
        m.local(&["nodes", "get", "nope"]),
        m.remote(&["deployments", "get", "nope"]),
        m.local(&["deployments", "get", "nope"]),
        m.remote(&["rm", "nope"]),
        m.local(&["rm", "nope"]),
    ] {
        assert_eq!(run.code, 3, "{run:?}");
        assert!(
            run.stderr.starts_with("error: ") && run.stderr.contains("nope"),
            "{run:?}"
        );
        assert_eq!(run.stderr.trim().lines().count(), 1, "one line: {run:?}");
        assert!(!run.stderr.contains("panicked"));
    }
    let run = m.remote(&["nodes", "get", ""]);
    assert_ne!(run.code, 0);

    let run = miaas(
        m.cwd(),
        &["--server", "http://127.0.0.1:9", "ps"],
        &[],
        None,
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("http://127.0.0.1:9") && run.stderr.contains("--server"),
        "{run:?}"
    );

    let run = m.remote(&["deploy", "-f", "missing/compose.yml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("missing/compose.yml"), "{run:?}");

    let broken = m.write("b/compose.yml", "services:\n  web:\n    image: [nginx\n");
    for run in [
        m.remote(&["deploy", "-f", &broken]),
        m.local(&["deploy", "-f", &broken]),
    ] {
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains("line"), "the parser's line: {run:?}");
    }

    // 17 ids in 16 hex digits: two share a first character, an ambiguous prefix
    let mut ids = vec![a.clone()];
    for i in 3..=17 {
        ids.push(m.server.register(&format!("abc-{i}")).await.0);
    }
    let shared = ids
        .iter()
        .map(|id| &id[..1])
        .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() > 1)
        .unwrap();
    let run = m.remote(&["nodes", "get", shared]);
    assert_eq!(run.code, 1, "ambiguous: {run:?}");
    assert!(run.stderr.contains("several nodes"), "{run:?}");
    let run = m.remote(&["nodes", "get", &a[..8], "-o", "json"]).ok();
    assert_eq!(run.json()["name"], "abc-1");

    for args in [
        vec!["frobnicate"],
        vec!["ps", "--bogus"],
        vec!["-o", "xml", "ps"],
    ] {
        let run = m.remote(&args);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let compose = m.write("c/compose.yml", COMPOSE);
    let run = m.remote(&["deploy", "-f", &compose, "--memory", "lots"]);
    assert_eq!(run.code, 2, "{run:?}");

    let help = miaas(m.cwd(), &["--help"], &[], None).ok().stdout;
    assert!(
        help.contains("Exit codes") && help.contains("3  not found"),
        "{help}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_answer_suggests_how_to_pass_a_token() {
    use axum::http::StatusCode;
    use axum::{Json, Router, routing::get};
    let app = Router::new().route(
        "/api/v1/deployments",
        get(|| async {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"detail": "Not authenticated"})),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let run = miaas(
        dir.path(),
        &["ps"],
        &[("MIAAS_SERVER", &url), ("MIAAS_TOKEN", "t0k")],
        None,
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("Not authenticated"), "{run:?}");
    assert!(
        run.stderr.contains("--token") && run.stderr.contains("MIAAS_TOKEN"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_default_is_control_plane_db_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let compose = dir.path().join("compose.yml");
    std::fs::write(&compose, COMPOSE).unwrap();
    let run = miaas(
        dir.path(),
        &["deploy", "-f", "compose.yml", "--name", "here"],
        &[],
        None,
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(dir.path().join("control_plane.db").is_file());
    let listed = miaas(dir.path(), &["ps", "-o", "json"], &[], None)
        .ok()
        .json();
    assert_eq!(listed[0]["deployment_id"], "here");
    assert_eq!(listed[0]["status"], "pending");
}

#[test]
fn version_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let run = miaas(dir.path(), &["version"], &[], None).ok();
    assert_eq!(
        run.stdout.trim(),
        format!("miaas {}", env!("CARGO_PKG_VERSION"))
    );
    for shell in ["bash", "zsh", "fish"] {
        let run = miaas(dir.path(), &["completions", shell], &[], None).ok();
        assert!(
            run.stdout.contains("miaas") && run.stdout.contains("deploy"),
            "{shell}"
        );
    }
    assert_eq!(
        miaas(dir.path(), &["completions", "tcsh"], &[], None).code,
        2
    );
}

#[test]
fn a_man_page_from_the_command_definition() {
    let dir = tempfile::tempdir().unwrap();
    let page = miaas(dir.path(), &["man"], &[], None).ok().stdout;
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "roff: {page:.80}"
    );
    assert!(page.contains(".TH miaas 1"), "{page:.200}");
    for command in ["deploy", "nodes", "tokens", "completions"] {
        assert!(page.contains(command), "{command} in the page");
    }
    if let Ok(man) = std::process::Command::new("man")
        .arg("-l")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        let mut man = man;
        let _ = man
            .stdin
            .take()
            .map(|mut input| input.write_all(page.as_bytes()));
        let output = man.wait_with_output().unwrap();
        assert!(output.status.success(), "man reads it");
    }
}
