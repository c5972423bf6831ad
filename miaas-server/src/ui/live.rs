//! The dashboard's live parts, over Server-Sent Events: word of every change
//! (pages re-read their live section), and a deployment's log lines as HTML.

use axum::extract::{Query, State};
use axum::response::Response;
use futures_util::stream;
use miaas_core::model::{EventFilter, LogLine, LogQuery};
use miaas_core::service::LogEnd;

use super::session::Viewer;
use crate::routes::streaming::{Format, Item, respond};
use crate::state::AppState;

/// The least time between two `change` events of one stream.
const CHANGE_PACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What `/ui/stream` sends.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StreamQuery {
    /// The newest event the page knew of.
    since: Option<u64>,
    /// A deployment whose log lines to send too.
    logs: Option<String>,
}

/// `GET /ui/stream`: the page's one event stream. An SSE event `change` when
/// events the viewer may see came after `since` (the page's own cursor), at most
/// one a second and the last never left out; with
/// `logs`, also that deployment's log lines (`line`, as HTML) and why they ended
/// (`end`).
pub async fn changes(
    State(state): State<AppState>,
    Query(query): Query<StreamQuery>,
    viewer: Viewer,
) -> Response {
    let filter = EventFilter {
        topics: Vec::new(),
        types: Vec::new(),
        admin: viewer.principal.sees_audit_log(),
    };
    let follower = match state.service.events().follow(query.since, filter).await {
        Ok(Ok(follower)) => follower,
        _ => return empty(&state),
    };
    // at most one `change` a second, and never one dropped: after each, the
    // stream waits, then sends one for whatever came meanwhile (the pages re-read
    // on every `change`, so the last state is always shown)
    let changes = stream::unfold((follower, false), |(mut follower, sent)| async move {
        if sent {
            tokio::time::sleep(CHANGE_PACE).await;
        }
        loop {
            match follower.next_batch().await {
                Ok(batch) if !batch.is_empty() => {
                    let kind = batch
                        .last()
                        .map(|p| p.event.kind.clone())
                        .unwrap_or_default();
                    let item = Item {
                        json: kind,
                        id: None,
                        event: Some("change"),
                    };
                    return Some((item, (follower, true)));
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "reading events for the dashboard failed");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    let Some(deployment_id) = query.logs else {
        return viewer.finish(respond(Format::Sse, changes, state.stopping.clone()));
    };
    let lines = log_lines(&state, &deployment_id).await;
    let both = stream::select(changes, lines);
    viewer.finish(respond(Format::Sse, both, state.stopping.clone()))
}

/// A deployment's log lines as SSE items (`line`), then why they ended (`end`).
async fn log_lines(
    state: &AppState,
    deployment_id: &str,
) -> futures_util::stream::BoxStream<'static, Item> {
    use futures_util::StreamExt;
    let query = LogQuery {
        follow: Some(true),
        tail: Some(200),
        ..LogQuery::default()
    };
    let reader = match state.service.open_logs(deployment_id, &query).await {
        Ok(reader) => reader,
        Err(err) => return stream::iter(vec![ended(&err.to_string())]).boxed(),
    };
    stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let items: Vec<Item> = match reader.next().await {
            Ok(Ok(lines)) => lines.iter().map(line).collect(),
            Ok(Err(end)) => return Some((stream::iter(vec![ended(end.describe())]), None)),
            Err(err) => {
                tracing::warn!(error = %err, "reading logs for the dashboard failed");
                let end = LogEnd::NodeSilent("the logs could not be read".into());
                return Some((stream::iter(vec![ended(end.describe())]), None));
            }
        };
        Some((stream::iter(items), Some(reader)))
    })
    .flatten()
    .boxed()
}

fn empty(state: &AppState) -> Response {
    respond(Format::Sse, stream::empty(), state.stopping.clone())
}

/// A log line as HTML: its service and its text, escaped.
fn line(line: &LogLine) -> Item {
    Item {
        json: format!(
            "<div class=\"log-line\"><span class=\"log-service\">{}</span> {}</div>",
            escape(&line.service),
            escape(&line.line)
        ),
        id: None,
        event: Some("line"),
    }
}

fn ended(why: &str) -> Item {
    Item {
        json: format!("<div class=\"log-end\">{}</div>", escape(why)),
        id: None,
        event: Some("end"),
    }
}

/// Text as HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
