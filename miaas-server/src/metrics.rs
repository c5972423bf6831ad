//! Prometheus metrics: the recorder (installed once per process), the HTTP layer
//! (labelled by route template, never by raw path), and the scrape, which adds the
//! fleet's gauges as the service sees them at that moment.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use miaas_core::service::Service;

use crate::error::ServerError;

/// Buckets of the duration histograms, in seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (a process running several
/// servers, as the tests do, shares it).
pub fn handle() -> Result<&'static PrometheusHandle, ServerError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .map_err(|err| ServerError::Config(format!("metrics: {err}")))?
        .build_recorder();
    let handle = recorder.handle();
    if HANDLE.set(handle).is_ok() {
        // the first to set the handle installs its recorder
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only fleet gauges"
            );
        }
        metrics::gauge!("miaas_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        describe();
    }
    HANDLE
        .get()
        .ok_or_else(|| ServerError::Config("metrics recorder missing".into()))
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "miaas_http_requests_total",
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        "miaas_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer HTTP requests (to the response head)"
    );
    describe_counter!(
        "miaas_schedule_attempts_total",
        "Placement decisions, by result"
    );
    describe_histogram!(
        "miaas_scheduling_duration_seconds",
        Unit::Seconds,
        "Time to decide one placement"
    );
    describe_counter!(
        "miaas_unschedulable_total",
        "Nodes rejected by unschedulable decisions, by reason"
    );
    describe_gauge!(
        "miaas_pending_deployments",
        "Deployments waiting for a node"
    );
    describe_gauge!(
        "miaas_nodes",
        "Nodes by status (cordoned counts nodes also counted online or offline)"
    );
    describe_gauge!("miaas_deployments", "Deployments by status");
    describe_gauge!(
        "miaas_cluster_capacity",
        "What online nodes offer, by resource (base units)"
    );
    describe_gauge!(
        "miaas_cluster_allocated",
        "What placed deployments reserve, by resource (base units)"
    );
    describe_counter!(
        "miaas_heartbeats_received_total",
        "Heartbeats received by this server"
    );
    describe_counter!(
        "miaas_heartbeats_missed_total",
        "Nodes that went offline for want of heartbeats"
    );
    describe_gauge!("miaas_build_info", "The server's version");
}

/// The HTTP layer (a route layer: only requests that matched a route are counted,
/// by its template).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let seconds = started.elapsed().as_secs_f64();
    let method = method.as_str().to_string();
    metrics::histogram!("miaas_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(seconds);
    metrics::counter!("miaas_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// The text of a scrape: the fleet's gauges set from `service`, then everything.
pub async fn scrape(service: &Service, per_node: bool) -> Result<String, miaas_core::Error> {
    let handle = handle().map_err(|err| miaas_core::Error::Unavailable(err.to_string()))?;
    let totals = service.fleet_totals(per_node).await?;
    for (status, count) in &totals.nodes {
        metrics::gauge!("miaas_nodes", "status" => *status).set(*count as f64);
    }
    for (status, count) in &totals.deployments {
        metrics::gauge!("miaas_deployments", "status" => *status).set(*count as f64);
    }
    let pending = totals.deployments.get("pending").copied().unwrap_or(0);
    metrics::gauge!("miaas_pending_deployments").set(pending as f64);
    for (resource, value) in &totals.capacity {
        metrics::gauge!("miaas_cluster_capacity", "resource" => *resource).set(*value);
    }
    for (resource, value) in &totals.allocated {
        metrics::gauge!("miaas_cluster_allocated", "resource" => *resource).set(*value);
    }
    for node in &totals.per_node {
        let name = node.name.clone();
        metrics::gauge!("miaas_node_up", "node" => name.clone())
            .set(f64::from(u8::from(node.online)));
        metrics::gauge!("miaas_node_cpu_usage_ratio", "node" => name.clone())
            .set(node.cpu_usage / 100.0);
        metrics::gauge!("miaas_node_memory_usage_ratio", "node" => name.clone())
            .set(node.mem_usage / 100.0);
        metrics::gauge!("miaas_node_deployments", "node" => name).set(node.deployments as f64);
    }
    Ok(handle.render())
}
