//! Deployment logs: what a viewer asks for, what the node is told, and the lines
//! it sends up.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Error, Result};

/// The most lines `tail` may ask for.
pub const MAX_TAIL: u32 = 10_000;

/// The query of `GET /api/v1/deployments/{deployment_id}/logs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Keep the stream open for new lines (until the viewer leaves or the
    /// deployment is deleted); default `false`.
    pub follow: Option<bool>,
    /// Only the last N lines of what was logged before (at most 10,000); default 200.
    pub tail: Option<u32>,
    /// Only lines since this time: RFC 3339 (`2026-12-02T10:00:00Z`) or relative
    /// (`10m`, `1h`).
    pub since: Option<String>,
    /// Only this compose service.
    pub service: Option<String>,
}

impl LogQuery {
    /// Checks every field; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<()> {
        if let Some(tail) = self.tail
            && tail > MAX_TAIL
        {
            return Err(Error::Invalid(format!("tail: at most {MAX_TAIL} lines")));
        }
        if let Some(since) = &self.since {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-');
            if since.is_empty()
                || since.len() > 64
                || since.starts_with('-')
                || !since.chars().all(allowed)
            {
                return Err(Error::Invalid(
                    "since: an RFC 3339 time (2026-12-02T10:00:00Z) or a duration (10m)".into(),
                ));
            }
        }
        if let Some(service) = &self.service {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if service.is_empty()
                || service.len() > 253
                || service.starts_with('-')
                || !service.chars().all(allowed)
            {
                return Err(Error::Invalid(
                    "service: a compose service name (letters, digits, `.`, `_`, `-`)".into(),
                ));
            }
        }
        Ok(())
    }
}

/// A log session a node is to serve: send the lines of `deployment_id` up to
/// `POST /api/v1/nodes/{node_id}/logs/{session_id}` until answered `410`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogRequest {
    /// The session (the path to send lines to).
    pub session_id: String,
    /// The deployment whose logs are wanted.
    pub deployment_id: String,
    /// Keep sending new lines.
    pub follow: bool,
    /// Only the last N lines logged before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
    /// Only lines since this time (RFC 3339 or relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only this compose service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// One line of a deployment's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// When the container wrote it (RFC 3339), when known.
    pub ts: Option<String>,
    /// The compose service that wrote it.
    pub service: String,
    /// `stdout` or `stderr` (`stdout` when the runtime merges them).
    pub stream: String,
    /// The line, without its newline.
    pub line: String,
}

/// A stored log session.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSession {
    /// What the node is told.
    pub request: LogRequest,
    /// The node that serves it.
    pub node_id: String,
    /// When the viewer opened it (epoch seconds).
    pub opened_at: f64,
    /// When the viewer was last known to be there.
    pub viewer_seen_at: f64,
    /// Why it ended (`None`: open).
    pub end_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_query_refuses_what_could_reach_a_command_line_oddly() {
        let ok = LogQuery {
            follow: Some(true),
            tail: Some(10),
            since: Some("2026-12-02T10:00:00+01:00".into()),
            service: Some("web".into()),
        };
        assert!(ok.validate().is_ok());
        for bad in [
            LogQuery {
                tail: Some(MAX_TAIL + 1),
                ..ok.clone()
            },
            LogQuery {
                since: Some("--follow".into()),
                ..ok.clone()
            },
            LogQuery {
                since: Some("1h; rm".into()),
                ..ok.clone()
            },
            LogQuery {
                service: Some(String::new()),
                ..ok.clone()
            },
            LogQuery {
                service: Some("--tail=all".into()),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
