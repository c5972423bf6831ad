//! `GET /api/v1/events`: the event log, followed (SSE or NDJSON) or as a page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use miaas_core::events::{Follower, Gone, Published};
use miaas_core::model::{Event, EventFilter};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::streaming::{Format, Item, respond};
use crate::auth::{Allowed, Read};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::state::AppState;

/// The most events one page holds.
const MAX_PAGE: usize = 1_000;
/// Events in a page when `limit` is not given.
const DEFAULT_PAGE: usize = 100;

/// The event routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// `410` body: events after the cursor were removed by retention.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsGone {
    /// What happened, for people.
    pub detail: String,
    /// Follow from this cursor (the oldest kept events come after it).
    pub oldest_cursor: u64,
    /// The request's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What the query asks for.
#[derive(Debug, Default)]
struct EventsQuery {
    since: Option<u64>,
    follow: bool,
    limit: usize,
    filter: EventFilter,
}

impl EventsQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|err| invalid(format!("query: {err}")))?;
        let mut query = Self {
            follow: true,
            limit: DEFAULT_PAGE,
            ..Self::default()
        };
        for (key, value) in pairs {
            match key.as_str() {
                "since" => query.since = Some(number("since", &value)?),
                "topic" => query.filter.topics.push(value),
                "type" => query.filter.types.push(value),
                "follow" => {
                    query.follow = match value.as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid("follow: true or false".into())),
                    }
                }
                "limit" => {
                    let limit = number("limit", &value)?;
                    if !(1..=MAX_PAGE as u64).contains(&limit) {
                        return Err(invalid(format!("limit: 1 to {MAX_PAGE}")));
                    }
                    query.limit = limit as usize;
                }
                // as FastAPI does: parameters it does not know are ignored
                _ => {}
            }
        }
        if query
            .filter
            .topics
            .iter()
            .chain(&query.filter.types)
            .any(|f| f.is_empty() || f.len() > 300)
        {
            return Err(invalid("topic and type: 1 to 300 characters".into()));
        }
        Ok(query)
    }
}

fn invalid(detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn number(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse()
        .map_err(|_| invalid(format!("{name}: a whole number, not {value:?}")))
}

/// Events: every change of nodes, deployments and (admins only) users, tokens and
/// the join token, in commit order.
///
/// Followed by default, as Server-Sent Events (`id:` is the cursor; keep-alive
/// comments every 15 s; `Last-Event-ID` resumes after that cursor) or, with
/// `Accept: application/x-ndjson`, as one JSON event per line. Without `since`,
/// only new events come. `?follow=false` answers a page (a JSON array, oldest
/// first, at most `limit`, from the oldest kept when there is no `since`) with
/// the cursor to continue from in `X-Next-Cursor`. Events come strictly after the
/// cursor, never twice. A cursor older than what retention kept is `410` with
/// `oldest_cursor`. Filters: `topic` (`node`, `deployment:web-1`; repeatable),
/// `type` (`deployment.running`, or `deployment` for all; repeatable).
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        ("since" = Option<u64>, Query, description = "Events after this cursor"),
        ("topic" = Option<Vec<String>>, Query, description = "Topic filter: `node`, `deployment:ID`, ... (repeatable)"),
        ("type" = Option<Vec<String>>, Query, description = "Type filter: `deployment.running`, `node`, ... (repeatable)"),
        ("follow" = Option<bool>, Query, description = "`false`: one JSON page instead of a stream"),
        ("limit" = Option<u32>, Query, description = "Page size with `follow=false` (1 to 1000, default 100)"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this cursor (SSE reconnection)"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events: `text/event-stream`, `application/x-ndjson`, or a JSON array with `follow=false`", body = [Event]),
        (status = 400, description = "A header that is not valid HTTP (such as a control character in Last-Event-ID)"),
        AuthErrors,
        (status = 410, description = "Events after `since` were removed by retention", body = EventsGone),
        (status = 422, description = "Invalid query", body = ErrorBody),
    )
)]
async fn events(
    State(state): State<AppState>,
    Allowed(caller, _): Allowed<Read>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut query = EventsQuery::parse(raw.as_deref())?;
    if let Some(resume) = headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        query.since = Some(number("Last-Event-ID", resume.trim())?);
    }
    query.filter.admin = caller.sees_audit_log();
    let log = state.service.events();
    let opened = if query.follow {
        log.follow(query.since, query.filter).await?
    } else {
        log.pages(query.since, query.filter).await?
    };
    let follower = match opened {
        Ok(follower) => follower,
        Err(Gone { oldest }) => return Ok(gone(query.since.unwrap_or_default(), oldest)),
    };
    if !query.follow {
        return page(follower, query.limit).await;
    }
    let items = stream::unfold(follower, |mut follower| async move {
        loop {
            match follower.next_batch().await {
                Ok(batch) => return Some((stream::iter(batch.into_iter().map(item)), follower)),
                Err(err) => {
                    tracing::warn!(error = %err, "reading events failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });
    let items = futures_util::StreamExt::flatten(items);
    Ok(respond(Format::of(&headers), items, state.stopping.clone()))
}

fn item(published: Arc<Published>) -> Item {
    Item {
        json: published.json.clone(),
        id: Some(published.event.cursor.to_string()),
        event: None,
    }
}

async fn page(mut follower: Follower, limit: usize) -> Result<Response, ApiError> {
    let mut events = follower.read().await?;
    let next = if events.len() > limit {
        events.truncate(limit);
        events.last().map_or(follower.cursor(), |e| e.event.cursor)
    } else {
        follower.cursor()
    };
    let body: Vec<&Event> = events.iter().map(|e| &e.event).collect();
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&next.to_string()) {
        response.headers_mut().insert("x-next-cursor", value);
    }
    Ok(response)
}

fn gone(since: u64, oldest: u64) -> Response {
    let body = EventsGone {
        detail: format!(
            "events after cursor {since} were removed (kept: after {oldest}); follow from \
             {oldest} and accept the gap, or re-read the current state"
        ),
        oldest_cursor: oldest,
        request_id: miaas_core::events::origin::request_id(),
    };
    (StatusCode::GONE, Json(body)).into_response()
}
