//! Events: every change of nodes, deployments and access, in the order it was
//! committed, with a cursor that is the same on every replica.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One change, as `GET /api/v1/events` sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "cursor": 42, "time": 1_764_668_400.5, "type": "deployment.scheduled",
    "topic": "deployment:web-1", "subject": "web-1",
    "summary": "web-1 scheduled on worker-01 (GPUs 0)",
    "actor": "user:alice", "client": "10.0.0.7",
    "data": {"node_id": "4f1c…", "gpu_ids": [0]}
}))]
pub struct Event {
    /// Where this event stands in the log: it only grows, and every replica
    /// gives the same event the same cursor. Give it back as `since` (or
    /// `Last-Event-ID`) for the events after it.
    pub cursor: u64,
    /// When it happened (epoch seconds).
    pub time: f64,
    /// What happened: `node.registered`, `deployment.running`, `user.created`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// What it concerns, as `kind:id`: `node:<id>`, `deployment:<id>`,
    /// `user:<name>`, `token:<id>`, `cluster:join-token`.
    pub topic: String,
    /// The id or name in the topic.
    pub subject: String,
    /// One line for people.
    pub summary: String,
    /// Who did it: `user:<name>`, `token:<name>`, `node:<id>`, or none for the
    /// control plane itself (timeouts, rescheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The address the request came from, when a request did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Details of this type of event (never a secret).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// An event of `kind` about `topic_kind:subject`, now and by nobody yet (the
    /// service fills in the time, actor and client).
    pub fn new(kind: &str, topic_kind: &str, subject: &str, summary: String) -> Self {
        Self {
            cursor: 0,
            time: 0.0,
            kind: kind.to_string(),
            topic: format!("{topic_kind}:{subject}"),
            subject: subject.to_string(),
            summary,
            actor: None,
            client: None,
            data: serde_json::Map::new(),
        }
    }

    /// With one more detail.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }

    /// Whether only admins may see it (the audit log of users, tokens and the
    /// join token); viewers and operators see node and deployment events.
    pub fn admin_only(&self) -> bool {
        !(self.topic.starts_with("node:") || self.topic.starts_with("deployment:"))
    }

    /// Whether it matches a topic filter: `node` matches every node's events,
    /// `deployment:web-1` that deployment's.
    pub fn matches_topic(&self, filter: &str) -> bool {
        self.topic == filter
            || (self.topic.starts_with(filter) && self.topic[filter.len()..].starts_with(':'))
    }

    /// Whether it matches a type filter: `deployment.running` exactly, or
    /// `deployment` for every deployment event.
    pub fn matches_type(&self, filter: &str) -> bool {
        self.kind == filter
            || (self.kind.starts_with(filter) && self.kind[filter.len()..].starts_with('.'))
    }
}

/// An event to append, with the key that makes a second report of the same
/// transition (by another replica) a no-op.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event (its cursor is given when it is stored).
    pub event: Event,
    /// Unique per transition, when two writers may report the same one.
    pub dedupe_key: Option<String>,
}

impl From<Event> for NewEvent {
    fn from(event: Event) -> Self {
        Self {
            event,
            dedupe_key: None,
        }
    }
}

/// Which events a reader wants (`GET /api/v1/events`' filters).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Topic filters (any may match); empty: every topic.
    pub topics: Vec<String>,
    /// Type filters (any may match); empty: every type.
    pub types: Vec<String>,
    /// Whether admin-only events may be shown.
    pub admin: bool,
}

impl EventFilter {
    /// Whether `event` passes.
    pub fn admits(&self, event: &Event) -> bool {
        (self.admin || !event.admin_only())
            && (self.topics.is_empty() || self.topics.iter().any(|t| event.matches_topic(t)))
            && (self.types.is_empty() || self.types.iter().any(|t| event.matches_type(t)))
    }
}

/// The ends of the event log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventBounds {
    /// The cursor of the newest event (0: none yet).
    pub latest: u64,
    /// Events up to this cursor were removed by retention: a reader after an
    /// older cursor has missed some.
    pub pruned_through: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_whole_segments_and_hide_the_audit_log_from_viewers() {
        let event = Event::new("deployment.running", "deployment", "web-1", "x".into());
        let filter = |topics: &[&str], types: &[&str], admin| EventFilter {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            types: types.iter().map(|t| t.to_string()).collect(),
            admin,
        };
        assert!(filter(&["deployment"], &[], false).admits(&event));
        assert!(filter(&["deployment:web-1"], &["deployment"], false).admits(&event));
        assert!(!filter(&["deployment:web"], &[], false).admits(&event));
        assert!(!filter(&["deploy"], &[], false).admits(&event));
        assert!(!filter(&[], &["deployment.run"], false).admits(&event));
        assert!(!filter(&["node"], &[], true).admits(&event));
        let audit = Event::new("user.created", "user", "bob", "x".into());
        assert!(!filter(&[], &[], false).admits(&audit));
        assert!(filter(&[], &[], true).admits(&audit));
    }
}
