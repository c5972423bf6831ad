//! What the streaming routes share: choosing between Server-Sent Events and
//! NDJSON from `Accept`, and ending every stream when the server shuts down (a
//! graceful shutdown waits for responses to finish; a stream never would).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::watch;

/// The media type of newline-delimited JSON.
pub const NDJSON: &str = "application/x-ndjson";

/// How often an idle SSE stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How a stream is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/event-stream` (the default).
    Sse,
    /// One JSON value per line (`Accept: application/x-ndjson`).
    Ndjson,
}

impl Format {
    /// The format `headers` ask for.
    pub fn of(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept.contains(NDJSON) || accept.contains("application/jsonl") {
            Self::Ndjson
        } else {
            Self::Sse
        }
    }
}

/// One item of a stream: its JSON, and for SSE its `id:` and `event:`.
pub struct Item {
    /// The JSON text.
    pub json: String,
    /// SSE `id:` (the cursor), if any.
    pub id: Option<String>,
    /// SSE `event:` name, if not the default `message`.
    pub event: Option<&'static str>,
}

/// `items` as a response in `format`, ending when the server shuts down.
pub fn respond(
    format: Format,
    items: impl Stream<Item = Item> + Send + 'static,
    stopping: watch::Receiver<bool>,
) -> Response {
    let items = items.take_until(stopped(stopping));
    match format {
        Format::Sse => {
            let events = items.map(|item| {
                let mut event = SseEvent::default().data(item.json);
                if let Some(id) = item.id {
                    event = event.id(id);
                }
                if let Some(name) = item.event {
                    event = event.event(name);
                }
                Ok::<_, Infallible>(event)
            });
            Sse::new(events)
                .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
                .into_response()
        }
        Format::Ndjson => {
            let lines = items
                .map(|item| {
                    let mut line = item.json.into_bytes();
                    line.push(b'\n');
                    Some(Bytes::from(line))
                })
                .chain(stream::once(std::future::ready(None)));
            // blank lines while idle: a viewer gone away is noticed when one cannot
            // be written, and proxies keep the stream open
            let start = tokio::time::Instant::now() + KEEP_ALIVE;
            let blank = stream::unfold(
                tokio::time::interval_at(start, KEEP_ALIVE),
                |mut every| async {
                    every.tick().await;
                    Some((Some(Bytes::from_static(b"\n")), every))
                },
            );
            let body = stream::select(lines, blank)
                .take_while(|line| std::future::ready(line.is_some()))
                .filter_map(|line| std::future::ready(line.map(Ok::<_, Infallible>)));
            let mut response = Body::from_stream(body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    }
}

/// Completes when the server starts shutting down.
pub async fn stopped(mut stopping: watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            return;
        }
    }
}
