//! Unit tests of the filters, the scorers, the strategies and the explanations.

use serde_json::json;

use super::*;
use crate::model::{NodeCapabilities, NodeMetrics, Resources};

fn caps(cpus: u32, mem_mb: u64, gpus: &[(u32, &str, u64)]) -> NodeCapabilities {
    serde_json::from_value(json!({
        "os": "linux", "cpu_count": cpus, "mem_mb": mem_mb, "disk_mb": 100_000,
        "gpus": gpus.iter().map(|(id, model, mem)| json!({"id": id, "model": model, "mem_mb": mem})).collect::<Vec<_>>(),
        "docker": {"version": "24.0.7", "available": true}
    }))
    .unwrap()
}

fn node(name: &str, cpus: u32, mem_mb: u64) -> Candidate {
    Candidate::new(
        format!("id-{name}"),
        name,
        caps(cpus, mem_mb, &[]),
        Vec::new(),
    )
}

fn gpu_node(name: &str, gpus: &[(u32, &str, u64)]) -> Candidate {
    Candidate {
        capabilities: caps(16, 64_000, gpus),
        ..node(name, 16, 64_000)
    }
    .derived()
}

fn reqs(value: serde_json::Value) -> Requirements {
    serde_json::from_value(value).unwrap()
}

fn engine(strategy: Strategy) -> PlacementEngine {
    PlacementEngine::new(PlacementSettings {
        strategy,
        weights: Weights::default(),
    })
}

fn rejection(node: &Candidate, r: &Requirements) -> Option<Rejection> {
    filters::first_rejection(node, &Prepared::new(r))
}

fn pick(node: &Candidate, r: &Requirements) -> Option<Vec<u32>> {
    filters::pick_gpus(node, &Prepared::new(r))
}

#[test]
fn each_filter_rejects_for_its_own_reason() {
    let base = node("a", 4, 8000);
    let none = Requirements::default();
    assert_eq!(rejection(&base, &none), None);

    let offline = Candidate {
        online: false,
        ..base.clone()
    };
    assert_eq!(rejection(&offline, &none), Some(Rejection::Offline));
    let cordoned = Candidate {
        schedulable: false,
        ..base.clone()
    };
    assert_eq!(rejection(&cordoned, &none), Some(Rejection::Cordoned));
    assert_eq!(
        rejection(&base, &reqs(json!({"node": "b"}))),
        Some(Rejection::NotPinned)
    );
    assert_eq!(rejection(&base, &reqs(json!({"node": "a"}))), None);
    assert_eq!(rejection(&base, &reqs(json!({"node": "id-a"}))), None);
    assert_eq!(
        rejection(&base, &reqs(json!({"os": "windows"}))),
        Some(Rejection::Os)
    );
    assert_eq!(rejection(&base, &reqs(json!({"os": "Linux"}))), None);
    assert_eq!(
        rejection(&base, &reqs(json!({"docker_version": ">=25"}))),
        Some(Rejection::Docker)
    );
    assert_eq!(
        rejection(&base, &reqs(json!({"docker_version": ">=24"}))),
        None
    );
    assert_eq!(
        rejection(&base, &reqs(json!({"tags": ["zone=eu"]}))),
        Some(Rejection::Tags)
    );
    let tagged = Candidate {
        tags: vec!["zone=eu".into(), "ssd".into()],
        ..base.clone()
    }
    .derived();
    assert_eq!(
        rejection(&tagged, &reqs(json!({"tags": ["zone=eu", "ssd"]}))),
        None
    );
    assert_eq!(
        rejection(&base, &reqs(json!({"gpus": 1}))),
        Some(Rejection::Gpus)
    );
    assert_eq!(
        rejection(&base, &reqs(json!({"cpus": 4.5}))),
        Some(Rejection::Cpu)
    );
    assert_eq!(rejection(&base, &reqs(json!({"cpus": 4.0}))), None);
    assert_eq!(
        rejection(&base, &reqs(json!({"mem_mb": 8001}))),
        Some(Rejection::Memory)
    );
    assert_eq!(
        rejection(&base, &reqs(json!({"disk_mb": 100_001}))),
        Some(Rejection::Disk)
    );
}

#[test]
fn a_node_of_unknown_disk_fits_only_deployments_that_reserve_no_disk() {
    let mut n = node("a", 4, 8000);
    n.capabilities.disk_mb = None;
    assert_eq!(rejection(&n, &reqs(json!({"cpus": 1.0}))), None);
    assert_eq!(
        rejection(&n, &reqs(json!({"disk_mb": 1}))),
        Some(Rejection::DiskUnknown)
    );
    let prepared_reqs = reqs(json!({"disk_mb": 10}));
    let why = filters::all_rejections(&n, &filters::Prepared::new(&prepared_reqs));
    assert_eq!(why.len(), 1, "{why:?}");
    assert_eq!(why[0].0.key(), "unknown_disk");
    assert!(why[0].1.contains("did not report its disk"), "{why:?}");
}

#[test]
fn docker_unavailable_rejects_even_without_a_version_requirement() {
    let mut n = node("a", 4, 8000);
    n.capabilities.docker = Some(crate::model::DockerInfo {
        version: "24.0.0".into(),
        available: false,
        compose_version: None,
        extra: Default::default(),
    });
    assert_eq!(
        rejection(&n, &Requirements::default()),
        Some(Rejection::Docker)
    );
}

#[test]
fn lenient_docker_versions_parse() {
    assert_eq!(
        crate::model::lenient_version("24").unwrap(),
        semver::Version::new(24, 0, 0)
    );
    assert_eq!(
        crate::model::lenient_version("v20.10.17-ce").unwrap(),
        semver::Version::new(20, 10, 17)
    );
    assert!(crate::model::lenient_version("unknown").is_none());
}

#[test]
fn free_resources_account_for_reservations() {
    let mut n = node("a", 4, 8000);
    n.reserved = Resources {
        cpus: 3.5,
        mem_mb: 7000,
        disk_mb: 0,
        gpus: 0,
        gpu_ids: vec![],
        ..Resources::default()
    };
    assert_eq!(
        rejection(&n, &reqs(json!({"cpus": 0.5, "mem_mb": 1000}))),
        None
    );
    assert_eq!(
        rejection(&n, &reqs(json!({"cpus": 0.6}))),
        Some(Rejection::Cpu)
    );
    assert_eq!(
        rejection(&n, &reqs(json!({"mem_mb": 1001}))),
        Some(Rejection::Memory)
    );
}

#[test]
fn gpus_are_picked_by_id_matching_model_and_memory_and_never_shared() {
    let mut n = gpu_node(
        "g",
        &[
            (0, "RTX 3090", 24_000),
            (1, "A100", 80_000),
            (2, "A100", 40_000),
            (3, "A100", 80_000),
        ],
    );
    let two_big = reqs(json!({"gpus": 2, "gpu_model": "a100", "gpu_mem_mb": 80_000}));
    assert_eq!(pick(&n, &two_big), Some(vec![1, 3]));
    n.reserved.gpu_ids = vec![1];
    assert_eq!(pick(&n, &two_big), None, "GPU 1 is taken");
    let one_big = reqs(json!({"gpus": 1, "gpu_model": "A100", "gpu_mem_mb": 80_000}));
    assert_eq!(pick(&n, &one_big), Some(vec![3]));
    let any = reqs(json!({"gpus": 3}));
    assert_eq!(pick(&n, &any), Some(vec![0, 2, 3]));
}

#[test]
fn binpack_fills_the_fuller_node_and_spread_the_emptier() {
    let mut full = node("full", 8, 16_000);
    full.reserved = Resources {
        cpus: 6.0,
        mem_mb: 12_000,
        ..Resources::default()
    };
    let empty = node("empty", 8, 16_000);
    let nodes = vec![empty.clone(), full.clone()];
    let r = reqs(json!({"cpus": 1, "mem_mb": 1000}));
    assert_eq!(
        engine(Strategy::Binpack).select_node(&nodes, &r).as_deref(),
        Some("id-full")
    );
    assert_eq!(
        engine(Strategy::Spread).select_node(&nodes, &r).as_deref(),
        Some("id-empty")
    );
}

#[test]
fn lower_live_load_scores_higher() {
    let mut busy = node("busy", 8, 16_000);
    busy.metrics = Some(NodeMetrics {
        cpu_usage: 95.0,
        mem_usage: 10.0,
        disk_free_mb: 1,
        running_containers: vec![],
        gpus: vec![],
        reported_at: 0.0,
    });
    let mut idle = busy.clone();
    idle.name = "idle".into();
    idle.id = "id-idle".into();
    idle.metrics.as_mut().unwrap().cpu_usage = 5.0;
    let r = Requirements::default();
    let settings = PlacementSettings::default();
    assert!(score::score(&idle, &r, &settings) > score::score(&busy, &r, &settings));
}

#[test]
fn work_without_gpus_keeps_off_gpu_nodes_and_gpu_work_packs_them() {
    let plain = node("plain", 16, 64_000);
    let gpu = gpu_node("gpu", &[(0, "A100", 80_000), (1, "A100", 80_000)]);
    let nodes = vec![gpu.clone(), plain.clone()];
    let cpu_only = reqs(json!({"cpus": 1}));
    assert_eq!(
        engine(Strategy::Binpack)
            .select_node(&nodes, &cpu_only)
            .as_deref(),
        Some("id-plain")
    );
    assert_eq!(
        engine(Strategy::Spread)
            .select_node(&nodes, &cpu_only)
            .as_deref(),
        Some("id-plain")
    );
    let gpu_work = reqs(json!({"gpus": 1}));
    match engine(Strategy::Binpack).decide(&nodes, &gpu_work) {
        Decision::Placed {
            node_id, gpu_ids, ..
        } => {
            assert_eq!(node_id, "id-gpu");
            assert_eq!(gpu_ids, vec![0]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn ties_break_by_name_then_id_whatever_the_input_order() {
    let a = node("alpha", 4, 8000);
    let b = node("bravo", 4, 8000);
    let r = Requirements::default();
    for nodes in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
        assert_eq!(
            engine(Strategy::Binpack).select_node(&nodes, &r).as_deref(),
            Some("id-alpha")
        );
        assert_eq!(
            engine(Strategy::Spread).select_node(&nodes, &r).as_deref(),
            Some("id-alpha")
        );
    }
}

#[test]
fn no_fit_is_explained_with_counts_per_reason() {
    let mut nodes = vec![
        Candidate {
            online: false,
            ..node("o1", 4, 8000)
        },
        Candidate {
            online: false,
            ..node("o2", 4, 8000)
        },
        node("small1", 4, 1000),
        node("small2", 4, 1000),
        gpu_node("g", &[(0, "T4", 16_000)]),
    ];
    nodes[4].reserved.mem_mb = 64_000;
    let r = reqs(json!({"mem_mb": 4000}));
    let Decision::Unplaceable(summary) = engine(Strategy::Binpack).decide(&nodes, &r) else {
        panic!("nothing should fit");
    };
    assert_eq!(summary.nodes_evaluated, 5);
    assert_eq!(summary.reasons["offline"], 2);
    assert_eq!(summary.reasons["insufficient_memory"], 3);
    assert_eq!(
        summary.message,
        "no node fits: 2 nodes offline, 3 nodes had too little free memory"
    );
    let Decision::Unplaceable(empty) = engine(Strategy::Binpack).decide(&[], &r) else {
        panic!("no nodes");
    };
    assert!(empty.message.contains("no nodes"), "{}", empty.message);
}

#[test]
fn a_plan_ranks_candidates_and_lists_every_reason_of_the_rejected() {
    let mut fuller = node("fuller", 8, 16_000);
    fuller.reserved.cpus = 4.0;
    let nodes = vec![
        node("roomy", 8, 16_000),
        fuller,
        Candidate {
            online: false,
            ..node("gone", 1, 100)
        },
    ];
    let plan = engine(Strategy::Binpack).plan(&nodes, &reqs(json!({"cpus": 2, "mem_mb": 1000})));
    let names: Vec<_> = plan.candidates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["fuller", "roomy"]);
    assert!(plan.candidates[0].score > plan.candidates[1].score);
    assert_eq!(plan.rejected.len(), 1);
    let reasons = &plan.rejected[0].reasons;
    assert_eq!(reasons.len(), 3, "offline, cpu and memory: {reasons:?}");
    assert!(reasons[0].contains("offline"));
}

/// Deployment "d" placed on node "a" in `status`, reserving 3 CPUs and 5,000 MB.
fn placed_on_a(status: &str) -> crate::model::Deployment {
    serde_json::from_value(json!({
        "deployment_id": "d", "template_id": "t", "action": "apply", "status": status,
        "message": "", "node_id": "id-a", "env": {}, "rendered_compose": "services: {}",
        "revision": 1, "created_at": 0.0, "updated_at": 0.0,
        "requirements": {"cpus": 3, "mem_mb": 5000}
    }))
    .unwrap()
}

#[test]
fn the_cluster_ledger_books_and_frees() {
    let mut ledger = Ledger::new(vec![node("a", 4, 8000)], std::iter::empty());
    let d = placed_on_a("scheduled");
    ledger.reserve("id-a", &d);
    assert_eq!(ledger.usage("id-a").reserved.mem_mb, 5000);
    assert_eq!(ledger.usage("id-a").deployments, vec!["d".to_string()]);
    let r = reqs(json!({"cpus": 2}));
    assert!(
        engine(Strategy::Binpack)
            .select_node(ledger.candidates(), &r)
            .is_none()
    );
    ledger.release("id-a", &d);
    assert_eq!(ledger.usage("id-a").reserved, Resources::default());
    assert!(
        engine(Strategy::Binpack)
            .select_node(ledger.candidates(), &r)
            .is_some()
    );
}

#[test]
fn a_placement_ledger_books_without_naming_the_deployments() {
    let d = placed_on_a("running");
    let mut ledger = Ledger::for_placement(vec![node("a", 4, 8000)], [&d]);
    assert_eq!(ledger.usage("id-a").reserved.mem_mb, 5000);
    assert!(ledger.usage("id-a").deployments.is_empty());
    ledger.release("id-a", &d);
    assert_eq!(ledger.usage("id-a").reserved, Resources::default());
}

#[test]
fn tags_are_matched_whole_whether_kept_inline_or_not() {
    let tags = |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    let short = Candidate::new("a", "a", caps(4, 8000, &[]), tags(&["zone=ab", "ssd"]));
    assert!(short.has_tag("zone=ab") && short.has_tag("ssd"));
    assert!(!short.has_tag("zone=a") && !short.has_tag("zone=abc") && !short.has_tag(""));
    let long_tags = tags(&["rack=0123456789abcdef", "zone=0123456789abcdef", "ssd"]);
    let long = Candidate::new("b", "b", caps(4, 8000, &[]), long_tags);
    assert!(long.has_tag("ssd") && long.has_tag("zone=0123456789abcdef"));
    assert!(!long.has_tag("zone=0123456789abcde"));
    let none = Candidate::new("c", "c", caps(4, 8000, &[]), vec![]);
    assert!(!none.has_tag("ssd"));
}

#[test]
fn rejections_are_counted_in_filter_order() {
    for (i, rejection) in Rejection::ALL.into_iter().enumerate() {
        assert_eq!(rejection as usize, i, "{rejection:?}");
    }
}

fn record(id: &str, cpus: u32, tags: &[&str]) -> crate::model::NodeRecord {
    crate::model::NodeRecord {
        id: id.into(),
        name: format!("name-{id}"),
        ip: "10.0.0.1".into(),
        capabilities: caps(cpus, 8000, &[]),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        registered_at: 0.0,
        last_seen: 100.0,
        metrics: None,
        schedulable: true,
    }
}

#[test]
fn a_ledger_follows_changed_and_new_nodes_keeping_what_is_reserved() {
    let nodes = [record("a", 4, &[]), record("b", 4, &[])];
    let placed: crate::model::Deployment = serde_json::from_value(json!({
        "deployment_id": "d", "template_id": "t", "action": "apply", "status": "running",
        "message": "", "node_id": "a", "env": {}, "rendered_compose": "", "revision": 1,
        "created_at": 1.0, "updated_at": 1.0, "requirements": {"cpus": 2}
    }))
    .unwrap();
    let candidates = nodes.iter().map(|n| Candidate::from_record(n, true));
    let mut ledger = Ledger::for_placement(candidates, [&placed]);
    let before = ledger.clone();

    // "a" grows and is tagged, "c" joins, "b" goes silent
    ledger.update_node(&record("a", 16, &["gpu"]), 160.0, 60.0);
    ledger.update_node(&record("c", 8, &[]), 160.0, 60.0);
    let mut silent = record("b", 4, &[]);
    silent.last_seen = 1.0;
    ledger.update_node(&silent, 160.0, 60.0);
    let a = ledger.get("a").expect("a");
    assert_eq!(a.capabilities.cpu_count, 16);
    assert!(a.has_tag("gpu"), "derived fields follow the tags");
    assert_eq!(a.reserved.cpus, 2.0, "what is reserved stays");
    assert!(!ledger.get("b").expect("b").online);
    let c = ledger.get("c").expect("a new node");
    assert_eq!((c.capabilities.cpu_count, c.reserved.cpus), (8, 0.0));
    let wanted = reqs(json!({"cpus": 10}));
    let engine = engine(Strategy::Spread);
    assert!(matches!(
        engine.decide(ledger.candidates(), &wanted),
        Decision::Placed { node_id, .. } if node_id == "a"
    ));
    assert_eq!(
        before.get("a").map(|a| a.capabilities.cpu_count),
        Some(4),
        "a copy is left as it was"
    );
    assert!(before.get("c").is_none());
}

#[test]
fn nodes_go_offline_as_time_passes_without_news() {
    let mut nodes = [
        record("a", 4, &[]),
        record("b", 4, &[]),
        record("c", 4, &[]),
    ];
    nodes[2].last_seen = 150.0;
    let mut ledger =
        Ledger::for_placement(nodes.iter().map(|n| Candidate::from_record(n, true)), []);
    let online = |ledger: &Ledger| ledger.candidates().map(|c| c.online).collect::<Vec<_>>();
    // "a" and "b" (seen at 100) expire after 160, "c" (150) after 210
    ledger.expire(160.0, 60.0);
    assert_eq!(online(&ledger), [true, true, true]);
    ledger.expire(161.0, 60.0);
    assert_eq!(online(&ledger), [false, false, true]);
    let beat = NodeMetrics {
        cpu_usage: 1.0,
        mem_usage: 1.0,
        disk_free_mb: 1,
        running_containers: vec![],
        gpus: vec![],
        reported_at: 170.0,
    };
    let mut back = nodes[0].clone();
    back.last_seen = 170.0;
    back.metrics = Some(beat);
    ledger.update_node(&back, 171.0, 60.0);
    assert_eq!(
        online(&ledger),
        [true, false, true],
        "a heartbeat brings it back"
    );
    assert_eq!(
        ledger
            .get("a")
            .and_then(|c| c.metrics.as_ref())
            .map(|m| m.reported_at),
        Some(170.0)
    );
    ledger.expire(211.0, 60.0);
    assert_eq!(online(&ledger), [true, false, false]);
    ledger.expire(231.0, 60.0);
    assert_eq!(online(&ledger), [false, false, false]);
}
