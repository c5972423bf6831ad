//! Prometheus metrics: the recorder (installed once per process), the HTTP layer
//! (labelled by route template, never by raw path), and the scrape, which adds the
//! fleet's gauges as the service sees them at that moment (per GPU as text of
//! their own).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use miaas_core::service::Service;

use crate::error::ServerError;

mod gpus;

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
        "miaas_deployments_health",
        "Running or failed deployments by health (starting, healthy, unhealthy, none)"
    );
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
    describe_counter!(
        "miaas_http_refused_total",
        "Requests refused with 503 under load, by reason (inflight, timeout)"
    );
}

/// Counts one request refused under load (`inflight`: over `--max-inflight`;
/// `timeout`: not answered within `--request-timeout`).
pub fn record_overload(reason: &'static str) {
    metrics::counter!("miaas_http_refused_total", "reason" => reason).increment(1);
}

/// The series of one route and method: its duration histogram and a counter per
/// status.
struct RouteSeries {
    method: Method,
    duration: Histogram,
    answers: Vec<(u16, Counter)>,
}

thread_local! {
    /// The handles of the series this thread has recorded, by route template: a
    /// request then costs a lookup and two atomic operations, not a registration
    /// (which contends across threads) with freshly built labels.
    static SERIES: RefCell<HashMap<String, Vec<RouteSeries>>> = RefCell::default();
}

/// The HTTP layer (a route layer: only requests that matched a route are counted,
/// by its template).
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    record(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Counts one answer of `route`.
fn record(method: &Method, route: &str, status: u16, seconds: f64) {
    SERIES.with_borrow_mut(|series| {
        if !series.contains_key(route) {
            series.insert(route.to_string(), Vec::new());
        }
        let Some(methods) = series.get_mut(route) else {
            return;
        };
        let index = match methods.iter().position(|s| s.method == method) {
            Some(index) => index,
            None => {
                let labels = [
                    ("method", method.as_str().to_string()),
                    ("route", route.to_string()),
                ];
                methods.push(RouteSeries {
                    method: method.clone(),
                    duration: metrics::histogram!("miaas_http_request_duration_seconds", &labels),
                    answers: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let entry = &mut methods[index];
        entry.duration.record(seconds);
        let counter = match entry.answers.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.clone(),
            None => {
                let counter = metrics::counter!(
                    "miaas_http_requests_total",
                    "method" => method.as_str().to_string(),
                    "route" => route.to_string(),
                    "status" => status.to_string()
                );
                entry.answers.push((status, counter.clone()));
                counter
            }
        };
        counter.increment(1);
    });
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
    for (health, count) in &totals.health {
        metrics::gauge!("miaas_deployments_health", "health" => *health).set(*count as f64);
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
    let mut text = handle.render();
    gpus::append(&mut text, &totals.per_node);
    Ok(text)
}
