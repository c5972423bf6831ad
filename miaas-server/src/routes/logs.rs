//! Deployment logs: viewers read them over WebSocket, SSE or NDJSON; nodes send
//! them up in batches (the server never connects to a node).

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures_util::stream;
use miaas_core::model::{LogLine, LogQuery};
use miaas_core::service::{LogEnd, LogReader};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::streaming::{Format, Item, respond, stopped};
use crate::auth::{Allowed, NodeCredential, Read};
use crate::error::{ApiError, AuthErrors, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

/// The log routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deployment_logs))
        .routes(routes!(send_logs))
}

/// A deployment's logs, from the node running it.
///
/// With a WebSocket upgrade, each line is a text frame `{ts, service, stream,
/// line}` and the server closes with a reason when the logs end (code 1000) or
/// the node does not answer (1011). Without one, Server-Sent Events (one `data:`
/// per line, then an `end` event) or, with `Accept: application/x-ndjson`, one
/// line of JSON per log line and a last `{"end": reason, "error": bool}`
/// (`error`: the logs stopped short, the node did not answer). `follow=true` keeps
/// the stream open until the viewer leaves or the deployment is deleted.
/// A deployment that is not running (or failed) on a node is `409`; a node
/// already serving the most sessions is `429`.
#[utoipa::path(
    get, path = "/api/v1/deployments/{deployment_id}/logs", tag = "deployments",
    params(("deployment_id" = String, Path, description = "Deployment id"), LogQuery),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket: one text frame per line"),
        (status = 200, description = "`text/event-stream` or `application/x-ndjson`", body = [LogLine]),
        AuthErrors,
        (status = 404, description = "No such deployment", body = ErrorBody),
        (status = 409, description = "The deployment is not running on a node", body = ErrorBody),
        (status = 429, description = "The node serves the most log sessions it may", body = ErrorBody),
        (status = 422, description = "Invalid query", body = ErrorBody),
    )
)]
async fn deployment_logs(
    State(state): State<AppState>,
    Allowed(_caller, _): Allowed<Read>,
    ApiPath(deployment_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<LogQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let reader = state.service.open_logs(&deployment_id, &query).await?;
    if let Ok(upgrade) = upgrade {
        let stopping = state.stopping.clone();
        return Ok(upgrade.on_upgrade(move |socket| websocket(socket, reader, stopping)));
    }
    let format = Format::of(&headers);
    let lines = stream::unfold(Some(reader), move |reader| async move {
        let mut reader = reader?;
        let items: Vec<Item> = match reader.next().await {
            Ok(Ok(lines)) => lines.iter().map(line_item).collect(),
            Ok(Err(end)) => return Some((stream::iter(vec![end_item(&end)]), None)),
            Err(err) => {
                tracing::warn!(error = %err, "reading logs failed");
                let end = LogEnd::NodeSilent("the logs could not be read".into());
                return Some((stream::iter(vec![end_item(&end)]), None));
            }
        };
        Some((stream::iter(items), Some(reader)))
    });
    let lines = futures_util::StreamExt::flatten(lines);
    Ok(respond(format, lines, state.stopping.clone()))
}

fn line_item(line: &LogLine) -> Item {
    Item {
        json: serde_json::to_string(line).unwrap_or_default(),
        id: None,
        event: None,
    }
}

fn end_item(end: &LogEnd) -> Item {
    Item {
        json: serde_json::json!({
            "end": end.describe(),
            "error": matches!(end, LogEnd::NodeSilent(_)),
        })
        .to_string(),
        id: None,
        event: Some("end"),
    }
}

/// Sends lines as text frames until the logs end, the viewer closes, or the
/// server stops.
async fn websocket(
    mut socket: WebSocket,
    mut reader: LogReader,
    stopping: tokio::sync::watch::Receiver<bool>,
) {
    let stop = stopped(stopping);
    tokio::pin!(stop);
    let close = |code: u16, reason: &str| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.chars().take(120).collect::<String>().into(),
        }))
    };
    loop {
        tokio::select! {
            next = reader.next() => match next {
                Ok(Ok(lines)) => {
                    for line in &lines {
                        let text = serde_json::to_string(line).unwrap_or_default();
                        if socket.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(Err(end)) => {
                    let code = match end {
                        LogEnd::NodeSilent(_) => 1011,
                        _ => 1000,
                    };
                    let _ = socket.send(close(code, end.describe())).await;
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "reading logs failed");
                    let _ = socket.send(close(1011, "the logs could not be read")).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
            () = &mut stop => {
                let _ = socket.send(close(1001, "the server is shutting down")).await;
                return;
            }
        }
    }
}

/// Query of a node's batch of log lines.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct BatchQuery {
    /// `true` with the last batch of a session that does not follow.
    #[serde(default)]
    pub end: bool,
}

/// A node sends a batch of a log session's lines (NDJSON of `{ts, service,
/// stream, line}`; an empty batch says it started). `410` when the session ended
/// (the viewer left): stop sending.
#[utoipa::path(
    post, path = "/api/v1/nodes/{node_id}/logs/{session_id}", tag = "nodes",
    params(
        ("node_id" = String, Path, description = "Node id"),
        ("session_id" = String, Path, description = "Log session id, from the desired state"),
        BatchQuery,
    ),
    request_body(content = String, content_type = "application/x-ndjson"),
    security(("node_token" = [])),
    responses(
        (status = 204, description = "Stored"),
        (status = 401, description = "No valid node token", body = ErrorBody),
        (status = 403, description = "Another node's token", body = ErrorBody),
        (status = 404, description = "No such node or session", body = ErrorBody),
        (status = 410, description = "The session ended: stop sending", body = ErrorBody),
        (status = 413, description = "Batch over 1 MiB", body = ErrorBody),
        (status = 422, description = "Not log lines", body = ErrorBody),
    )
)]
async fn send_logs(
    State(state): State<AppState>,
    NodeCredential(token): NodeCredential,
    ApiPath((node_id, session_id)): ApiPath<(String, String)>,
    ApiQuery(query): ApiQuery<BatchQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = String::from_utf8(body?.to_vec()).map_err(|_| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the batch is not UTF-8 text",
        )
    })?;
    state
        .service
        .receive_logs(&node_id, token.as_deref(), &session_id, &body, query.end)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
