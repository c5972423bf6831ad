//! The desired state as a long-poll: `?wait=…&index=N` answers as soon as the
//! node's state differs from `N`, or after the wait with the same state; across
//! replicas on PostgreSQL too.

use std::time::{Duration, Instant};

use miaas_tests::{TestServer, deployment, postgres_replicas, send};
use serde_json::{Value, json};

async fn desired(server: &TestServer, node: &str, token: &str, query: &str) -> (u16, Value, u64) {
    let response = server
        .client
        .get(server.url(&format!("/api/v1/nodes/{node}/deployments{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-miaas-index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body, header)
}

/// A 20 s long-poll from `index`, in the background: its answer and how long it took.
fn poll_in_background(
    server: &TestServer,
    node: &str,
    token: &str,
    index: u64,
) -> tokio::task::JoinHandle<(Value, Duration)> {
    let request = server
        .client
        .get(server.url(&format!(
            "/api/v1/nodes/{node}/deployments?wait=20s&index={index}"
        )))
        .bearer_auth(token);
    tokio::spawn(async move {
        let started = Instant::now();
        let (_, body) = send(request).await;
        (body, started.elapsed())
    })
}

fn pinned(id: &str, node: &str) -> Value {
    let mut body = deployment(id);
    body["requirements"] = json!({"node": node});
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_when_the_state_changes_or_when_the_wait_ends() {
    let server = TestServer::spawn().await;
    let (node, token) = server.register("worker-01").await;
    let (status, first, header) = desired(&server, &node, &token, "").await;
    assert_eq!(status, 200, "{first}");
    let index = first["index"].as_u64().unwrap();
    assert_eq!(header, index, "the header carries the index");

    // nothing changes: the same state after the wait
    let (status, same, _) = desired(
        &server,
        &node,
        &token,
        &format!("?wait=300ms&index={index}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(same["index"], json!(index));

    // a deploy wakes a poll that would otherwise wait 20 s
    let poll = poll_in_background(&server, &node, &token, index);
    let (status, _) = server
        .post("/api/v1/deployments", &pinned("web", "worker-01"))
        .await;
    assert_eq!(status, 202);
    let (changed, took) = poll.await.unwrap();
    let changed_index = changed["index"].as_u64().unwrap();
    assert!(
        changed_index > index,
        "a change raises the index: {changed}"
    );
    assert_eq!(
        changed["deployments"][0]["deployment_id"], "web",
        "{changed}"
    );
    assert!(
        took < Duration::from_secs(20),
        "answered before the wait ended"
    );

    // an out-of-date index answers at once
    let (_, at_once, _) =
        desired(&server, &node, &token, &format!("?wait=20s&index={index}")).await;
    assert_eq!(at_once["deployments"][0]["deployment_id"], "web");

    // a zero wait is no wait: the state as it is
    let current = at_once["index"].as_u64().unwrap();
    let (status, now, _) = desired(
        &server,
        &node,
        &token,
        &format!("?wait=0ms&index={current}"),
    )
    .await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["index"], json!(current));

    let (status, error, _) = desired(&server, &node, &token, "?wait=soon&index=1").await;
    assert_eq!(status, 422, "{error}");
    let (status, error, _) = desired(&server, &node, &token, "?wait=1e300&index=1").await;
    assert_eq!(
        status, 422,
        "an absurd wait is refused, not a crash: {error}"
    );
    assert!(error["detail"].as_str().unwrap().contains("wait"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    no_postgres,
    ignore = "needs PostgreSQL: set MIAAS_TEST_POSTGRES_URL (bash .ci/start-postgres DIR PORT starts one)"
)]
async fn a_deploy_on_one_replica_wakes_a_poll_on_another() {
    let Some((a, b)) = postgres_replicas().await else {
        return;
    };
    let (node, token) = a.register("worker-01").await;
    let (_, first, _) = desired(&a, &node, &token, "").await;
    let index = first["index"].as_u64().unwrap();
    // the replica's listener is up once a first long-poll has run
    desired(&a, &node, &token, &format!("?wait=100ms&index={index}")).await;

    let poll = poll_in_background(&a, &node, &token, index);
    let (status, _) = b
        .post("/api/v1/deployments", &pinned("web", "worker-01"))
        .await;
    assert_eq!(status, 202);
    let (changed, took) = poll.await.unwrap();
    assert_eq!(
        changed["deployments"][0]["deployment_id"], "web",
        "{changed}"
    );
    // woken by the other replica's notification, not by the periodic look (5 s)
    assert!(took < Duration::from_secs(3), "took {took:?}");
}
