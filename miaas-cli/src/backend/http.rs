//! Remote mode: the server's HTTP API.

use async_trait::async_trait;
use miaas_core::access::Principal;
use miaas_core::model::{
    AccessToken, ApiTokenInfo, CreatedApiToken, CreatedUser, Deployment, DeploymentAck,
    DeploymentRequest, Event, JoinToken, LogLine, LogQuery, LoginRequest, NewUser, Node,
    NodeUpdate, PasswordChange, RenderedTemplate, Template, TemplateSpec, TemplateSummary,
    TokenRequest, User,
};
use miaas_core::placement::PlacementPlan;
use miaas_core::service::{NodeEvacuation, PlanInput};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::json;
use std::collections::BTreeMap;

use super::{Backend, EventFeed, EventsRequest, LogFeed};
use crate::error::{CliError, Result};

/// Talks to a MIaaS server.
pub struct HttpBackend {
    client: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// Items asked for per page of a list (`MIAAS_PAGE_SIZE`, default 1000).
    page_size: usize,
}

impl HttpBackend {
    /// A client of the server at `server` (e.g. `http://cp:8080`), sending `token` as
    /// a Bearer token when given, trusting only the CA certificates of `ca_cert`
    /// when given (else the system roots).
    pub fn new(
        server: &str,
        token: Option<String>,
        ca_cert: Option<&std::path::Path>,
    ) -> Result<Self> {
        let with_scheme = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        let base = Url::parse(&with_scheme)
            .map_err(|err| CliError::Usage(format!("--server {server:?} is not a URL: {err}")))?;
        let trust = match ca_cert {
            Some(path) => miaas_agent::trust::Trust::ca_file(path)
                .map_err(|err| CliError::Usage(err.to_string()))?,
            None => miaas_agent::trust::Trust::system(),
        };
        let client = trust
            .client_builder()
            .map_err(|err| CliError::Usage(err.to_string()))?
            .user_agent(concat!("miaas/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| CliError::Failed(format!("cannot set up HTTP: {err}")))?;
        Ok(Self {
            client,
            base,
            token: token.filter(|t| !t.is_empty()),
            page_size: std::env::var("MIAAS_PAGE_SIZE")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|n| (1..=miaas_core::model::page::MAX_PAGE).contains(n))
                .unwrap_or(miaas_core::model::page::MAX_PAGE),
        })
    }

    /// A password login: the server's access token.
    pub async fn login(&self, request: &LoginRequest) -> Result<AccessToken> {
        let path = ["api", "v1", "auth", "token"];
        self.call(Method::POST, &path, Some(request)).await
    }

    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| CliError::Usage(format!("--server {} cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<T> {
        let text = self.send(method, self.url(segments)?, body).await?;
        serde_json::from_str(&text)
            .map_err(|err| CliError::Failed(format!("unexpected answer from the server: {err}")))
    }

    /// As [`Self::call`], for answers without a body (`204`).
    async fn call_empty(&self, method: Method, segments: &[&str]) -> Result<()> {
        self.send(method, self.url(segments)?, NO_BODY).await?;
        Ok(())
    }

    /// Sends a request; the body of a success, or the error its `detail` says.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<String> {
        Ok(self.send_for_page(method, url, body).await?.0)
    }

    /// Every item of a paged list (`GET` of `segments`), following `X-Next-Cursor`.
    async fn all_pages<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = self.url(segments)?;
            url.query_pairs_mut()
                .append_pair("limit", &self.page_size.to_string());
            if let Some(cursor) = &cursor {
                url.query_pairs_mut().append_pair("cursor", cursor);
            }
            let (text, next) = self.send_for_page(Method::GET, url, NO_BODY).await?;
            let page: Vec<T> = serde_json::from_str(&text).map_err(|err| {
                CliError::Failed(format!("unexpected answer from the server: {err}"))
            })?;
            items.extend(page);
            match next {
                // a server that does not page (or an old one) answers everything at once
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(items),
            }
        }
    }

    /// As [`Self::send`], with the `X-Next-Cursor` of a page.
    async fn send_for_page(
        &self,
        method: Method,
        url: Url,
        body: Option<&(impl Serialize + Sync)>,
    ) -> Result<(String, Option<String>)> {
        let mut request = self.client.request(method, url.clone());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            self.not_connected(&err).unwrap_or_else(|| {
                CliError::Failed(format!(
                    "cannot reach the MIaaS server at {}: {}. Is it running? Point --server (or \
                     MIAAS_SERVER) at it",
                    self.base,
                    root_cause(&err)
                ))
            })
        })?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .text()
            .await
            .map_err(|err| CliError::Failed(format!("reading the answer of {url}: {err}")))?;
        if status.is_success() {
            return Ok((text, next));
        }
        Err(error_of(status, &text))
    }

    /// What to say when the server answered, but its certificate cannot work
    /// (whether it runs is then not the question); `None` for other failures.
    fn not_connected(&self, err: &reqwest::Error) -> Option<CliError> {
        use miaas_core::server_certificate::{
            CA_AS_SERVER_CERTIFICATE, is_ca_as_server_certificate,
        };
        is_ca_as_server_certificate(err).then(|| {
            CliError::Failed(format!(
                "cannot use the MIaaS server at {}: {CA_AS_SERVER_CERTIFICATE}",
                self.base
            ))
        })
    }

    /// Opens a stream of NDJSON at `url`.
    async fn stream(&self, url: Url) -> Result<Ndjson> {
        let mut request = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/x-ndjson");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| {
            self.not_connected(&err).unwrap_or_else(|| {
                CliError::Failed(format!(
                    "cannot reach the MIaaS server at {}: {}",
                    self.base,
                    root_cause(&err)
                ))
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(error_of(status, &text));
        }
        Ok(Ndjson {
            response,
            buffer: Vec::new(),
        })
    }
}

/// The error an answer that is not a success stands for.
fn error_of(status: StatusCode, text: &str) -> CliError {
    let detail = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(String::from))
        .unwrap_or_else(|| text.trim().to_string());
    match status {
        StatusCode::NOT_FOUND => CliError::NotFound(detail),
        StatusCode::UNAUTHORIZED => CliError::Failed(format!(
            "{detail} (401 Unauthorized): log in with `miaas login`, or pass a token with \
                 --token or MIAAS_TOKEN"
        )),
        StatusCode::FORBIDDEN => CliError::Failed(format!(
            "{detail} (403 Forbidden): this token may not do that"
        )),
        _ => CliError::Failed(format!("{detail} ({status})")),
    }
}

/// A response read as one JSON value per line.
struct Ndjson {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Ndjson {
    /// The next value; `None` at the end of the stream.
    async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(&line).map(Some).map_err(|err| {
                    CliError::Failed(format!("unexpected line from the server: {err}"))
                });
            }
            let chunk = self.response.chunk().await.map_err(|err| {
                CliError::Failed(format!("the stream broke: {}", root_cause(&err)))
            })?;
            match chunk {
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None if self.buffer.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                None => self.buffer.push(b'\n'),
            }
        }
    }
}

#[async_trait]
impl EventFeed for Ndjson {
    async fn next(&mut self) -> Result<Option<Event>> {
        Ndjson::next(self).await
    }
}

/// Log lines, and the last `{"end": why}`.
struct LogLines(Ndjson);

#[async_trait]
impl LogFeed for LogLines {
    async fn next(&mut self) -> Result<Option<LogLine>> {
        let Some(value) = self.0.next::<serde_json::Value>().await? else {
            return Ok(None);
        };
        if let Some(end) = value.get("end").and_then(|e| e.as_str()) {
            if value.get("error").and_then(serde_json::Value::as_bool) == Some(true) {
                return Err(CliError::Failed(end.to_string()));
            }
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|err| CliError::Failed(format!("unexpected line from the server: {err}")))
    }
}

/// Events read already.
pub(super) struct EventList(pub(super) std::collections::VecDeque<Event>);

#[async_trait]
impl EventFeed for EventList {
    async fn next(&mut self) -> Result<Option<Event>> {
        Ok(self.0.pop_front())
    }
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

const NO_BODY: Option<&()> = None;

#[async_trait]
impl Backend for HttpBackend {
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        self.all_pages(&["api", "v1", "nodes"]).await
    }

    async fn get_node(&self, node_id: &str) -> Result<Node> {
        self.call(Method::GET, &["api", "v1", "nodes", node_id], NO_BODY)
            .await
    }

    async fn update_node(&self, node_id: &str, update: &NodeUpdate) -> Result<Node> {
        self.call(
            Method::PATCH,
            &["api", "v1", "nodes", node_id],
            Some(update),
        )
        .await
    }

    async fn drain_node(&self, node_id: &str) -> Result<NodeEvacuation> {
        let path = ["api", "v1", "nodes", node_id, "drain"];
        self.call(Method::POST, &path, Some(&json!({}))).await
    }

    async fn remove_node(&self, node_id: &str) -> Result<NodeEvacuation> {
        self.call(Method::DELETE, &["api", "v1", "nodes", node_id], NO_BODY)
            .await
    }

    async fn submit_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck> {
        self.call(Method::POST, &["api", "v1", "deployments"], Some(request))
            .await
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        let deployments: Vec<Deployment> = self.all_pages(&["api", "v1", "deployments"]).await?;
        // a server with authentication off answers in clear; the command never
        // prints it unless asked
        (deployments.into_iter())
            .map(|d| Ok(Principal::Console.show(d, false)?))
            .collect()
    }

    async fn get_deployment(&self, deployment_id: &str, reveal: bool) -> Result<Deployment> {
        let mut url = self.url(&["api", "v1", "deployments", deployment_id])?;
        if reveal {
            url.query_pairs_mut().append_pair("reveal", "true");
        }
        let text = self.send(Method::GET, url, NO_BODY).await?;
        let deployment: Deployment = serde_json::from_str(&text)
            .map_err(|err| CliError::Failed(format!("unexpected answer from the server: {err}")))?;
        Ok(Principal::Console.show(deployment, reveal)?)
    }

    async fn delete_deployment(&self, deployment_id: &str) -> Result<DeploymentAck> {
        let path = ["api", "v1", "deployments", deployment_id];
        self.call(Method::DELETE, &path, NO_BODY).await
    }

    async fn plan(&self, input: &PlanInput) -> Result<PlacementPlan> {
        let body = match input {
            PlanInput::Requirements(requirements) => json!({ "requirements": requirements }),
            PlanInput::Compose { compose, env } => {
                json!({ "rendered_compose": compose, "env": env })
            }
            PlanInput::Template {
                template_id,
                params,
            } => json!({ "template_id": template_id, "params": params }),
        };
        self.call(
            Method::POST,
            &["api", "v1", "placement", "plan"],
            Some(&body),
        )
        .await
    }

    async fn list_templates(&self, category: Option<&str>) -> Result<Vec<TemplateSummary>> {
        let mut url = self.url(&["api", "v1", "templates"])?;
        if let Some(category) = category {
            url.query_pairs_mut().append_pair("category", category);
        }
        let text = self.send(Method::GET, url, NO_BODY).await?;
        serde_json::from_str(&text)
            .map_err(|err| CliError::Failed(format!("unexpected answer from the server: {err}")))
    }

    async fn get_template(&self, id: &str) -> Result<Template> {
        self.call(Method::GET, &["api", "v1", "templates", id], NO_BODY)
            .await
    }

    async fn render_template(
        &self,
        id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<RenderedTemplate> {
        let path = ["api", "v1", "templates", id, "render"];
        let body = json!({ "params": params });
        self.call(Method::POST, &path, Some(&body)).await
    }

    async fn put_template(&self, spec: TemplateSpec, replace: bool) -> Result<Template> {
        let method = if replace { Method::PUT } else { Method::POST };
        let id = spec.id.clone();
        self.call(method, &["api", "v1", "templates", &id], Some(&spec))
            .await
    }

    async fn remove_template(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &["api", "v1", "templates", id])
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.call(Method::GET, &["api", "v1", "users"], NO_BODY)
            .await
    }

    async fn create_user(&self, user: &NewUser) -> Result<CreatedUser> {
        self.call(Method::POST, &["api", "v1", "users"], Some(user))
            .await
    }

    async fn delete_user(&self, username: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &["api", "v1", "users", username])
            .await
    }

    async fn change_password(&self, username: &str, change: &PasswordChange) -> Result<()> {
        let url = self.url(&["api", "v1", "users", username, "password"])?;
        self.send(Method::PUT, url, Some(change)).await?;
        Ok(())
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.call(Method::GET, &["api", "v1", "tokens"], NO_BODY)
            .await
    }

    async fn create_api_token(&self, request: &TokenRequest) -> Result<CreatedApiToken> {
        self.call(Method::POST, &["api", "v1", "tokens"], Some(request))
            .await
    }

    async fn revoke_api_token(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &["api", "v1", "tokens", id])
            .await
    }

    async fn join_token(&self) -> Result<JoinToken> {
        let path = ["api", "v1", "cluster", "join-token"];
        self.call(Method::GET, &path, NO_BODY).await
    }

    async fn rotate_join_token(&self) -> Result<JoinToken> {
        let path = ["api", "v1", "cluster", "join-token", "rotate"];
        self.call(Method::POST, &path, Some(&json!({}))).await
    }

    async fn events(&self, request: &EventsRequest) -> Result<Box<dyn EventFeed>> {
        let url = |since: Option<u64>| -> Result<Url> {
            let mut url = self.url(&["api", "v1", "events"])?;
            {
                let mut query = url.query_pairs_mut();
                if let Some(since) = since {
                    query.append_pair("since", &since.to_string());
                }
                for topic in &request.topics {
                    query.append_pair("topic", topic);
                }
                for kind in &request.types {
                    query.append_pair("type", kind);
                }
                if !request.follow {
                    query.append_pair("follow", "false");
                    query.append_pair("limit", "1000");
                }
            }
            Ok(url)
        };
        if request.follow {
            return Ok(Box::new(self.stream(url(request.since)?).await?));
        }
        let mut events = std::collections::VecDeque::new();
        let mut since = request.since;
        loop {
            let (text, next) = self
                .send_for_page(Method::GET, url(since)?, NO_BODY)
                .await?;
            let page: Vec<Event> = serde_json::from_str(&text).map_err(|err| {
                CliError::Failed(format!("unexpected answer from the server: {err}"))
            })?;
            let next = next.and_then(|n| n.parse::<u64>().ok());
            let more = !page.is_empty() && next.is_some() && next != since;
            events.extend(page);
            if !more {
                return Ok(Box::new(EventList(events)));
            }
            since = next;
        }
    }

    async fn logs(&self, deployment_id: &str, query: &LogQuery) -> Result<Box<dyn LogFeed>> {
        let mut url = self.url(&["api", "v1", "deployments", deployment_id, "logs"])?;
        {
            let mut pairs = url.query_pairs_mut();
            if let Some(follow) = query.follow {
                pairs.append_pair("follow", &follow.to_string());
            }
            if let Some(tail) = query.tail {
                pairs.append_pair("tail", &tail.to_string());
            }
            if let Some(since) = &query.since {
                pairs.append_pair("since", since);
            }
            if let Some(service) = &query.service {
                pairs.append_pair("service", service);
            }
        }
        Ok(Box::new(LogLines(self.stream(url).await?)))
    }
}
