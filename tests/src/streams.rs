//! Reading streamed answers: NDJSON lines and Server-Sent Events, each read with
//! a deadline so that a test waiting for something that never comes fails.

use std::time::Duration;

use serde_json::Value;

/// How long a test waits for the next item of a stream.
pub const STREAM_PATIENCE: Duration = Duration::from_secs(30);

/// A streamed answer read line by line.
pub struct Lines {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Lines {
    /// Reads `response`'s body as it comes.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next line (without its newline); `None` when the stream ended. Fails
    /// the test after [`STREAM_PATIENCE`] without one.
    pub async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                return Some(text.trim_end_matches('\r').to_string());
            }
            let chunk = tokio::time::timeout(STREAM_PATIENCE, self.response.chunk())
                .await
                .expect("the stream sends something in time")
                .expect("the stream reads");
            match chunk {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None if self.buffer.is_empty() => return None,
                None => self.buffer.push(b'\n'),
            }
        }
    }

    /// The next JSON value of an NDJSON stream (blank keep-alive lines skipped).
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            let line = self.next_line().await?;
            if line.trim().is_empty() {
                continue;
            }
            return Some(serde_json::from_str(&line).expect("a JSON line"));
        }
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    /// Its `id:`.
    pub id: Option<String>,
    /// Its `event:` name.
    pub event: Option<String>,
    /// Its `data:`, lines joined.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("JSON data")
    }
}

/// A `text/event-stream` answer.
pub struct Sse(Lines);

impl Sse {
    /// Reads `response` as Server-Sent Events.
    pub fn new(response: reqwest::Response) -> Self {
        Self(Lines::new(response))
    }

    /// The next event (comments and keep-alives skipped); `None` at the end.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        let mut event = SseEvent::default();
        let mut any = false;
        loop {
            let line = self.0.next_line().await?;
            if line.is_empty() {
                if any {
                    return Some(event);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            any = true;
            match field {
                "id" => event.id = Some(value.to_string()),
                "event" => event.event = Some(value.to_string()),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
        }
    }
}
