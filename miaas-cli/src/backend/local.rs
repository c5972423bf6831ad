//! Local mode: the same service the server runs, on a database opened directly.
//! Access to the database file is already full access, so nothing here asks for a
//! credential (users, tokens and the join token included).

use std::collections::BTreeMap;

use async_trait::async_trait;
use miaas_core::access::Principal;

/// Who works in local mode: the person at the `miaas` command, with full access
/// (the event log records their changes as `console`).
const CONSOLE: &Principal = &Principal::Console;
use miaas_core::model::{
    ApiTokenInfo, CreatedApiToken, CreatedUser, Deployment, DeploymentAck, DeploymentRequest,
    Event, EventFilter, JoinToken, LogQuery, NewUser, Node, NodeUpdate, PasswordChange,
    RenderedTemplate, Template, TemplateSpec, TemplateSummary, TokenRequest, User,
};
use miaas_core::placement::PlacementPlan;
use miaas_core::service::{NodeEvacuation, PlanInput, Service, ServiceSettings};
use miaas_core::templates::Isolation;
use serde_json::Value;

use super::{Backend, EventFeed, EventsRequest, LogFeed};
use crate::error::{CliError, Result};
use miaas_core::secrets::{KeySettings, Redacted};
use miaas_core::store::{DatabaseLocation, StoreOptions, connect_with};

/// Works on a database through `miaas-core`'s service.
pub struct LocalBackend {
    service: Service,
}

impl LocalBackend {
    /// Opens (creating and migrating if needed) the database at `database_url`.
    pub async fn open(database_url: &str) -> Result<Self> {
        let store = connect_with(database_url, &local_options(database_url)?)
            .await
            .map_err(|err| CliError::Failed(format!("cannot open the database: {err}")))?;
        // templates render in workers of this program, as on a server
        let template_isolation = Isolation::worker_of_this_program().unwrap_or_default();
        let settings = ServiceSettings {
            template_isolation,
            ..ServiceSettings::default()
        };
        Ok(Self {
            service: Service::new(store, settings),
        })
    }
}

/// How local mode opens a database: with the keys the server would use for it
/// (`MIAAS_SECRET_KEY`, `MIAAS_SECRET_KEY_FILE`, `MIAAS_PREVIOUS_SECRET_KEYS`, or
/// the key file beside a SQLite database).
pub fn local_options(database_url: &str) -> Result<StoreOptions> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let keys = KeySettings {
        key: env("MIAAS_SECRET_KEY").map(Redacted),
        key_file: env("MIAAS_SECRET_KEY_FILE").map(Into::into),
        previous: env("MIAAS_PREVIOUS_SECRET_KEYS")
            .map(|list| list.split(',').map(|k| Redacted(k.to_string())).collect())
            .unwrap_or_default(),
    };
    Ok(StoreOptions {
        secrets: Some(keys.resolve(DatabaseLocation::default_key_file(database_url)?.as_deref())?),
        ..StoreOptions::default()
    })
}

#[async_trait]
impl Backend for LocalBackend {
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(self.service.list_nodes().await?)
    }

    async fn get_node(&self, node_id: &str) -> Result<Node> {
        Ok(self.service.get_node(node_id).await?)
    }

    async fn update_node(&self, node_id: &str, update: &NodeUpdate) -> Result<Node> {
        Ok(self.service.update_node(CONSOLE, node_id, update).await?)
    }

    async fn drain_node(&self, node_id: &str) -> Result<NodeEvacuation> {
        Ok(self.service.drain_node(CONSOLE, node_id).await?)
    }

    async fn remove_node(&self, node_id: &str) -> Result<NodeEvacuation> {
        Ok(self.service.deregister_node(CONSOLE, node_id).await?)
    }

    async fn submit_deployment(&self, request: &DeploymentRequest) -> Result<DeploymentAck> {
        Ok(self.service.submit_deployment(CONSOLE, request).await?)
    }

    async fn list_deployments(&self) -> Result<Vec<Deployment>> {
        Ok(self.service.list_deployments(CONSOLE).await?)
    }

    async fn get_deployment(&self, deployment_id: &str, reveal: bool) -> Result<Deployment> {
        Ok(self
            .service
            .get_deployment(CONSOLE, deployment_id, reveal)
            .await?)
    }

    async fn delete_deployment(&self, deployment_id: &str) -> Result<DeploymentAck> {
        Ok(self
            .service
            .delete_deployment(CONSOLE, deployment_id)
            .await?)
    }

    async fn plan(&self, input: &PlanInput) -> Result<PlacementPlan> {
        Ok(self.service.plan(input).await?)
    }

    async fn list_templates(&self, category: Option<&str>) -> Result<Vec<TemplateSummary>> {
        Ok(self.service.list_templates(category).await?)
    }

    async fn get_template(&self, id: &str) -> Result<Template> {
        Ok(self.service.get_template(id).await?)
    }

    async fn render_template(
        &self,
        id: &str,
        params: &BTreeMap<String, Value>,
    ) -> Result<RenderedTemplate> {
        Ok(self.service.render_template(id, params).await?)
    }

    async fn put_template(&self, spec: TemplateSpec, replace: bool) -> Result<Template> {
        let id = spec.id.clone();
        Ok(if replace {
            self.service.replace_template(CONSOLE, &id, spec).await?
        } else {
            self.service.create_template(CONSOLE, &id, spec).await?
        })
    }

    async fn remove_template(&self, id: &str) -> Result<()> {
        Ok(self.service.remove_template(CONSOLE, id).await?)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        Ok(self.service.list_users().await?)
    }

    async fn create_user(&self, user: &NewUser) -> Result<CreatedUser> {
        Ok(self.service.create_user(CONSOLE, user).await?)
    }

    async fn delete_user(&self, username: &str) -> Result<()> {
        Ok(self.service.delete_user(CONSOLE, username).await?)
    }

    async fn change_password(&self, username: &str, change: &PasswordChange) -> Result<()> {
        // access to the database is already full access: no old password
        Ok(self
            .service
            .change_password(CONSOLE, username, change)
            .await?)
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        Ok(self.service.list_api_tokens().await?)
    }

    async fn create_api_token(&self, request: &TokenRequest) -> Result<CreatedApiToken> {
        Ok(self.service.create_api_token(CONSOLE, request).await?)
    }

    async fn revoke_api_token(&self, id: &str) -> Result<()> {
        Ok(self.service.revoke_api_token(CONSOLE, id).await?)
    }

    async fn join_token(&self) -> Result<JoinToken> {
        Ok(self.service.join_token().await?)
    }

    async fn rotate_join_token(&self) -> Result<JoinToken> {
        Ok(self.service.rotate_join_token(CONSOLE).await?)
    }

    async fn events(&self, request: &EventsRequest) -> Result<Box<dyn EventFeed>> {
        let filter = EventFilter {
            topics: request.topics.clone(),
            types: request.types.clone(),
            admin: true,
        };
        let log = self.service.events();
        let since = request.since;
        let opened = if request.follow {
            log.follow(since, filter).await?
        } else {
            log.pages(since, filter).await?
        };
        let mut follower = opened.map_err(|gone| {
            CliError::Failed(format!(
                "events after cursor {} were removed; the oldest kept come after {}",
                since.unwrap_or_default(),
                gone.oldest
            ))
        })?;
        if request.follow {
            return Ok(Box::new(Followed {
                follower,
                batch: std::collections::VecDeque::new(),
            }));
        }
        let mut events = std::collections::VecDeque::new();
        loop {
            let batch = follower.read().await?;
            if batch.is_empty() {
                return Ok(Box::new(super::http::EventList(events)));
            }
            events.extend(batch.iter().map(|e| e.event.clone()));
        }
    }

    async fn logs(&self, _deployment_id: &str, _query: &LogQuery) -> Result<Box<dyn LogFeed>> {
        Err(CliError::Usage(
            "logs come from the node through a server: give --server (or MIAAS_SERVER)".into(),
        ))
    }

    async fn finish(&self) {
        if let Err(err) = self.service.events().flush().await {
            eprintln!("warning: events could not be written: {err}");
        }
    }
}

/// Events followed in local mode.
struct Followed {
    follower: miaas_core::events::Follower,
    batch: std::collections::VecDeque<std::sync::Arc<miaas_core::events::Published>>,
}

#[async_trait]
impl EventFeed for Followed {
    async fn next(&mut self) -> Result<Option<Event>> {
        while self.batch.is_empty() {
            self.batch.extend(self.follower.next_batch().await?);
        }
        Ok(self.batch.pop_front().map(|e| e.event.clone()))
    }
}
