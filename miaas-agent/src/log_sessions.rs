//! Serving log sessions: for each one the desired state lists, read the
//! deployment's lines from the runtime and send them up in batches (at most 500
//! lines or 200 ms apart); stop when the control plane answers that the session
//! ended (the viewer left), or when it is no longer listed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use miaas_core::model::{DesiredState, LogLine, LogRequest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::runtime::{Runtime, folder_name};
use crate::worker::project_of;

/// Lines sent in one batch at most.
const BATCH_LINES: usize = 500;
/// How long lines wait to be sent with others.
const BATCH_DELAY: Duration = Duration::from_millis(200);

/// The sessions being served.
pub(crate) struct LogSessions {
    runtime: Arc<dyn Runtime>,
    deployments_dir: PathBuf,
    serving: HashMap<String, JoinHandle<()>>,
}

/// Where a session sends its lines.
#[derive(Clone)]
pub(crate) struct Uplink {
    pub(crate) client: Client,
    pub(crate) node_id: String,
    pub(crate) token: String,
}

impl LogSessions {
    pub(crate) fn new(runtime: Arc<dyn Runtime>, deployments_dir: PathBuf) -> Self {
        Self {
            runtime,
            deployments_dir,
            serving: HashMap::new(),
        }
    }

    /// Starts the sessions `desired` lists that are not served yet, and stops
    /// those it no longer lists.
    pub(crate) fn sync(&mut self, desired: &DesiredState, uplink: &Uplink) {
        self.serving.retain(|id, task| {
            let listed = desired.logs.iter().any(|r| &r.session_id == id);
            if !listed {
                task.abort();
            }
            listed && !task.is_finished()
        });
        for request in &desired.logs {
            if self.serving.contains_key(&request.session_id) {
                continue;
            }
            let task = tokio::spawn(serve(
                self.runtime.clone(),
                self.deployments_dir
                    .join(folder_name(&request.deployment_id)),
                request.clone(),
                uplink.clone(),
            ));
            self.serving.insert(request.session_id.clone(), task);
        }
    }
}

impl Drop for LogSessions {
    fn drop(&mut self) {
        for task in self.serving.values() {
            task.abort();
        }
    }
}

/// Serves one session to its end.
async fn serve(runtime: Arc<dyn Runtime>, dir: PathBuf, request: LogRequest, uplink: Uplink) {
    let session = request.session_id.clone();
    let (sender, mut lines) = mpsc::channel::<LogLine>(BATCH_LINES * 2);
    // the project the deployment runs as (its folder's record), not the name
    // its id would get now: an older agent's name may be another id's today
    let project = project_of(&request.deployment_id, &dir);
    let reader = {
        let request = request.clone();
        tokio::spawn(async move { runtime.logs(&project, &dir, &request, sender).await })
    };
    // an empty first batch says the node took the session
    if !send(&uplink, &session, String::new(), false).await {
        reader.abort();
        return;
    }
    let mut open = true;
    while open {
        let mut batch = String::new();
        let mut count = 0;
        let deadline = tokio::time::sleep(BATCH_DELAY);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(line) => {
                        if let Ok(json) = serde_json::to_string(&line) {
                            batch.push_str(&json);
                            batch.push('\n');
                            count += 1;
                        }
                        if count >= BATCH_LINES {
                            break;
                        }
                    }
                    None => {
                        open = false;
                        break;
                    }
                },
                () = &mut deadline, if count > 0 => break,
            }
        }
        if !open {
            if let Ok(Err(message)) = reader.await {
                let line = LogLine {
                    ts: None,
                    service: String::new(),
                    stream: "stderr".into(),
                    line: format!("miaas-agent: {message}"),
                };
                if let Ok(json) = serde_json::to_string(&line) {
                    batch.push_str(&json);
                    batch.push('\n');
                }
            }
            send(&uplink, &session, batch, true).await;
            return;
        }
        if !send(&uplink, &session, batch, false).await {
            reader.abort();
            return;
        }
    }
}

/// Sends a batch; `false` when the session is over (or cannot be reached).
async fn send(uplink: &Uplink, session: &str, batch: String, end: bool) -> bool {
    let sent = uplink
        .client
        .send_logs(&uplink.node_id, &uplink.token, session, batch, end)
        .await;
    match sent {
        Ok(open) => open,
        Err(err) => {
            tracing::warn!(%session, error = %err, "sending logs failed; the session stops");
            false
        }
    }
}
