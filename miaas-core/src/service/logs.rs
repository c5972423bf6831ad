//! Deployment logs. The server never connects to a node: a viewer opens a log
//! session (stored, so any replica may serve either side), the node learns of it
//! in its long-poll of the desired state and sends the lines up in batches, and
//! the viewer's replica reads them back. When the viewer leaves, the session ends
//! and the node's next batch is answered `410`, so it stops.

use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use super::Service;
use crate::model::{DeploymentStatus, LogLine, LogQuery, LogRequest, LogSession};
use crate::{Error, Result};

/// A viewer not heard from for this long has left; its session is no longer
/// handed to the node.
pub(crate) const VIEWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a reader notes that its viewer is still there.
const TOUCH_EVERY: Duration = Duration::from_secs(5);
/// How long a node has to start answering a session.
const FIRST_ANSWER: Duration = Duration::from_secs(15);
/// How often a reader looks for lines sent to another replica, and at its
/// deployment.
const POLL: Duration = Duration::from_millis(200);
/// The longest batch a node may send (bytes).
pub const MAX_LOG_BATCH: usize = 1 << 20;
/// Lines shown when the viewer does not say how many.
const DEFAULT_TAIL: u32 = 200;

/// Why a log stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// Everything asked for was sent (no `follow`).
    Complete,
    /// The deployment was deleted (or moved off the node).
    DeploymentGone(String),
    /// The node did not answer, or stopped.
    NodeSilent(String),
}

impl LogEnd {
    /// For people.
    pub fn describe(&self) -> &str {
        match self {
            LogEnd::Complete => "end of logs",
            LogEnd::DeploymentGone(why) | LogEnd::NodeSilent(why) => why,
        }
    }
}

/// A viewer's side of a log session.
pub struct LogReader {
    service: Service,
    session_id: String,
    deployment_id: String,
    node_id: String,
    after: u64,
    answered: bool,
    opened: tokio::time::Instant,
    touched: tokio::time::Instant,
    appended: watch::Receiver<u64>,
    ended: bool,
}

impl Service {
    /// Opens a log session for `deployment_id`: the node it runs (or failed) on is
    /// asked for its lines. A deployment that is not running (pending, scheduled
    /// but not started yet, lost, being deleted) is a `Conflict`, a node with too
    /// many sessions open `Throttled`.
    pub async fn open_logs(&self, deployment_id: &str, query: &LogQuery) -> Result<LogReader> {
        query.validate()?;
        let deployment = self.deployment_in_clear(deployment_id).await?;
        let node_id = match (deployment.status, deployment.node_id.as_deref()) {
            (DeploymentStatus::Running | DeploymentStatus::Failed, Some(node)) => node.to_string(),
            (DeploymentStatus::Scheduled, Some(node)) => {
                return Err(Error::Conflict(format!(
                    "deployment {deployment_id} is scheduled on node {node} but not running \
                     yet: its logs can be read once its node reports it running (or failed)"
                )));
            }
            (status, _) => {
                return Err(Error::Conflict(format!(
                    "deployment {deployment_id} is {}: it runs on no node, so it has no logs \
                     to show",
                    status.as_str()
                )));
            }
        };
        if let Some(service) = &query.service {
            let services = crate::compose::service_names(&deployment.rendered_compose);
            if !services.contains(service) {
                return Err(Error::Invalid(format!(
                    "service: deployment {deployment_id} has no service {service:?} (it has: {})",
                    services.join(", ")
                )));
            }
        }
        let now = self.now();
        let streams = self.store.streams();
        let open = streams
            .open_log_sessions(&node_id, now - VIEWER_TIMEOUT.as_secs_f64())
            .await?;
        let limit = self.settings.max_log_sessions_per_node;
        if open.len() >= limit {
            return Err(Error::Throttled {
                detail: format!(
                    "node {node_id} already serves {limit} log sessions (the most it may): \
                     try again when one ends"
                ),
                retry_after: 5,
            });
        }
        let follow = query.follow.unwrap_or(false);
        let session = LogSession {
            request: LogRequest {
                session_id: Uuid::new_v4().to_string(),
                deployment_id: deployment_id.to_string(),
                follow,
                tail: Some(query.tail.unwrap_or(DEFAULT_TAIL)),
                since: query.since.clone(),
                service: query.service.clone(),
            },
            node_id: node_id.clone(),
            opened_at: now,
            viewer_seen_at: now,
            end_reason: None,
        };
        streams.open_log_session(&session).await?;
        self.log_nodes.opened(&node_id);
        self.signals.notify([node_id.as_str()]);
        tracing::info!(%deployment_id, %node_id, session = %session.request.session_id, follow, "log session opened");
        let started = tokio::time::Instant::now();
        Ok(LogReader {
            service: self.clone(),
            session_id: session.request.session_id,
            deployment_id: deployment_id.to_string(),
            node_id,
            after: 0,
            answered: false,
            opened: started,
            touched: started,
            appended: self.log_nodes.subscribe(),
            ended: false,
        })
    }

    /// Takes a batch of lines (NDJSON of [`LogLine`]) node `token` sends for
    /// session `session_id`; `end` says it sent everything. `Gone` when the
    /// session ended (the node should stop).
    pub async fn receive_logs(
        &self,
        node_id: &str,
        token: Option<&str>,
        session_id: &str,
        batch: &str,
        end: bool,
    ) -> Result<()> {
        self.authenticate_node(node_id, token).await?;
        if batch.len() > MAX_LOG_BATCH {
            return Err(Error::Invalid(format!(
                "a batch of logs is at most {MAX_LOG_BATCH} bytes"
            )));
        }
        for (number, line) in batch.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            serde_json::from_str::<LogLine>(line).map_err(|err| {
                Error::Invalid(format!("line {}: not a log line: {err}", number + 1))
            })?;
        }
        let streams = self.store.streams();
        let session = streams
            .log_session(session_id)
            .await?
            .filter(|s| s.node_id == node_id)
            .ok_or_else(|| Error::NotFound(format!("log session {session_id} not found")))?;
        let gone = || Error::Gone(format!("log session {session_id} ended: stop sending"));
        if session.end_reason.is_some() || !streams.append_log_lines(session_id, batch).await? {
            return Err(gone());
        }
        if end {
            streams
                .end_log_session(session_id, self.now(), "complete")
                .await?;
        }
        self.log_nodes.appended();
        Ok(())
    }

    /// The log sessions node `node_id` is to serve.
    pub(crate) async fn log_requests(&self, node_id: &str) -> Result<Vec<LogRequest>> {
        if !self.fleet.shared() && !self.log_nodes.may_have(node_id) {
            return Ok(Vec::new());
        }
        let seen_after = self.now() - VIEWER_TIMEOUT.as_secs_f64();
        let sessions = self
            .store
            .streams()
            .open_log_sessions(node_id, seen_after)
            .await?;
        Ok(sessions.into_iter().map(|s| s.request).collect())
    }
}

impl LogReader {
    /// The next lines, waiting for them; `Err(end)` once the stream is over.
    pub async fn next(&mut self) -> Result<std::result::Result<Vec<LogLine>, LogEnd>> {
        loop {
            // also while lines flow: a viewer unheard of is taken for gone
            self.touch().await;
            self.appended.borrow_and_update();
            if let Some(lines) = self.read_batches().await? {
                return Ok(Ok(lines));
            }
            if let Some(end) = self.ended_by().await? {
                // a last batch may have come with the end
                if let Some(lines) = self.read_batches().await? {
                    return Ok(Ok(lines));
                }
                self.finish(&end).await;
                return Ok(Err(end));
            }
            tokio::select! {
                _ = self.appended.changed() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// The lines of the batches not read yet (`None`: there are none).
    async fn read_batches(&mut self) -> Result<Option<Vec<LogLine>>> {
        let streams = self.service.store.streams();
        loop {
            let batches = streams
                .log_batches_after(&self.session_id, self.after)
                .await?;
            let Some((last, _)) = batches.last() else {
                return Ok(None);
            };
            self.after = *last;
            self.answered = true;
            let lines: Vec<LogLine> = batches
                .iter()
                .flat_map(|(_, body)| body.lines())
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect();
            if !lines.is_empty() {
                return Ok(Some(lines));
            }
        }
    }

    /// Why the stream is over, if it is.
    async fn ended_by(&self) -> Result<Option<LogEnd>> {
        let streams = self.service.store.streams();
        let session = streams.log_session(&self.session_id).await?;
        match session.and_then(|s| s.end_reason) {
            Some(reason) if reason == "complete" => return Ok(Some(LogEnd::Complete)),
            Some(reason) => return Ok(Some(LogEnd::NodeSilent(reason))),
            None => {}
        }
        let state = self.service.fleet.state().await?;
        let deployment = state.snapshot().find(&self.deployment_id);
        let here = deployment.as_ref().is_some_and(|d| {
            d.node_id.as_deref() == Some(self.node_id.as_str()) && !d.status.is_removal()
        });
        if !here {
            let status = deployment.map_or("deleted", |d| d.status.as_str());
            return Ok(Some(LogEnd::DeploymentGone(format!(
                "deployment {} is {status}: no more logs",
                self.deployment_id
            ))));
        }
        if !self.answered && self.opened.elapsed() > FIRST_ANSWER {
            return Ok(Some(LogEnd::NodeSilent(format!(
                "node {} did not answer within {} s: is its agent running?",
                self.node_id,
                FIRST_ANSWER.as_secs()
            ))));
        }
        Ok(None)
    }

    async fn touch(&mut self) {
        if self.touched.elapsed() < TOUCH_EVERY {
            return;
        }
        self.touched = tokio::time::Instant::now();
        let now = self.service.now();
        if let Err(err) = (self.service.store.streams())
            .touch_log_session(&self.session_id, now)
            .await
        {
            tracing::debug!(error = %err, "noting a log viewer failed");
        }
    }

    async fn finish(&mut self, end: &LogEnd) {
        self.ended = true;
        let now = self.service.now();
        let _ = (self.service.store.streams())
            .end_log_session(&self.session_id, now, end.describe())
            .await;
    }
}

impl Drop for LogReader {
    /// A viewer that leaves ends its session, so the node stops.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let service = self.service.clone();
        let id = std::mem::take(&mut self.session_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let now = service.now();
                let _ = (service.store.streams())
                    .end_log_session(&id, now, "the viewer left")
                    .await;
            });
        }
    }
}

/// Which nodes this process opened log sessions for (so that, on a database only
/// this process writes, a node's long-poll asks the store only when it may have
/// one), and a signal moved by every batch
/// received here.
#[derive(Debug)]
pub(crate) struct LogNodes {
    nodes: std::sync::Mutex<std::collections::HashSet<String>>,
    appended: watch::Sender<u64>,
}

impl Default for LogNodes {
    fn default() -> Self {
        Self {
            nodes: std::sync::Mutex::default(),
            appended: watch::Sender::new(0),
        }
    }
}

impl LogNodes {
    fn opened(&self, node_id: &str) {
        if let Ok(mut nodes) = self.nodes.lock() {
            nodes.insert(node_id.to_string());
        }
    }

    /// Whether a session opened here for `node_id` may still be open.
    fn may_have(&self, node_id: &str) -> bool {
        let Ok(nodes) = self.nodes.lock() else {
            return true;
        };
        nodes.contains(node_id)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    fn appended(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }
}
