//! The dashboard's front page (`GET /ui`): the fleet at a glance.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use minijinja::context;

use super::events::latest_events;
use super::page::{error_page, page};
use super::session::Viewer;
use crate::state::AppState;

/// `GET /ui`: the fleet at a glance.
pub async fn overview(State(state): State<AppState>, viewer: Viewer) -> Response {
    let totals = match state.service.fleet_totals(false).await {
        Ok(totals) => totals,
        Err(err) => return error_page(&viewer, state.auth, &err),
    };
    let events = latest_events(&state, &viewer, None).await;
    let capacity = |key: &str| totals.capacity.get(key).copied().unwrap_or_default();
    let allocated = |key: &str| totals.allocated.get(key).copied().unwrap_or_default();
    const MIB: f64 = 1024.0 * 1024.0;
    let resources = vec![
        context! { name => "CPU cores", used => allocated("cpus"), total => capacity("cpus"), unit => "" },
        context! { name => "Memory (GiB)", used => (allocated("memory_bytes") / MIB / 1024.0 * 10.0).round() / 10.0,
        total => (capacity("memory_bytes") / MIB / 1024.0 * 10.0).round() / 10.0, unit => "" },
        context! { name => "GPUs", used => allocated("gpus"), total => capacity("gpus"), unit => "" },
    ];
    page(
        &viewer,
        state.auth,
        "overview",
        "overview.html",
        context! {
            nodes => totals.nodes.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            deployments => totals.deployments.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            resources => resources,
            events => events,
        },
    )
}
