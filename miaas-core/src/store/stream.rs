//! Storage of what streams out of the control plane: the event log and the log
//! sessions between viewers and nodes. Both backends implement it once, in
//! `super::tables`.

use async_trait::async_trait;

use crate::Result;
use crate::model::{Event, EventBounds, LogSession, NewEvent};

/// The event log and log sessions. Every write is committed before the method
/// returns.
#[async_trait]
pub trait StreamStore: Send + Sync {
    /// Appends events in order, each with the next cursor; an event whose
    /// `dedupe_key` is already stored is skipped. Returns the stored events.
    async fn append_events(&self, events: &[NewEvent]) -> Result<Vec<Event>>;

    /// Up to `limit` events with a cursor after `after`, oldest first.
    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>>;

    /// The newest cursor, and how far retention has removed events.
    async fn event_bounds(&self) -> Result<EventBounds>;

    /// Removes events beyond the newest `keep` and those older than `before`
    /// (epoch seconds); how many went.
    async fn prune_events(&self, keep: u64, before: f64) -> Result<u64>;

    /// Stores a new, open log session.
    async fn open_log_session(&self, session: &LogSession) -> Result<()>;

    /// One log session, open or ended.
    async fn log_session(&self, id: &str) -> Result<Option<LogSession>>;

    /// The open sessions of node `node_id` whose viewer was seen after `seen_after`.
    async fn open_log_sessions(&self, node_id: &str, seen_after: f64) -> Result<Vec<LogSession>>;

    /// Notes that the viewer of session `id` is still there; `false` when it ended.
    async fn touch_log_session(&self, id: &str, now: f64) -> Result<bool>;

    /// Ends session `id` for `reason`; `false` when it was not open.
    async fn end_log_session(&self, id: &str, now: f64, reason: &str) -> Result<bool>;

    /// Appends a batch of lines (NDJSON) to open session `id`; `false` when the
    /// session is not open (the node should stop).
    async fn append_log_lines(&self, id: &str, batch: &str) -> Result<bool>;

    /// The batches of session `id` after batch number `after`, oldest first.
    async fn log_batches_after(&self, id: &str, after: u64) -> Result<Vec<(u64, String)>>;

    /// Removes sessions (and their lines) ended, or whose viewer was last seen,
    /// before `before`; how many went.
    async fn prune_log_sessions(&self, before: f64) -> Result<u64>;
}
