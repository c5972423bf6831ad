//! The service's rules over a real store, with a clock the test moves. Each test
//! runs against every backend in `common::backend_urls`.

mod common;

use std::sync::Arc;

use common::{T0, beat, fixture_on, fixtures, registration, request};
use miaas_core::Error;
use miaas_core::access::Principal;
use miaas_core::clock::ManualClock;
use miaas_core::model::{DeploymentAction, DeploymentStatus, NodeStatus};
use miaas_core::service::{Service, ServiceSettings};

#[tokio::test]
async fn reregistration_keeps_the_id_and_invalidates_the_old_token() {
    for f in fixtures().await {
        let first = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        f.clock.advance(5.0);
        let second = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        assert_eq!(first.node_id, second.node_id, "{}", f.url);
        assert_ne!(first.node_token, second.node_token);
        let old = f
            .service
            .authenticate_node(&first.node_id, Some(&first.node_token))
            .await;
        assert!(matches!(old, Err(Error::Unauthorized(_))), "{old:?}");
        f.service
            .authenticate_node(&second.node_id, Some(&second.node_token))
            .await
            .unwrap();
        let node = f.service.get_node(&first.node_id).await.unwrap();
        assert_eq!(node.registered_at, T0, "first registration time is kept");
        assert_eq!(
            node.last_seen,
            T0 + 5.0,
            "re-registration counts as being seen"
        );
    }
}

#[tokio::test]
async fn node_authentication_distinguishes_missing_invalid_foreign_and_unknown() {
    for f in fixtures().await {
        let a = f
            .service
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        let b = f
            .service
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        let s = &f.service;
        assert!(matches!(
            s.authenticate_node(&a.node_id, None).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            s.authenticate_node(&a.node_id, Some("bogus")).await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            s.authenticate_node(&a.node_id, Some(&b.node_token)).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            s.authenticate_node("nope", Some(&b.node_token)).await,
            Err(Error::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn status_follows_last_seen_and_the_heartbeat_timeout() {
    for f in fixtures().await {
        let creds = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n"))
            .await
            .unwrap();
        let status = || async { f.service.get_node(&creds.node_id).await.unwrap().status };
        assert_eq!(status().await, NodeStatus::Online);
        f.clock.advance(30.0);
        assert_eq!(status().await, NodeStatus::Online, "exactly at the timeout");
        f.clock.advance(0.5);
        assert_eq!(status().await, NodeStatus::Offline);

        let ack = f
            .service
            .heartbeat(&creds.node_id, Some(&creds.node_token), beat(12.5))
            .await
            .unwrap();
        assert_eq!(ack.timestamp, T0 + 30.5);
        let node = f.service.get_node(&creds.node_id).await.unwrap();
        assert_eq!(node.status, NodeStatus::Online);
        assert_eq!(node.last_seen, T0 + 30.5);
        let metrics = node.metrics.unwrap();
        assert_eq!(metrics.cpu_usage, 12.5);
        assert_eq!(metrics.running_containers, vec!["web".to_string()]);
    }
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_written() {
    for f in fixtures().await {
        let mut bad = registration("n");
        bad.ip = "300.0.0.1".into();
        assert!(matches!(
            f.service
                .register_node(&Principal::Unrestricted, &bad)
                .await,
            Err(Error::Invalid(_))
        ));
        assert!(f.service.list_nodes().await.unwrap().is_empty());

        let creds = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n"))
            .await
            .unwrap();
        let refused = f
            .service
            .heartbeat(&creds.node_id, Some(&creds.node_token), beat(250.0))
            .await;
        assert!(matches!(refused, Err(Error::Invalid(_))));
        let node = f.service.get_node(&creds.node_id).await.unwrap();
        assert!(node.metrics.is_none());

        let mut empty = request("d", "nginx");
        empty.rendered_compose = Some("  ".into());
        assert!(matches!(
            f.service
                .submit_deployment(&Principal::Unrestricted, &empty)
                .await,
            Err(Error::Invalid(_))
        ));
        assert!(
            f.service
                .list_deployments(&Principal::Unrestricted)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn deployments_are_created_revised_and_marked_for_deletion() {
    for f in fixtures().await {
        let s = &f.service;
        s.submit_deployment(&Principal::Unrestricted, &request("d", "nginx:1"))
            .await
            .unwrap();
        let created = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(created.status, DeploymentStatus::Pending);
        assert_eq!(created.revision, 1);
        assert_eq!(created.created_at, T0);

        f.clock.advance(1.0);
        let same = s
            .submit_deployment(&Principal::Unrestricted, &request("d", "nginx:1"))
            .await
            .unwrap();
        assert!(same.message.contains("unchanged"), "{}", same.message);
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap(),
            created
        );

        s.submit_deployment(&Principal::Unrestricted, &request("d", "nginx:2"))
            .await
            .unwrap();
        let revised = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(revised.revision, 2);
        assert_eq!(revised.updated_at, T0 + 1.0);
        assert_eq!(revised.created_at, T0);

        // a node appears: the pending deployment is placed on it
        let node = s
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        let placed = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(placed.status, DeploymentStatus::Scheduled);
        assert_eq!(placed.node_id.as_deref(), Some(node.node_id.as_str()));

        let ack = s
            .delete_deployment(&Principal::Unrestricted, "d")
            .await
            .unwrap();
        assert_eq!(ack.status, "deleting");
        let deleting = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(deleting.status, DeploymentStatus::Deleting);
        assert_eq!(deleting.action, DeploymentAction::Remove);
        assert!(matches!(
            s.delete_deployment(&Principal::Unrestricted, "nope").await,
            Err(Error::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn concurrent_applies_to_one_deployment_serialize() {
    for f in fixtures().await {
        f.service
            .submit_deployment(&Principal::Unrestricted, &request("d", "v0"))
            .await
            .unwrap();
        let tasks: Vec<_> = (1..=40)
            .map(|i| {
                let service = f.service.clone();
                tokio::spawn(async move {
                    service
                        .submit_deployment(
                            &Principal::Unrestricted,
                            &request("d", &format!("v{i}")),
                        )
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // every apply changed the spec, so none may be lost: 1 + 40 revisions
        let revision = f
            .service
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap()
            .revision;
        assert_eq!(revision, 41);
    }
}

#[tokio::test]
async fn data_survives_reopening_the_database() {
    for f in fixtures().await {
        let creds = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n"))
            .await
            .unwrap();
        f.service
            .submit_deployment(&Principal::Unrestricted, &request("d", "nginx"))
            .await
            .unwrap();
        let nodes = f.service.list_nodes().await.unwrap();
        let deployments = f
            .service
            .list_deployments(&Principal::Unrestricted)
            .await
            .unwrap();
        f.service.close().await;

        let reopened = fixture_on(f.url.clone(), f.dir.clone()).await;
        assert_eq!(reopened.service.list_nodes().await.unwrap(), nodes);
        assert_eq!(
            reopened
                .service
                .list_deployments(&Principal::Unrestricted)
                .await
                .unwrap(),
            deployments
        );
        reopened
            .service
            .authenticate_node(&creds.node_id, Some(&creds.node_token))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_in_memory_store_works_for_library_users() {
    let store = miaas_core::store::connect("sqlite::memory:").await.unwrap();
    let service = Service::new(store, ServiceSettings::default());
    let creds = service
        .register_node(&Principal::Unrestricted, &registration("m"))
        .await
        .unwrap();
    assert_eq!(service.list_nodes().await.unwrap()[0].id, creds.node_id);
}

#[tokio::test]
async fn two_stores_on_one_database_see_each_others_writes() {
    // a server and `miaas` in local mode on the same file: each placement decision
    // must see what the other committed, whatever either keeps in memory
    for f in fixtures().await {
        let other = fixture_on(f.url.clone(), f.dir.clone()).await;
        f.service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        let mut big = request("first", "nginx");
        big.requirements = Some(serde_json::from_value(serde_json::json!({"cpus": 3})).unwrap());
        let first = f
            .service
            .submit_deployment(&Principal::Unrestricted, &big)
            .await
            .unwrap();
        assert_eq!(first.status, "accepted");
        // the other store places on the same node: only 1 CPU is left
        big.deployment_id = "second".into();
        other
            .service
            .submit_deployment(&Principal::Unrestricted, &big)
            .await
            .unwrap();
        let second = other
            .service
            .get_deployment(&Principal::Unrestricted, "second", true)
            .await
            .unwrap();
        assert_eq!(second.status.as_str(), "pending", "{second:?}");
        // a node registered through the other store takes "second" there; the first
        // store's next decisions see both the node and what "second" reserves on it
        other
            .service
            .register_node(&Principal::Unrestricted, &registration("n2"))
            .await
            .unwrap();
        let pinned = |id: &str, cpus: f64| {
            let mut r = request(id, "nginx");
            r.requirements = Some(
                serde_json::from_value(serde_json::json!({"cpus": cpus, "node": "n2"})).unwrap(),
            );
            r
        };
        f.service
            .submit_deployment(&Principal::Unrestricted, &pinned("third", 1.0))
            .await
            .unwrap();
        let third = f
            .service
            .get_deployment(&Principal::Unrestricted, "third", true)
            .await
            .unwrap();
        assert!(third.node_id.is_some(), "n2 is known: {third:?}");
        f.service
            .submit_deployment(&Principal::Unrestricted, &pinned("fourth", 1.0))
            .await
            .unwrap();
        let fourth = f
            .service
            .get_deployment(&Principal::Unrestricted, "fourth", true)
            .await
            .unwrap();
        assert_eq!(fourth.status.as_str(), "pending", "n2 is full: {fourth:?}");
        let listed = f
            .service
            .list_deployments(&Principal::Unrestricted)
            .await
            .unwrap();
        assert_eq!(listed.len(), 4);
    }
}

fn report(status: &str) -> miaas_core::model::StatusReport {
    serde_json::from_value(serde_json::json!({ "status": status })).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_from_memory_see_what_another_process_committed_at_once() {
    // a server (reads answered from memory) and `miaas` in local mode on one file
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("core.db").display());
    let store = miaas_core::store::connect(&url).await.unwrap();
    let server = Service::with_clock(
        store,
        Arc::new(ManualClock::new(T0)),
        ServiceSettings::default(),
    );
    let local = fixture_on(url, dir.clone()).await;
    let n1 = server
        .register_node(&Principal::Unrestricted, &registration("n1"))
        .await
        .unwrap();
    server
        .submit_deployment(&Principal::Unrestricted, &request("d1", "nginx"))
        .await
        .unwrap();
    for _ in 0..3 {
        // warm: the server's reads come from memory
        assert_eq!(
            server.get_node(&n1.node_id).await.unwrap().deployments,
            ["d1"]
        );
    }
    local
        .service
        .register_node(&Principal::Unrestricted, &registration("n2"))
        .await
        .unwrap();
    local
        .service
        .delete_deployment(&Principal::Unrestricted, "d1")
        .await
        .unwrap();
    let names: Vec<String> = (server.list_nodes().await.unwrap())
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, ["n1", "n2"]);
    let d1 = server
        .get_deployment(&Principal::Unrestricted, "d1", true)
        .await
        .unwrap();
    assert_eq!(d1.status, DeploymentStatus::Deleting);
    local
        .service
        .report_status(
            &Principal::Unrestricted,
            Some(&n1.node_token),
            "d1",
            &report("deleted"),
        )
        .await
        .unwrap();
    assert!(
        server
            .get_node(&n1.node_id)
            .await
            .unwrap()
            .deployments
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_credentials_follow_another_processs_changes_at_once() {
    // a server remembers tokens; `miaas` in local mode revokes them on the same file
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("core.db").display());
    let server = fixture_on(url.clone(), dir.clone()).await.service;
    let local = fixture_on(url, dir.clone()).await.service;
    let node = server
        .register_node(&Principal::Unrestricted, &registration("n1"))
        .await
        .unwrap();
    let request: miaas_core::model::TokenRequest =
        serde_json::from_value(serde_json::json!({"name": "ci", "role": "operator"})).unwrap();
    let api = server
        .create_api_token(&Principal::Unrestricted, &request)
        .await
        .unwrap();
    let join = server.join_token().await.unwrap().join_token;
    for _ in 0..2 {
        // remembered after the first use
        server
            .heartbeat(&node.node_id, Some(&node.node_token), beat(1.0))
            .await
            .unwrap();
        server.authenticate(Some(&api.token)).await.unwrap();
        server.authenticate(Some(&join)).await.unwrap();
    }
    local
        .deregister_node(&Principal::Unrestricted, &node.node_id)
        .await
        .unwrap();
    local
        .revoke_api_token(&Principal::Unrestricted, &api.info.id)
        .await
        .unwrap();
    local
        .rotate_join_token(&Principal::Unrestricted)
        .await
        .unwrap();
    let beat_after = server
        .heartbeat(&node.node_id, Some(&node.node_token), beat(1.0))
        .await;
    assert!(
        matches!(beat_after, Err(Error::Unauthorized(_))),
        "{beat_after:?}"
    );
    let api_after = server.authenticate(Some(&api.token)).await;
    assert!(matches!(api_after, Err(Error::Expired(_))), "{api_after:?}");
    let join_after = server.authenticate(Some(&join)).await;
    assert!(
        matches!(join_after, Err(Error::Unauthorized(_))),
        "{join_after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_all_commit_and_share_ids_by_name() {
    for f in fixtures().await {
        let mut tasks = Vec::new();
        for i in 0..60 {
            let service = f.service.clone();
            // every third name twice: both registrations land on one node
            let name = format!("node-{}", i % 40);
            tasks.push(tokio::spawn(async move {
                service
                    .register_node(&Principal::Unrestricted, &registration(&name))
                    .await
            }));
        }
        let mut by_name = std::collections::HashMap::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let creds = task.await.unwrap().unwrap();
            let previous = by_name.insert(format!("node-{}", i % 40), creds.node_id.clone());
            if let Some(previous) = previous {
                assert_eq!(previous, creds.node_id, "one id per name");
            }
        }
        let nodes = f.service.list_nodes().await.unwrap();
        assert_eq!(nodes.len(), 40);
        for node in &nodes {
            assert_eq!(by_name.get(&node.name), Some(&node.id));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_sharing_commits_never_overbook_and_all_get_answers() {
    for f in fixtures().await {
        f.service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let service = f.service.clone();
            tasks.push(tokio::spawn(async move {
                let mut r = request(&format!("d{}", i % 45), "nginx");
                r.requirements =
                    Some(serde_json::from_value(serde_json::json!({"cpus": 1})).unwrap());
                service
                    .submit_deployment(&Principal::Unrestricted, &r)
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().status, "accepted");
        }
        let deployments = f
            .service
            .list_deployments(&Principal::Unrestricted)
            .await
            .unwrap();
        assert_eq!(deployments.len(), 45, "same ids are one deployment");
        let placed = deployments.iter().filter(|d| d.node_id.is_some()).count();
        assert_eq!(
            placed, 4,
            "a 4-CPU node takes exactly four 1-CPU deployments"
        );
        assert!(deployments.iter().all(|d| d.revision == 1));
        let node = &f.service.list_nodes().await.unwrap()[0];
        assert_eq!(node.reserved.cpus, 4.0);
    }
}

#[tokio::test]
async fn placement_sees_registrations_made_after_its_last_decision() {
    for f in fixtures().await {
        let cpus = |id: &str, n: f64| {
            let mut r = request(id, "nginx");
            r.requirements = Some(serde_json::from_value(serde_json::json!({"cpus": n})).unwrap());
            r
        };
        f.service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        f.service
            .submit_deployment(&Principal::Unrestricted, &cpus("d1", 4.0))
            .await
            .unwrap();
        // a new node, then a bigger n1: each decision after sees them
        f.service
            .register_node(&Principal::Unrestricted, &registration("n2"))
            .await
            .unwrap();
        f.service
            .submit_deployment(&Principal::Unrestricted, &cpus("d2", 4.0))
            .await
            .unwrap();
        let mut bigger = registration("n1");
        bigger.capabilities.cpu_count = 8;
        f.service
            .register_node(&Principal::Unrestricted, &bigger)
            .await
            .unwrap();
        f.service
            .submit_deployment(&Principal::Unrestricted, &cpus("d3", 4.0))
            .await
            .unwrap();
        for id in ["d1", "d2", "d3"] {
            let d = f
                .service
                .get_deployment(&Principal::Unrestricted, id, true)
                .await
                .unwrap();
            assert!(d.node_id.is_some(), "{id} placed: {d:?}");
        }
        let nodes = f.service.list_nodes().await.unwrap();
        let reserved: Vec<f64> = nodes.iter().map(|n| n.reserved.cpus).collect();
        assert_eq!(reserved, [8.0, 4.0], "n1 took d1 and d3, n2 took d2");
    }
}
