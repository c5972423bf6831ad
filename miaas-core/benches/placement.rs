//! Placement decisions over 1,000 / 10,000 / 100,000 nodes, and compose parsing.
//!
//! `cargo bench -p miaas-core --bench placement`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use miaas_core::compose::requirements_from_compose;
use miaas_core::model::{NodeCapabilities, Requirements, Resources};
use miaas_core::placement::{Candidate, PlacementEngine};
use serde_json::json;

/// A fleet of mixed nodes: a tenth with GPUs, varied sizes, tags and reservations.
fn fleet(count: usize) -> Vec<Candidate> {
    (0..count)
        .map(|i| {
            let gpus: Vec<_> = if i % 10 == 0 {
                (0..4)
                    .map(|id| json!({"id": id, "model": "A100", "mem_mb": 80_000}))
                    .collect()
            } else {
                Vec::new()
            };
            let capabilities: NodeCapabilities = serde_json::from_value(json!({
                "os": "linux", "cpu_count": 8 + (i % 4) * 8, "mem_mb": 32_000 + (i % 7) * 8_000,
                "disk_mb": 500_000, "gpus": gpus,
                "docker": {"version": "24.0.7", "available": true}
            }))
            .expect("capabilities");
            let mut candidate = Candidate::new(
                format!("node-{i:06}"),
                format!("worker-{i:06}"),
                capabilities,
                vec![format!("zone=z{}", i % 3)],
            );
            candidate.online = i % 50 != 0;
            candidate.schedulable = i % 97 != 0;
            candidate.reserved = Resources {
                cpus: (i % 5) as f64,
                mem_mb: ((i % 3) * 4_000) as u64,
                ..Resources::default()
            };
            candidate
        })
        .collect()
}

fn placement(c: &mut Criterion) {
    let engine = PlacementEngine::default();
    let typical: Requirements = serde_json::from_value(json!({
        "cpus": 2, "mem_mb": 8192, "tags": ["zone=z1"], "docker_version": ">=24"
    }))
    .expect("requirements");
    let gpu: Requirements =
        serde_json::from_value(json!({"gpus": 2, "gpu_model": "A100"})).expect("requirements");
    let mut group = c.benchmark_group("placement_decision");
    for count in [1_000, 10_000, 100_000] {
        let nodes = fleet(count);
        group.bench_with_input(BenchmarkId::new("typical", count), &nodes, |b, nodes| {
            b.iter(|| engine.decide(black_box(nodes), black_box(&typical)))
        });
        group.bench_with_input(BenchmarkId::new("gpu", count), &nodes, |b, nodes| {
            b.iter(|| engine.decide(black_box(nodes), black_box(&gpu)))
        });
    }
    group.finish();
}

fn compose(c: &mut Criterion) {
    let document = "version: '3.8'
services:
  web:
    image: nginx:1.27
    ports: ['80:80']
    deploy:
      replicas: 3
      resources:
        reservations: {cpus: '0.5', memory: 512M}
      placement:
        constraints: [node.labels.zone == eu-1, node.platform.os == linux]
  train:
    image: pytorch/pytorch
    environment: [EPOCHS=10]
    deploy:
      resources:
        reservations:
          memory: 16G
          devices:
            - driver: nvidia
              count: 2
              capabilities: [gpu]
";
    c.bench_function("compose_requirements", |b| {
        b.iter(|| requirements_from_compose(black_box(document)))
    });
}

criterion_group!(benches, placement, compose);
criterion_main!(benches);
