//! `miaas events` and `miaas logs`, the real binary against a real server (and,
//! for events, on a local database too).

use miaas_tests::{TestServer, deployment, miaas, running_on_an_agent};
use serde_json::Value;

const COMPOSE: &str = "services:\n  web:\n    image: nginx:1.27\n";

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_listed_on_a_local_database_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("compose.yml"), COMPOSE).unwrap();
    let local = |args: &[&str]| miaas(dir.path(), args, &[], None);
    local(&["deploy", "-f", "compose.yml", "--name", "shop"]).ok();
    local(&["users", "create", "vera", "--role", "viewer"]).ok();
    let all = json_lines(&local(&["events", "-o", "json"]).ok().stdout);
    let kinds: Vec<&str> = all.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["deployment.accepted", "deployment.pending", "user.created"]
    );
    assert!(all.iter().all(|e| e["actor"] == "console"), "{all:?}");
    let filtered = local(&["events", "--type", "user", "-o", "json"]).ok();
    assert_eq!(json_lines(&filtered.stdout).len(), 1);
    let since = all[1]["cursor"].to_string();
    let after = json_lines(
        &local(&["events", "--since", &since, "-o", "json"])
            .ok()
            .stdout,
    );
    assert_eq!(after, all[2..]);
    let table = local(&["events", "--topic", "deployment:shop"]).ok().stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains("deployment.accepted") && rows[0].contains("shop"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_events_come_from_the_server() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = running_on_an_agent(&server, dir.path(), "a1", "web").await;
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", server.base.as_str()];
        all.extend_from_slice(args);
        miaas(dir.path(), &all, &[], None)
    };
    let logs = remote(&["logs", "web", "--tail", "2"]).ok();
    assert_eq!(
        logs.stdout.lines().collect::<Vec<_>>(),
        [
            "app | simulated line 1 of web",
            "app | simulated line 2 of web"
        ]
    );
    let json = remote(&["logs", "web", "--tail", "1", "-o", "json"]).ok();
    let lines = json_lines(&json.stdout);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["line"], "simulated line 1 of web");
    let missing = remote(&["logs", "nope"]);
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(missing.stderr.contains("not found"), "{missing:?}");
    // events are stored just after their change: wait until the last one is
    server
        .wait_for("/api/v1/events?follow=false&type=deployment.running", |e| {
            e.as_array().is_some_and(|e| !e.is_empty())
        })
        .await;
    let events = remote(&["events", "--topic", "deployment:web", "-o", "json"]).ok();
    let kinds: Vec<String> = json_lines(&events.stdout)
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "deployment.accepted",
            "deployment.scheduled",
            "deployment.running"
        ]
    );
    let local = miaas(dir.path(), &["logs", "web"], &[], None);
    assert_eq!(local.code, 2, "logs need a server: {local:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_watch_prints_the_list_again_at_each_change() {
    use std::io::{BufRead, BufReader};
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let mut watch = std::process::Command::new(miaas_tests::binary("miaas"))
        .args(["--server", &server.base, "ps", "--watch"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let stderr = BufReader::new(watch.stderr.take().unwrap());
    let said = stderr
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("no deployments"));
    assert!(said.is_some(), "the first, empty list");
    let next_row_with = |word: &str| loop {
        let line = seen
            .recv_timeout(miaas_tests::STREAM_PATIENCE)
            .unwrap_or_else(|_| panic!("no row with {word}"));
        if line.contains(word) {
            return line;
        }
    };
    // it follows from before its first list: each change prints the list again
    for id in ["first", "second"] {
        let (status, _) = server.post("/api/v1/deployments", &deployment(id)).await;
        assert_eq!(status, 202);
        let row = next_row_with(id);
        assert!(row.contains("pending"), "{row}");
    }
    let _ = watch.kill();
    let _ = watch.wait();
}
