//! The event lists of the dashboard's pages: the newest events a viewer may see,
//! of the whole cluster or of one node or deployment.

use miaas_core::model::{Event, EventFilter};

use super::session::Viewer;
use crate::state::AppState;

/// How many events the event lists show.
const EVENTS_SHOWN: usize = 20;
/// How far back the event list of one node or deployment looks, in events.
const EVENTS_SCANNED: u64 = 5_000;
/// How far back the list of every event looks (some may be hidden from the
/// viewer): a page read again at each change reads little.
const LATEST_SCANNED: u64 = 200;

/// The newest events (newest first) of `topic` (all when `None`) the viewer may see.
pub(super) async fn latest_events(
    state: &AppState,
    viewer: &Viewer,
    topic: Option<String>,
) -> Vec<Event> {
    let log = state.service.events();
    let Ok(bounds) = log.bounds().await else {
        return Vec::new();
    };
    let span = if topic.is_some() {
        EVENTS_SCANNED
    } else {
        LATEST_SCANNED
    };
    let after = bounds
        .latest
        .saturating_sub(span)
        .max(bounds.pruned_through);
    let filter = EventFilter {
        topics: topic.into_iter().collect(),
        types: Vec::new(),
        admin: viewer.principal.sees_audit_log(),
    };
    let Ok(Ok(mut follower)) = log.pages(Some(after), filter).await else {
        return Vec::new();
    };
    let mut events: Vec<Event> = Vec::new();
    while let Ok(batch) = follower.read().await {
        if batch.is_empty() {
            break;
        }
        events.extend(batch.iter().map(|published| published.event.clone()));
        let excess = events.len().saturating_sub(EVENTS_SHOWN);
        events.drain(..excess);
    }
    events.reverse();
    events
}
