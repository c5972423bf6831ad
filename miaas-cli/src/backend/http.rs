//! Remote mode: the server's HTTP API.

use async_trait::async_trait;
use miaas_core::access::Principal;
use miaas_core::model::{
    AccessToken, ApiTokenInfo, CreatedApiToken, CreatedUser, Deployment, DeploymentAck,
    DeploymentRequest, JoinToken, LoginRequest, NewUser, Node, NodeUpdate, PasswordChange,
    TokenRequest, User,
};
use miaas_core::placement::PlacementPlan;
use miaas_core::service::{NodeEvacuation, PlanInput};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Backend;
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
    /// a Bearer token when given.
    pub fn new(server: &str, token: Option<String>) -> Result<Self> {
        let with_scheme = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        let base = Url::parse(&with_scheme)
            .map_err(|err| CliError::Usage(format!("--server {server:?} is not a URL: {err}")))?;
        let client = reqwest::Client::builder()
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
            CliError::Failed(format!(
                "cannot reach the MIaaS server at {}: {}. Is it running? Point --server (or \
                 MIAAS_SERVER) at it",
                self.base,
                root_cause(&err)
            ))
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
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(String::from))
            .unwrap_or_else(|| text.trim().to_string());
        Err(match status {
            StatusCode::NOT_FOUND => CliError::NotFound(detail),
            StatusCode::UNAUTHORIZED => CliError::Failed(format!(
                "{detail} (401 Unauthorized): log in with `miaas login`, or pass a token with \
                 --token or MIAAS_TOKEN"
            )),
            StatusCode::FORBIDDEN => CliError::Failed(format!(
                "{detail} (403 Forbidden): this token may not do that"
            )),
            _ => CliError::Failed(format!("{detail} ({status})")),
        })
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
            PlanInput::Compose(compose) => json!({ "rendered_compose": compose }),
        };
        self.call(
            Method::POST,
            &["api", "v1", "placement", "plan"],
            Some(&body),
        )
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
}
