//! The deployment lifecycle over a real store with a clock the test moves: placement,
//! GPUs, lost and re-placed deployments, drain, deregistration, the node's protocol.

mod common;

use std::time::Duration;

use common::{beat, fixtures_with, registration, request};
use miaas_core::Error;
use miaas_core::access::Principal;
use miaas_core::model::{
    DeploymentStatus, NodeRegistration, NodeUpdate, ReportedStatus, Requirements, StatusReport,
};
use miaas_core::service::{NodeCredentials, Service, ServiceSettings};
use serde_json::json;

fn settings() -> ServiceSettings {
    ServiceSettings {
        reschedule_grace: Duration::from_secs(60),
        ..ServiceSettings::default()
    }
}

fn gpu_registration(name: &str, gpus: u32) -> NodeRegistration {
    let gpus: Vec<_> = (0..gpus)
        .map(|id| json!({"id": id, "model": "A100", "mem_mb": 80_000}))
        .collect();
    serde_json::from_value(json!({
        "name": name, "ip": "10.0.0.2",
        "capabilities": {"os": "linux", "cpu_count": 32, "mem_mb": 256_000, "disk_mb": 1_000_000,
                         "gpus": gpus, "docker": {"version": "24.0.0", "available": true}}
    }))
    .unwrap()
}

fn needing(id: &str, requirements: serde_json::Value) -> miaas_core::model::DeploymentRequest {
    let mut r = request(id, "app");
    r.requirements = Some(serde_json::from_value::<Requirements>(requirements).unwrap());
    r
}

async fn report(
    s: &Service,
    node: &NodeCredentials,
    id: &str,
    status: ReportedStatus,
) -> Result<(), Error> {
    let report = StatusReport {
        status,
        message: None,
        health: None,
        restarts: None,
    };
    s.report_status(
        &Principal::Unrestricted,
        Some(&node.node_token),
        id,
        &report,
    )
    .await
    .map(|_| ())
}

#[tokio::test]
async fn deployments_are_placed_with_the_original_message_and_gpus_are_never_shared() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let node = s
            .register_node(&Principal::Unrestricted, &gpu_registration("g1", 3))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &needing("a", json!({"gpus": 2})))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &needing("b", json!({"gpus": 2})))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &needing("c", json!({"gpus": 1})))
            .await
            .unwrap();
        let a = s
            .get_deployment(&Principal::Unrestricted, "a", true)
            .await
            .unwrap();
        assert_eq!(a.status, DeploymentStatus::Scheduled);
        assert_eq!(
            a.message,
            format!("Deployment 'web' on node {}", node.node_id)
        );
        assert_eq!(a.gpu_ids, vec![0, 1]);
        let b = s
            .get_deployment(&Principal::Unrestricted, "b", true)
            .await
            .unwrap();
        assert_eq!(b.status, DeploymentStatus::Pending);
        assert!(b.node_id.is_none());
        let summary = b.placement.unwrap();
        assert_eq!(summary.reasons["insufficient_gpus"], 1);
        assert!(
            b.message.contains("'web'") && b.message.contains("GPU"),
            "{}",
            b.message
        );
        let c = s
            .get_deployment(&Principal::Unrestricted, "c", true)
            .await
            .unwrap();
        assert_eq!(c.gpu_ids, vec![2]);

        let shown = s.get_node(&node.node_id).await.unwrap();
        assert_eq!(shown.reserved.gpu_ids, vec![0, 1, 2]);
        assert_eq!(shown.free.gpus, 0);
        assert_eq!(shown.deployments, vec!["a".to_string(), "c".to_string()]);

        // deleting `a` frees its GPUs once the node confirms; `b` then fits
        s.delete_deployment(&Principal::Unrestricted, "a")
            .await
            .unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "b", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Pending
        );
        report(s, &node, "a", ReportedStatus::Deleted)
            .await
            .unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "a", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Deleted
        );
        let b = s
            .get_deployment(&Principal::Unrestricted, "b", true)
            .await
            .unwrap();
        assert_eq!(b.status, DeploymentStatus::Scheduled);
        assert_eq!(b.gpu_ids, vec![0, 1]);
    }
}

#[tokio::test]
async fn requirements_come_from_the_compose_document() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        s.register_node(&Principal::Unrestricted, &gpu_registration("g1", 1))
            .await
            .unwrap();
        let mut r = request("c", "x");
        r.rendered_compose = Some("services:\n  t:\n    image: t\n    deploy:\n      replicas: 2\n      resources:\n        reservations:\n          cpus: '1.5'\n          memory: 2G\n          devices:\n            - capabilities: [gpu]\n              count: 1\n".into());
        s.submit_deployment(&Principal::Unrestricted, &r)
            .await
            .unwrap();
        let d = s
            .get_deployment(&Principal::Unrestricted, "c", true)
            .await
            .unwrap();
        assert_eq!(d.requirements.cpus, 3.0);
        assert_eq!(d.requirements.mem_mb, 4096);
        assert_eq!(d.requirements.gpus, 2);
        assert_eq!(
            d.status,
            DeploymentStatus::Pending,
            "one GPU cannot hold two"
        );

        let mut bad = request("bad", "x");
        bad.rendered_compose = Some("services: [oops".into());
        assert!(matches!(
            s.submit_deployment(&Principal::Unrestricted, &bad).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            s.get_deployment(&Principal::Unrestricted, "bad", true)
                .await,
            Err(Error::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn an_offline_node_loses_its_deployments_which_move_after_the_grace() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("d", "nginx"))
            .await
            .unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .node_id
                .as_deref(),
            Some(a.node_id.as_str())
        );
        f.clock.advance(10.0);
        let b = s
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();

        // a stops heartbeating; b keeps going
        f.clock.advance(25.0);
        s.heartbeat(&b.node_id, Some(&b.node_token), beat(1.0))
            .await
            .unwrap();
        s.reconcile().await.unwrap();
        let lost = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(lost.status, DeploymentStatus::Lost);
        assert_eq!(lost.node_id.as_deref(), Some(a.node_id.as_str()));

        // within the grace nothing moves
        f.clock.advance(30.0);
        s.heartbeat(&b.node_id, Some(&b.node_token), beat(1.0))
            .await
            .unwrap();
        s.reconcile().await.unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Lost
        );

        // after it, the deployment is placed on b, and a is told to remove its copy
        f.clock.advance(31.0);
        s.heartbeat(&b.node_id, Some(&b.node_token), beat(1.0))
            .await
            .unwrap();
        s.reconcile().await.unwrap();
        let moved = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(moved.status, DeploymentStatus::Scheduled);
        assert_eq!(moved.node_id.as_deref(), Some(b.node_id.as_str()));
        assert_eq!(moved.previous_node_id.as_deref(), Some(a.node_id.as_str()));

        s.heartbeat(&a.node_id, Some(&a.node_token), beat(1.0))
            .await
            .unwrap();
        let desired = s
            .desired_state(&a.node_id, Some(&a.node_token))
            .await
            .unwrap();
        assert!(desired.deployments.is_empty());
        assert_eq!(desired.remove.len(), 1);
        assert_eq!(desired.remove[0].reason, "moved");
        report(s, &a, "d", ReportedStatus::Deleted).await.unwrap();
        let desired = s
            .desired_state(&a.node_id, Some(&a.node_token))
            .await
            .unwrap();
        assert!(desired.remove.is_empty());
        let on_b = s
            .desired_state(&b.node_id, Some(&b.node_token))
            .await
            .unwrap();
        assert_eq!(on_b.deployments[0].deployment_id, "d");
    }
}

#[tokio::test]
async fn a_node_back_within_the_grace_keeps_its_deployments() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("d", "nginx"))
            .await
            .unwrap();
        f.clock.advance(31.0);
        s.reconcile().await.unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Lost
        );
        s.heartbeat(&a.node_id, Some(&a.node_token), beat(1.0))
            .await
            .unwrap();
        let back = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(back.status, DeploymentStatus::Scheduled);
        assert_eq!(back.node_id.as_deref(), Some(a.node_id.as_str()));
    }
}

#[tokio::test]
async fn rescheduling_can_be_turned_off() {
    let off = ServiceSettings {
        reschedule_lost: false,
        reschedule_grace: Duration::ZERO,
        ..settings()
    };
    for f in fixtures_with(off).await {
        let s = &f.service;
        s.register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("d", "nginx"))
            .await
            .unwrap();
        f.clock.advance(31.0);
        let b = s
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        s.heartbeat(&b.node_id, Some(&b.node_token), beat(1.0))
            .await
            .unwrap();
        s.reconcile().await.unwrap();
        s.reconcile().await.unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Lost
        );
    }
}

#[tokio::test]
async fn cordon_drain_uncordon_and_tags_steer_placement() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        let b = s
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        let cordon = NodeUpdate {
            schedulable: Some(false),
            tags: None,
        };
        s.update_node(&Principal::Unrestricted, &a.node_id, &cordon)
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("d1", "x"))
            .await
            .unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d1", true)
                .await
                .unwrap()
                .node_id
                .as_deref(),
            Some(b.node_id.as_str())
        );

        let uncordon = NodeUpdate {
            schedulable: Some(true),
            tags: None,
        };
        assert!(
            s.update_node(&Principal::Unrestricted, &a.node_id, &uncordon)
                .await
                .unwrap()
                .schedulable
        );
        let report = s
            .drain_node(&Principal::Unrestricted, &b.node_id)
            .await
            .unwrap();
        assert_eq!(report.moved.len(), 1);
        assert_eq!(report.moved[0].node_id, a.node_id);
        assert!(!s.get_node(&b.node_id).await.unwrap().schedulable);
        let removal = s
            .desired_state(&b.node_id, Some(&b.node_token))
            .await
            .unwrap();
        assert_eq!(removal.remove[0].deployment_id, "d1");

        s.submit_deployment(
            &Principal::Unrestricted,
            &needing("eu", json!({"tags": ["zone=eu"]})),
        )
        .await
        .unwrap();
        let pending = s
            .get_deployment(&Principal::Unrestricted, "eu", true)
            .await
            .unwrap();
        assert_eq!(pending.status, DeploymentStatus::Pending);
        assert_eq!(pending.placement.unwrap().reasons["missing_tags"], 1);
        let tags = NodeUpdate {
            schedulable: None,
            tags: Some(vec!["zone=eu".into()]),
        };
        s.update_node(&Principal::Unrestricted, &a.node_id, &tags)
            .await
            .unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "eu", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Scheduled
        );
    }
}

#[tokio::test]
async fn deregistering_a_node_reschedules_its_work_and_revokes_its_token() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        s.submit_deployment(
            &Principal::Unrestricted,
            &needing("pinned", json!({"node": "a"})),
        )
        .await
        .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("free", "x"))
            .await
            .unwrap();
        let b = s
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        let report = s
            .deregister_node(&Principal::Unrestricted, &a.node_id)
            .await
            .unwrap();
        assert_eq!(report.pending, vec!["pinned".to_string()]);
        assert_eq!(report.moved[0].node_id, b.node_id);
        assert!(matches!(
            s.get_node(&a.node_id).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            s.authenticate_node(&a.node_id, Some(&a.node_token)).await,
            Err(Error::Unauthorized(_))
        ));
        let pinned = s
            .get_deployment(&Principal::Unrestricted, "pinned", true)
            .await
            .unwrap();
        assert_eq!(pinned.status, DeploymentStatus::Pending);
        assert!(pinned.node_id.is_none());
    }
}

#[tokio::test]
async fn only_the_deployments_node_may_report_and_reports_follow_the_lifecycle() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        let b = s
            .register_node(&Principal::Unrestricted, &registration("b"))
            .await
            .unwrap();
        s.submit_deployment(
            &Principal::Unrestricted,
            &needing("d", json!({"node": "a"})),
        )
        .await
        .unwrap();
        let none = StatusReport {
            status: ReportedStatus::Running,
            message: None,
            health: None,
            restarts: None,
        };
        assert!(matches!(
            s.report_status(&Principal::Unrestricted, None, "d", &none)
                .await,
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            report(s, &b, "d", ReportedStatus::Running).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            report(s, &a, "nope", ReportedStatus::Running).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            report(s, &a, "d", ReportedStatus::Deleted).await,
            Err(Error::Conflict(_))
        ));
        report(s, &a, "d", ReportedStatus::Running).await.unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Running
        );
        report(s, &a, "d", ReportedStatus::Failed).await.unwrap();
        assert_eq!(
            s.get_deployment(&Principal::Unrestricted, "d", true)
                .await
                .unwrap()
                .status,
            DeploymentStatus::Failed
        );

        let desired = s
            .desired_state(&a.node_id, Some(&a.node_token))
            .await
            .unwrap();
        assert_eq!(desired.deployments.len(), 1);
        assert_eq!(desired.deployments[0].revision, 1);
        assert!(matches!(
            s.desired_state(&a.node_id, Some(&b.node_token)).await,
            Err(Error::Forbidden(_))
        ));
    }
}

#[tokio::test]
async fn an_update_keeps_its_node_unless_its_requirements_change() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let small = s
            .register_node(&Principal::Unrestricted, &registration("small"))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &needing("d", json!({"cpus": 1})))
            .await
            .unwrap();
        let big = s
            .register_node(&Principal::Unrestricted, &gpu_registration("big", 1))
            .await
            .unwrap();
        let mut new_image = needing("d", json!({"cpus": 1}));
        new_image.rendered_compose = Some("services:\n  web:\n    image: nginx:2\n".into());
        s.submit_deployment(&Principal::Unrestricted, &new_image)
            .await
            .unwrap();
        let kept = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(kept.revision, 2);
        assert_eq!(kept.node_id.as_deref(), Some(small.node_id.as_str()));

        let mut bigger = needing("d", json!({"cpus": 16}));
        bigger.rendered_compose = new_image.rendered_compose.clone();
        s.submit_deployment(&Principal::Unrestricted, &bigger)
            .await
            .unwrap();
        let moved = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(moved.revision, 3);
        assert_eq!(moved.node_id.as_deref(), Some(big.node_id.as_str()));
        assert_eq!(
            moved.previous_node_id.as_deref(),
            Some(small.node_id.as_str())
        );
        assert_eq!(s.get_node(&small.node_id).await.unwrap().reserved.cpus, 0.0);
    }
}

#[tokio::test]
async fn a_deployment_placed_back_on_its_old_node_is_not_also_removed_there() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        let a = s
            .register_node(&Principal::Unrestricted, &registration("a"))
            .await
            .unwrap();
        s.submit_deployment(&Principal::Unrestricted, &request("d", "x"))
            .await
            .unwrap();
        let report = s
            .drain_node(&Principal::Unrestricted, &a.node_id)
            .await
            .unwrap();
        assert_eq!(report.pending, vec!["d".to_string()]);
        let pending = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(
            pending.previous_node_id.as_deref(),
            Some(a.node_id.as_str())
        );

        let uncordon = NodeUpdate {
            schedulable: Some(true),
            tags: None,
        };
        s.update_node(&Principal::Unrestricted, &a.node_id, &uncordon)
            .await
            .unwrap();
        let back = s
            .get_deployment(&Principal::Unrestricted, "d", true)
            .await
            .unwrap();
        assert_eq!(back.node_id.as_deref(), Some(a.node_id.as_str()));
        assert_eq!(back.previous_node_id, None);
        let desired = s
            .desired_state(&a.node_id, Some(&a.node_token))
            .await
            .unwrap();
        assert_eq!(desired.deployments.len(), 1);
        assert!(desired.remove.is_empty(), "{:?}", desired.remove);
    }
}

#[tokio::test]
async fn after_a_restart_nodes_get_one_heartbeat_timeout_before_their_work_is_lost() {
    for f in fixtures_with(settings()).await {
        let node = f
            .service
            .register_node(&Principal::Unrestricted, &registration("n1"))
            .await
            .unwrap();
        f.service
            .submit_deployment(&Principal::Unrestricted, &request("web", "nginx"))
            .await
            .unwrap();
        f.service.close().await;
        // the control plane was down for 10 minutes: the node's last heartbeat is old
        let store = miaas_core::store::connect(&f.url).await.unwrap();
        let clock = std::sync::Arc::new(miaas_core::clock::ManualClock::new(common::T0 + 600.0));
        let restarted = Service::with_clock(store, clock.clone(), settings());
        restarted.reconcile().await.unwrap();
        let web = restarted
            .get_deployment(&Principal::Unrestricted, "web", true)
            .await
            .unwrap();
        assert_eq!(
            web.status,
            DeploymentStatus::Scheduled,
            "not lost at start-up"
        );
        clock.advance(31.0);
        restarted.reconcile().await.unwrap();
        let web = restarted
            .get_deployment(&Principal::Unrestricted, "web", true)
            .await
            .unwrap();
        assert_eq!(
            web.status,
            DeploymentStatus::Lost,
            "still silent after the timeout"
        );
        // a node that heartbeats in time keeps its work
        let fresh = Service::with_clock(
            miaas_core::store::connect(&f.url).await.unwrap(),
            std::sync::Arc::new(miaas_core::clock::ManualClock::new(common::T0 + 2000.0)),
            settings(),
        );
        fresh
            .heartbeat(&node.node_id, Some(&node.node_token), beat(5.0))
            .await
            .unwrap();
        fresh.reconcile().await.unwrap();
        let web = fresh
            .get_deployment(&Principal::Unrestricted, "web", true)
            .await
            .unwrap();
        assert_eq!(
            web.status,
            DeploymentStatus::Scheduled,
            "back with its node"
        );
    }
}

#[tokio::test]
async fn pending_deployments_alike_are_each_explained_and_placed_as_capacity_comes() {
    for f in fixtures_with(settings()).await {
        let s = &f.service;
        for id in ["p1", "p2", "p3"] {
            s.submit_deployment(&Principal::Unrestricted, &needing(id, json!({"cpus": 20})))
                .await
                .unwrap();
        }
        // 32 CPUs: one of the three fits; the others wait with the reason
        let node = s
            .register_node(&Principal::Unrestricted, &gpu_registration("g1", 0))
            .await
            .unwrap();
        let all = s.list_deployments(&Principal::Unrestricted).await.unwrap();
        let status = |id: &str| {
            let d = all.iter().find(|d| d.deployment_id == id).unwrap();
            (d.status, d.message.clone())
        };
        assert_eq!(status("p1").0, DeploymentStatus::Scheduled);
        for id in ["p2", "p3"] {
            let (state, message) = status(id);
            assert_eq!(state, DeploymentStatus::Pending);
            assert!(message.contains("too little free CPU"), "{message}");
        }
        // p1 goes: its CPUs take the next one, and only one
        s.delete_deployment(&Principal::Unrestricted, "p1")
            .await
            .unwrap();
        report(s, &node, "p1", ReportedStatus::Deleted)
            .await
            .unwrap();
        let all = s.list_deployments(&Principal::Unrestricted).await.unwrap();
        let placed = (all.iter())
            .filter(|d| d.status == DeploymentStatus::Scheduled)
            .map(|d| d.deployment_id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(placed, ["p2"]);
    }
}
