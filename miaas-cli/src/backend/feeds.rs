//! Streams a command reads item by item: events and log lines.

use async_trait::async_trait;
use miaas_core::model::{Event, LogLine};

use crate::error::Result;

/// What `miaas events` asks for.
#[derive(Debug, Clone, Default)]
pub struct EventsRequest {
    /// Events after this cursor (`None`: only new ones when following, all kept
    /// ones otherwise).
    pub since: Option<u64>,
    /// Topic filters (`node`, `deployment:ID`).
    pub topics: Vec<String>,
    /// Type filters (`deployment.running`, `node`).
    pub types: Vec<String>,
    /// Keep waiting for new events.
    pub follow: bool,
}

/// Events, one at a time.
#[async_trait]
pub trait EventFeed: Send {
    /// The next event; `None` when there are no more (never, when following).
    async fn next(&mut self) -> Result<Option<Event>>;
}

/// Log lines, one at a time.
#[async_trait]
pub trait LogFeed: Send {
    /// The next line; `None` at the end. A stream that ended early (the node did
    /// not answer) is an error saying why.
    async fn next(&mut self) -> Result<Option<LogLine>>;
}
