//! The event stream: a deploy followed to running and deletion with a real agent,
//! over SSE and NDJSON; resuming with `Last-Event-ID`; `410` past retention; who
//! sees the audit log; and (on PostgreSQL) an event committed on one replica
//! reaching a follower on another.

use std::time::Duration;

use miaas_tests::{AgentProcess, Lines, Sse, TestServer, deployment, postgres_replicas, send};
use serde_json::{Value, json};

const SECRET: &str = "hunter2-never-in-an-event";

fn with_secret(id: &str) -> Value {
    let mut body = deployment(id);
    body["env"] = json!({"PASSWORD": SECRET});
    body
}

/// Opens `GET path` as a stream (`accept`), as `token` when given.
async fn open(
    server: &TestServer,
    path: &str,
    accept: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = server.client.get(server.url(path)).header("accept", accept);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the stream opens");
    assert_eq!(response.status(), 200, "{path}");
    response
}

/// Reads events until one of `kind` about `subject` (returns all read).
async fn sse_until(stream: &mut Sse, kind: &str, subject: &str) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    loop {
        let event = stream.next_event().await.expect("the stream goes on");
        let json = event.json();
        let id = event.id.clone().expect("every event has an id");
        assert_eq!(id, json["cursor"].to_string(), "id: is the cursor");
        let done = json["type"] == kind && json["subject"] == subject;
        seen.push((id, json));
        if done {
            return seen;
        }
    }
}

async fn ndjson_until(lines: &mut Lines, kind: &str, subject: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let json = lines.next_json().await.expect("the stream goes on");
        let done = json["type"] == kind && json["subject"] == subject;
        seen.push(json);
        if done {
            return seen;
        }
    }
}

fn kinds_of<'a>(events: impl IntoIterator<Item = &'a Value>, subject: &str) -> Vec<String> {
    events
        .into_iter()
        .filter(|e| e["subject"] == subject)
        .map(|e| e["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn assert_increasing(cursors: &[u64]) {
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "cursors only grow: {cursors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_is_followed_to_running_and_deletion_over_sse_and_ndjson() {
    let server = TestServer::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    // both follow from now on: only new events
    let mut sse = Sse::new(open(&server, "/api/v1/events", "text/event-stream", None).await);
    let ndjson = open(
        &server,
        "/api/v1/events?topic=deployment:web",
        "application/x-ndjson",
        None,
    );
    let mut ndjson = Lines::new(ndjson.await);
    let _agent = AgentProcess::simulated(&server.base, &server.join_token, dir.path(), "a1");
    server
        .wait_for("/api/v1/nodes", |nodes| nodes[0]["name"] == "a1")
        .await;
    let (status, _) = server
        .post("/api/v1/deployments", &with_secret("web"))
        .await;
    assert_eq!(status, 202);
    server
        .wait_for("/api/v1/deployments/web", |d| d["status"] == "running")
        .await;
    let (status, _) = server.delete("/api/v1/deployments/web").await;
    assert_eq!(status, 200);

    let seen = sse_until(&mut sse, "deployment.deleted", "web").await;
    let events: Vec<&Value> = seen.iter().map(|(_, e)| e).collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "node.registered" && e["data"]["name"] == "a1")
    );
    assert_eq!(
        kinds_of(events.iter().copied(), "web"),
        [
            "deployment.accepted",
            "deployment.scheduled",
            "deployment.running",
            "deployment.deleting",
            "deployment.deleted"
        ]
    );
    let cursors: Vec<u64> = events
        .iter()
        .map(|e| e["cursor"].as_u64().unwrap())
        .collect();
    assert_increasing(&cursors);
    let running = events
        .iter()
        .find(|e| e["type"] == "deployment.running")
        .unwrap();
    assert!(
        running["actor"].as_str().unwrap().starts_with("node:"),
        "{running}"
    );
    let scheduled = events
        .iter()
        .find(|e| e["type"] == "deployment.scheduled")
        .unwrap();
    assert_eq!(scheduled["data"]["node_name"], "a1");
    assert!(scheduled["data"]["gpu_ids"].is_array());
    for (_, event) in &seen {
        assert!(!event.to_string().contains(SECRET), "a secret in {event}");
    }

    // NDJSON: the same events of that topic, with the same cursors
    let lines = ndjson_until(&mut ndjson, "deployment.deleted", "web").await;
    assert!(lines.iter().all(|e| e["topic"] == "deployment:web"));
    let from_sse: Vec<&Value> = events
        .iter()
        .copied()
        .filter(|e| e["subject"] == "web")
        .collect();
    assert_eq!(lines.iter().collect::<Vec<_>>(), from_sse);

    // reconnecting after `running`: strictly after it, never a repeat
    let resume = running["cursor"].to_string();
    let response = server
        .client
        .get(server.url("/api/v1/events?topic=deployment"))
        .header("last-event-id", &resume)
        .send()
        .await
        .unwrap();
    let mut resumed = Sse::new(response);
    let next = resumed.next_event().await.unwrap().json();
    assert_eq!(next["type"], "deployment.deleting");
    assert!(next["cursor"].as_u64() > running["cursor"].as_u64());

    // a page: the same events, and where to go on from
    let response = server
        .client
        .get(server.url("/api/v1/events?follow=false&topic=deployment:web&limit=2"))
        .send()
        .await
        .unwrap();
    let next_cursor = response.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_string();
    let page: Vec<Value> = response.json().await.unwrap();
    assert_eq!(
        kinds_of(&page, "web"),
        ["deployment.accepted", "deployment.scheduled"]
    );
    assert_eq!(next_cursor, page[1]["cursor"].to_string());
    let (_, rest) = server
        .get(&format!(
            "/api/v1/events?follow=false&topic=deployment:web&since={next_cursor}"
        ))
        .await;
    assert_eq!(
        kinds_of(rest.as_array().unwrap(), "web"),
        [
            "deployment.running",
            "deployment.deleting",
            "deployment.deleted"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_retention_a_cursor_is_gone_and_only_admins_see_the_audit_log() {
    let server = TestServer::spawn_with(|c| {
        c.auth = miaas_server::AuthMode::On;
        c.event_retention = 3;
        c.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let admin = server.admin_token().await;
    for name in ["u1", "u2", "u3", "u4"] {
        let (status, _) = server
            .post_as(
                &admin,
                "/api/v1/users",
                &json!({"username": name, "role": "viewer"}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let viewer = server.api_token("viewer").await;
    // retention runs in the background: wait until cursor 0 is gone
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let gone = loop {
        let (status, body) = server
            .get_as(&admin, "/api/v1/events?follow=false&since=0")
            .await;
        if status == 410 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(std::time::Instant::now() < deadline, "events never pruned");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let oldest = gone["oldest_cursor"].as_u64().expect("oldest_cursor");
    assert!(oldest > 0 && gone["detail"].is_string(), "{gone}");
    let path = format!("/api/v1/events?follow=false&since={oldest}");
    let (status, kept) = server.get_as(&admin, &path).await;
    assert_eq!(status, 200);
    let kept = kept.as_array().unwrap().clone();
    assert!(
        !kept.is_empty() && kept.len() <= 3 + 1,
        "retention keeps about 3: {kept:?}"
    );
    assert!(kept.iter().all(|e| e["cursor"].as_u64().unwrap() > oldest));
    let admin_kinds: Vec<&str> = kept.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(admin_kinds.contains(&"token.created"), "{admin_kinds:?}");
    // removing a token is in the audit log too
    let doomed = json!({"name": "doomed", "role": "viewer"});
    let (status, created) = server.post_as(&admin, "/api/v1/tokens", &doomed).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_string();
    let removed = send(
        server
            .client
            .delete(server.url(&format!("/api/v1/tokens/{id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(removed.0, 204);
    // events are stored just after the change: wait for it (the newest events stay
    // within the retention of 3)
    let path_after = "/api/v1/events?follow=false&type=token.removed";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, after) = server.get_as(&admin, path_after).await;
        if after[0]["subject"] == id.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no token.removed: {after}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        kept.iter().any(|e| e["actor"] == "user:admin"),
        "who did it: {kept:?}"
    );
    // a follower asking for a cursor retention removed is told so, not fed a gap
    let (status, _) = send(
        server
            .client
            .get(server.url("/api/v1/events?since=0"))
            .header("accept", "application/x-ndjson")
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 410);
    // viewers see node and deployment events, never the audit log
    let (status, seen) = server.get_as(&viewer, &path).await;
    assert_eq!(status, 200);
    assert_eq!(seen, json!([]), "a viewer sees no user or token events");
    let (status, _) = send(server.client.get(server.url("/api/v1/events"))).await;
    assert_eq!(status, 401);
    let (status, body) = server.get_as(&admin, "/api/v1/events?since=x").await;
    assert_eq!((status, body["detail"].is_string()), (422, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn an_event_committed_on_one_replica_reaches_a_follower_on_another() {
    let Some((a, b)) = postgres_replicas().await else {
        return;
    };
    let mut on_b = Lines::new(open(&b, "/api/v1/events", "application/x-ndjson", None).await);
    let (status, _) = a
        .post("/api/v1/nodes/register", &miaas_tests::registration("n1"))
        .await;
    assert_eq!(status, 201);
    let (status, _) = a.post("/api/v1/deployments", &with_secret("web")).await;
    assert_eq!(status, 202);
    let seen = ndjson_until(&mut on_b, "deployment.scheduled", "web").await;
    let kinds: Vec<&str> = seen.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "node.registered",
            "deployment.accepted",
            "deployment.scheduled"
        ]
    );
    // the same cursors on both replicas
    let (_, from_a) = a.get("/api/v1/events?follow=false").await;
    let cursors = |events: &[Value]| -> Vec<u64> {
        events
            .iter()
            .map(|e| e["cursor"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(cursors(from_a.as_array().unwrap()), cursors(&seen));
    assert_increasing(&cursors(&seen));
}
