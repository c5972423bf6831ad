//! The agent's life: take an identity (saved, or by registering with the join
//! token, which it then drops), then heartbeat and hand the desired state to the
//! deployments' workers until told to stop. Heartbeats and the long-poll never
//! wait on the runtime: the machine is measured, and deployments are started,
//! checked and removed, in the background. When the control plane is
//! unreachable, what runs keeps running and the agent retries with jittered
//! backoff (1 s up to 30 s); when it no longer knows the node, the agent stops,
//! saying why.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miaas_core::model::{Heartbeat, NodeCapabilities, NodeRegistration};
use rand::Rng;

use crate::client::Client;
use crate::config::AgentConfig;
use crate::error::{AgentError, Result};
use crate::identity::Identity;
use crate::log_sessions::{LogSessions, Uplink};
use crate::machine;
use crate::measure::{Measured, Measurements};
use crate::reconcile::Reconciler;
use crate::runtime::Runtime;

/// Longest wait between attempts while the control plane is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest a long-poll of the desired state waits.
const MAX_LONG_POLL: Duration = Duration::from_secs(30);

struct Agent {
    config: AgentConfig,
    client: Client,
    /// The machine, measured in the background.
    measurements: Measurements,
    identity: Option<Identity>,
    registered: Option<NodeCapabilities>,
    /// The path whose disk is the node's: Docker's data root, else the state dir.
    disk_path: std::path::PathBuf,
    reconciler: Reconciler,
    next_heartbeat: Instant,
    /// Whether strays were looked for (once, on the first desired state).
    strays_removed: bool,
    /// The index of the desired state last brought about (for the long-poll).
    index: Option<u64>,
    /// The log sessions being served.
    log_sessions: LogSessions,
}

/// Runs the agent until `shutdown` completes (deployments keep running), or until
/// it cannot go on (no identity and no join token, a refused registration).
pub async fn run(
    config: AgentConfig,
    runtime: Arc<dyn Runtime>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mut config = config;
    let join = config
        .join_token
        .as_deref()
        .map(miaas_core::access::pinned::PinnedJoinToken::parse)
        .transpose()
        .map_err(|err| AgentError::Config(err.to_string()))?;
    let trust = crate::trust::agent_trust(
        &config.server,
        config.ca_cert.as_deref(),
        join.as_ref(),
        &config.state_dir,
    )
    .await?;
    // the pin chose whom to trust; the credential is the token alone
    config.join_token = join.map(|j| j.token);
    let client = Client::new(&config.server, &trust)?;
    let identity = Identity::load(&config.state_dir)?
        .filter(|i| i.server == client.base() && i.name == config.name);
    let reconciler = Reconciler::new(
        runtime.clone(),
        &config.state_dir,
        config.max_parallel_starts,
    );
    let log_sessions = LogSessions::new(runtime.clone(), config.state_dir.join("deployments"));
    let measurements = Measurements::start(
        runtime,
        config.state_dir.clone(),
        config.measure_interval,
        config.heartbeat_interval,
    );
    let mut agent = Agent {
        disk_path: config.state_dir.clone(),
        config,
        client,
        measurements,
        identity,
        registered: None,
        reconciler,
        next_heartbeat: Instant::now(),
        strays_removed: false,
        index: None,
        log_sessions,
    };
    tokio::select! {
        result = agent.live() => result,
        () = shutdown => {
            tracing::info!("agent stopping; deployments keep running");
            Ok(())
        }
    }
}

impl Agent {
    async fn live(&mut self) -> Result<()> {
        let mut backoff = Duration::from_secs(1);
        loop {
            match self.step().await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(AgentError::Unreachable(detail)) => {
                    let jitter = rand::rng().random_range(0.5..1.0);
                    let wait = backoff.mul_f64(jitter);
                    tracing::warn!(%detail, retry_in = ?wait, "control plane unreachable; deployments keep running");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(AgentError::Unknown(detail)) => {
                    tracing::warn!(%detail, "the control plane no longer knows this node");
                    Identity::forget(&self.config.state_dir);
                    self.identity = None;
                    self.registered = None;
                    if self.config.join_token.is_none() {
                        return Err(AgentError::Config(format!(
                            "the control plane no longer knows this node ({detail}), and the agent \
                             keeps no join token once registered: start it again with \
                             --join-token (MIAAS_JOIN_TOKEN) to register again"
                        )));
                    }
                }
                // a refusal of a heartbeat or a poll (the server changed its rules, a
                // bug on either side) must not leave the node's work unwatched
                Err(AgentError::Refused(detail)) => {
                    let wait = backoff.mul_f64(rand::rng().random_range(0.5..1.0));
                    tracing::error!(%detail, retry_in = ?wait, "the control plane refused; trying again");
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// One round: register if needed, heartbeat when due, reconcile.
    async fn step(&mut self) -> Result<()> {
        let due = Instant::now() >= self.next_heartbeat;
        if due {
            self.next_heartbeat = Instant::now() + self.config.heartbeat_interval;
        }
        // at start (the address or the machine may have changed while the agent
        // was down), and whenever the machine measured changed: registered again
        if self.registered.is_none()
            || self
                .measurements
                .capabilities
                .has_changed()
                .unwrap_or(false)
        {
            self.register_if_needed().await?;
        }
        let Some(identity) = self.identity.clone() else {
            return Err(AgentError::Config("no identity".into()));
        };
        if due {
            self.heartbeat(&identity).await?;
        }
        // wait for a change of the desired state until the next heartbeat is due
        let wait = self
            .next_heartbeat
            .saturating_duration_since(Instant::now())
            .min(MAX_LONG_POLL);
        let desired = self
            .client
            .desired_state(&identity.node_id, &identity.node_token, self.index, wait)
            .await?;
        let uplink = Uplink {
            client: self.client.clone(),
            node_id: identity.node_id.clone(),
            token: identity.node_token.clone(),
        };
        self.log_sessions.sync(&desired, &uplink);
        if !self.strays_removed {
            self.reconciler.remove_strays(&desired);
            self.strays_removed = true;
        }
        let check_health = due || self.index != Some(desired.index);
        self.reconciler
            .reconcile(&self.client, &identity.node_token, &desired, check_health);
        self.index = Some(desired.index);
        Ok(())
    }

    /// The machine as last measured (waiting for the first measurement).
    async fn measured(&mut self) -> Result<Measured> {
        let measured = (self.measurements.latest().await)
            .ok_or_else(|| AgentError::Config("the machine is no longer measured".into()))?;
        self.disk_path = measured.disk_path.clone();
        Ok(measured)
    }

    /// Registers on the first start (join token), and again with the node's own
    /// token when the capabilities changed.
    async fn register_if_needed(&mut self) -> Result<()> {
        let capabilities = self.measured().await?.capabilities;
        self.measurements.capabilities.mark_unchanged();
        if self.identity.is_some() && self.registered.as_ref() == Some(&capabilities) {
            return Ok(());
        }
        let ip = self
            .config
            .ip
            .or_else(|| machine::address_towards(self.client.base()))
            .map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());
        // the node keeps its token across registrations, and asks for one of its own
        // choosing on the first: an answer lost on the way changes nothing then
        let token = match &self.identity {
            Some(identity) => identity.node_token.clone(),
            None => crate::identity::pending_token(&self.config.state_dir)?,
        };
        let registration = NodeRegistration {
            name: self.config.name.clone(),
            ip,
            capabilities: capabilities.clone(),
            tags: self.config.tags.clone(),
            node_token: Some(token.clone()),
        };
        let credential = match (&self.identity, &self.config.join_token) {
            (Some(identity), _) => identity.node_token.clone(),
            (None, Some(join)) => join.clone(),
            (None, None) => {
                return Err(AgentError::Config(format!(
                    "no identity in {} and no join token: give --join-token (MIAAS_JOIN_TOKEN) \
                     for the first start",
                    self.config.state_dir.display()
                )));
            }
        };
        let answer = match self.client.register(&credential, &registration).await {
            // the name is taken: by this node, when an earlier answer was lost
            Err(AgentError::Refused(detail))
                if self.identity.is_none() && detail.starts_with("409") =>
            {
                match self.client.register(&token, &registration).await {
                    Err(AgentError::Refused(_) | AgentError::Unknown(_)) => {
                        return Err(AgentError::Rejected(format!(
                            "registering {:?} was refused: {detail}",
                            self.config.name
                        )));
                    }
                    other => other?,
                }
            }
            Err(AgentError::Refused(detail)) => {
                return Err(AgentError::Rejected(format!(
                    "registering {:?} was refused: {detail}",
                    self.config.name
                )));
            }
            // the join token itself was refused: trying again changes nothing
            Err(AgentError::Unknown(detail)) if self.identity.is_none() => {
                return Err(AgentError::Rejected(format!(
                    "registering {:?} was refused: {detail} (is the join token this server's?)",
                    self.config.name
                )));
            }
            other => other?,
        };
        let identity = Identity {
            server: self.client.base().to_string(),
            name: self.config.name.clone(),
            node_id: answer.node_id,
            node_token: answer.node_token,
        };
        identity.save(&self.config.state_dir)?;
        crate::identity::clear_pending_token(&self.config.state_dir);
        tracing::info!(node_id = %identity.node_id, name = %identity.name, "registered");
        self.identity = Some(identity);
        self.registered = Some(capabilities);
        // registered: the node's own token is its credential from now on, and the
        // cluster's join token (which registers any machine) leaves this process
        forget(self.config.join_token.take());
        Ok(())
    }

    /// Total and free MB of the disk holding Docker's data root, or else the state
    /// directory (the root's while that directory does not exist yet).
    fn disk(&self) -> Option<(u64, u64)> {
        machine::disk_of(&self.disk_path).or_else(|| machine::disk_of(std::path::Path::new("/")))
    }

    async fn heartbeat(&mut self, identity: &Identity) -> Result<()> {
        let (cpu_usage, mem_usage) = self.measurements.usage();
        let disk_free_mb = self.disk().map_or(0, |(_, free)| free);
        let heartbeat = Heartbeat {
            cpu_usage,
            mem_usage,
            disk_free_mb,
            running_containers: self.measurements.running_containers(),
            gpus: self.measurements.gpu_usage(),
            metrics: None,
        };
        self.client
            .heartbeat(&identity.node_id, &identity.node_token, &heartbeat)
            .await
    }
}

/// Drops a secret, overwriting its bytes first.
fn forget(secret: Option<String>) {
    if let Some(secret) = secret {
        let mut bytes = secret.into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}
