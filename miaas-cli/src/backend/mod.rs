//! Where commands send their work: a server over HTTP, or a database directly.
//! Both implement [`Backend`], so every command is written once.

mod feeds;
mod http;
mod local;

use async_trait::async_trait;
use miaas_core::model::{
    ApiTokenInfo, CreatedApiToken, CreatedUser, Deployment, DeploymentAck, DeploymentRequest,
    JoinToken, LogQuery, NewUser, Node, NodeUpdate, PasswordChange, RenderedTemplate, Template,
    TemplateSpec, TemplateSummary, TokenRequest, User,
};
use miaas_core::placement::PlacementPlan;
use miaas_core::service::{NodeEvacuation, PlanInput};
use serde_json::Value;
use std::collections::BTreeMap;

use crate::error::Result;

pub use feeds::{EventFeed, EventsRequest, LogFeed};
pub use http::HttpBackend;
pub use local::{LocalBackend, local_options};

/// The operations the commands need, with the same answers from either backend.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Every node, by name.
    async fn list_nodes(&self) -> Result<Vec<Node>>;
    /// One node by id.
    async fn get_node(&self, node_id: &str) -> Result<Node>;
    /// Cordon/uncordon, set tags.
    async fn update_node(&self, node_id: &str, update: &NodeUpdate) -> Result<Node>;
    /// Cordon and move the node's deployments away.
    async fn drain_node(&self, node_id: &str) -> Result<NodeEvacuation>;
    /// Deregister the node.
    async fn remove_node(&self, node_id: &str) -> Result<NodeEvacuation>;
    /// Apply or remove a deployment.
    async fn submit_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck>;
    /// Every deployment, oldest first, env values redacted.
    async fn list_deployments(&self) -> Result<Vec<Deployment>>;
    /// One deployment; env values redacted unless `reveal` (admin only on a server).
    async fn get_deployment(&self, deployment_id: &str, reveal: bool) -> Result<Deployment>;
    /// Mark a deployment for deletion.
    async fn delete_deployment(&self, deployment_id: &str) -> Result<DeploymentAck>;
    /// Placement dry run.
    async fn plan(&self, input: &PlanInput) -> Result<PlacementPlan>;
    /// Every template, of `category` when given.
    async fn list_templates(&self, category: Option<&str>) -> Result<Vec<TemplateSummary>>;
    /// One template.
    async fn get_template(&self, id: &str) -> Result<Template>;
    /// Render a template without deploying it.
    async fn render_template(
        &self,
        id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<RenderedTemplate>;
    /// Add a template, or with `replace` store a new version of one.
    async fn put_template(&self, spec: TemplateSpec, replace: bool) -> Result<Template>;
    /// Remove a template.
    async fn remove_template(&self, id: &str) -> Result<()>;
    /// Every user.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Add a user.
    async fn create_user(&self, user: &NewUser) -> Result<CreatedUser>;
    /// Remove a user.
    async fn delete_user(&self, username: &str) -> Result<()>;
    /// Set a user's password.
    async fn change_password(&self, username: &str, change: &PasswordChange) -> Result<()>;
    /// Active API tokens.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>>;
    /// Create an API token.
    async fn create_api_token(&self, request: &TokenRequest) -> Result<CreatedApiToken>;
    /// Revoke an API token.
    async fn revoke_api_token(&self, id: &str) -> Result<()>;
    /// The join token.
    async fn join_token(&self) -> Result<JoinToken>;
    /// Replace the join token.
    async fn rotate_join_token(&self) -> Result<JoinToken>;
    /// The event log, followed or read.
    async fn events(&self, request: &EventsRequest) -> Result<Box<dyn EventFeed>>;
    /// A deployment's logs.
    async fn logs(&self, deployment_id: &str, query: &LogQuery) -> Result<Box<dyn LogFeed>>;
    /// Finishes the work still in flight (local mode writes its events).
    async fn finish(&self) {}
}
