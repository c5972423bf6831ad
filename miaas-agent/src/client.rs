//! The control plane's node protocol over HTTP: register, heartbeat, desired
//! state and status reports. Errors say whether to retry (`Unreachable`), to
//! register again (`Unknown`) or to give up (`Refused`).

use std::time::Duration;

use miaas_core::model::{
    DesiredState, Heartbeat, NodeRegistration, RegistrationResponse, StatusReport,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{AgentError, Result};

/// How long a request may take (a long-poll: on top of its wait).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one control plane.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`), trusting `trust`.
    pub fn new(base: &str, trust: &crate::trust::Trust) -> Result<Self> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(AgentError::Config(format!(
                "--server {base:?} is not an http:// or https:// URL"
            )));
        }
        let http = trust
            .client_builder()?
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|err| AgentError::Config(format!("cannot build an HTTP client: {err}")))?;
        Ok(Self { base, http })
    }

    /// The server's URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Registers (or re-registers) with `credential`: the join token, or the node's
    /// own token when it updates itself.
    pub async fn register(
        &self,
        credential: &str,
        registration: &NodeRegistration,
    ) -> Result<RegistrationResponse> {
        self.call(
            Method::POST,
            "/api/v1/nodes/register",
            credential,
            Some(registration),
        )
        .await
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self, node_id: &str, token: &str, heartbeat: &Heartbeat) -> Result<()> {
        let path = format!("/api/v1/nodes/{node_id}/heartbeat");
        self.call::<serde_json::Value>(Method::POST, &path, token, Some(heartbeat))
            .await
            .map(drop)
    }

    /// What this node should run and remove: at once without `index`, else as
    /// soon as it differs from the state of that index, or after `wait` (a
    /// long-poll).
    pub async fn desired_state(
        &self,
        node_id: &str,
        token: &str,
        index: Option<u64>,
        wait: Duration,
    ) -> Result<DesiredState> {
        let path = match index {
            // a wait under a millisecond is no wait: ask for the state as it is
            Some(index) if wait.as_millis() > 0 => format!(
                "/api/v1/nodes/{node_id}/deployments?wait={}ms&index={index}",
                wait.as_millis()
            ),
            _ => format!("/api/v1/nodes/{node_id}/deployments"),
        };
        self.call_within(
            Method::GET,
            &path,
            token,
            None::<&()>,
            wait + REQUEST_TIMEOUT,
        )
        .await
    }

    /// Reports a deployment's status.
    pub async fn report(
        &self,
        deployment_id: &str,
        token: &str,
        report: &StatusReport,
    ) -> Result<()> {
        let path = format!("/api/v1/deployments/{deployment_id}/status");
        self.call::<serde_json::Value>(Method::POST, &path, token, Some(report))
            .await
            .map(drop)
    }

    /// Sends a batch of log lines (NDJSON) for log session `session_id`; `false`
    /// when the session ended (stop sending).
    pub async fn send_logs(
        &self,
        node_id: &str,
        token: &str,
        session_id: &str,
        batch: String,
        end: bool,
    ) -> Result<bool> {
        let url = format!(
            "{}/api/v1/nodes/{node_id}/logs/{session_id}?end={end}",
            self.base
        );
        let response = self
            .http
            .post(url)
            .timeout(REQUEST_TIMEOUT)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(batch)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        if status == StatusCode::GONE || status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let detail = response.text().await.unwrap_or_default();
        Err(AgentError::Refused(format!("{status}: {detail}")))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T> {
        self.call_within(method, path, token, body, REQUEST_TIMEOUT)
            .await
    }

    async fn call_within<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&(impl Serialize + Sync)>,
        timeout: Duration,
    ) -> Result<T> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(timeout)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_str(&text)
                .map_err(|err| AgentError::Refused(format!("unexpected answer to {path}: {err}")));
        }
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["detail"].as_str().map(str::to_string))
            .unwrap_or(text);
        // a 404 says the node is unknown only on the node's own paths; on a
        // deployment's, that the deployment is gone
        let node_path = path.starts_with("/api/v1/nodes/");
        Err(match status {
            StatusCode::UNAUTHORIZED => AgentError::Unknown(format!("{status}: {detail}")),
            StatusCode::NOT_FOUND if node_path => {
                AgentError::Unknown(format!("{status}: {detail}"))
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                AgentError::Unreachable(format!("{status}: {detail}"))
            }
            _ => AgentError::Refused(format!("{status}: {detail}")),
        })
    }
}

/// A request that got no answer. A server whose certificate is a CA's is told
/// in words (see [`miaas_core::server_certificate`]): it answers, but no client
/// will take its certificate until it is replaced.
fn unreachable(err: reqwest::Error) -> AgentError {
    use miaas_core::server_certificate::{CA_AS_SERVER_CERTIFICATE, is_ca_as_server_certificate};
    if is_ca_as_server_certificate(&err) {
        return AgentError::Unreachable(CA_AS_SERVER_CERTIFICATE.to_string());
    }
    AgentError::Unreachable(err.to_string())
}

#[cfg(test)]
mod tests {
    use miaas_core::model::ReportedStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server answering every request `404` with a JSON detail.
    async fn not_found_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = r#"{"detail":"not found"}"#;
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_404_means_an_unknown_node_only_on_the_nodes_own_paths() {
        let client =
            Client::new(&not_found_server().await, &crate::trust::Trust::system()).unwrap();
        let heartbeat = client.heartbeat("n", "t", &Heartbeat::default()).await;
        assert!(
            matches!(heartbeat, Err(AgentError::Unknown(_))),
            "{heartbeat:?}"
        );
        let report = StatusReport {
            status: ReportedStatus::Running,
            message: None,
            health: None,
            restarts: None,
        };
        let reported = client.report("gone", "t", &report).await;
        assert!(
            matches!(reported, Err(AgentError::Refused(_))),
            "{reported:?}"
        );
        assert!(Client::new("ftp://x", &crate::trust::Trust::system()).is_err());
    }

    /// A server answering one request with an empty desired state; the request
    /// line it received comes out of the receiver.
    async fn desired_state_server() -> (String, tokio::sync::oneshot::Receiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen, received) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let read = stream.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..read]).into_owned();
            let _ = seen.send(head.lines().next().unwrap_or_default().to_string());
            let body = r#"{"node_id":"n","deployments":[],"remove":[],"index":7}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
        (format!("http://{addr}"), received)
    }

    #[tokio::test]
    async fn a_poll_due_now_asks_without_a_zero_wait() {
        let (server, received) = desired_state_server().await;
        let client = Client::new(&server, &crate::trust::Trust::system()).unwrap();
        let state = client
            .desired_state("n", "t", Some(5), Duration::from_micros(300))
            .await
            .unwrap();
        assert_eq!(state.index, 7);
        let line = received.await.unwrap();
        assert_eq!(line, "GET /api/v1/nodes/n/deployments HTTP/1.1");
    }
}
