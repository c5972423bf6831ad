//! The rules of the control plane, over a [`Store`] and a [`Clock`]. The server's
//! handlers and the CLI's local mode both call this, so they cannot disagree.

mod access;
mod agent;
mod deployments;
mod desired_index;
mod endpoints;
mod fleet_watch;
mod lifecycle;
mod logs;
mod node_documents;
mod node_pages;
mod nodes;
#[cfg(test)]
mod placement_properties;
mod signals;
mod templates;

use std::sync::Arc;
use std::time::Duration;

use crate::Result;
use crate::access::Principal;
use crate::clock::{Clock, SystemClock};
use crate::fleet::{Fleet, FleetState};
use crate::model::{Deployment, Event, NewEvent};
use crate::placement::{PlacementEngine, PlacementSettings};
use crate::store::Store;

pub use access::BootstrapCredentials;
pub use deployments::{ACCEPTED_MESSAGE, PlanInput};
pub use fleet_watch::{FleetTotals, NodeTotals};
pub use logs::{LogEnd, LogReader, MAX_LOG_BATCH};
pub use node_pages::NodePageValidity;
pub use nodes::{MovedDeployment, NodeCredentials, NodeEvacuation};

/// How long a health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// Tunables of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSettings {
    /// A node not seen for longer than this is `offline`.
    pub heartbeat_timeout: Duration,
    /// How long deployments of an offline node stay `lost` before they are placed
    /// elsewhere, so a flapping network does not reshuffle the fleet.
    pub reschedule_grace: Duration,
    /// Whether lost deployments are placed elsewhere after the grace.
    pub reschedule_lost: bool,
    /// How placement scores nodes.
    pub placement: PlacementSettings,
    /// How long an access token from a password login stays valid.
    pub access_token_ttl: Duration,
    /// The least role that may deploy compose documents with host access
    /// (privileged, host namespaces, capabilities, devices, host paths).
    pub host_access_role: crate::model::Role,
    /// The most log sessions one node serves at once.
    pub max_log_sessions_per_node: usize,
    /// The most events kept.
    pub event_retention_count: u64,
    /// How long events are kept.
    pub event_retention_age: Duration,
    /// Where templates are rendered (a worker process bounds their memory).
    pub template_isolation: crate::templates::Isolation,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(30),
            reschedule_grace: Duration::from_secs(60),
            reschedule_lost: true,
            placement: PlacementSettings::default(),
            access_token_ttl: Duration::from_secs(3600),
            host_access_role: crate::model::Role::Admin,
            max_log_sessions_per_node: 8,
            event_retention_count: 100_000,
            event_retention_age: Duration::from_secs(7 * 24 * 3600),
            template_isolation: crate::templates::Isolation::InProcess,
        }
    }
}

/// The control plane's operations. Cheap to clone (one reference count): every
/// request's handler holds one, and clones share everything.
#[derive(Clone)]
pub struct Service(Arc<Shared>);

impl std::ops::Deref for Service {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every clone of a [`Service`] shares.
pub struct Shared {
    store: Arc<dyn Store>,
    /// The nodes, deployments and node tokens in memory, with the placement
    /// ledger: every read of them, and every write.
    fleet: Fleet,
    clock: Arc<dyn Clock>,
    settings: ServiceSettings,
    engine: PlacementEngine,
    signing_key: Arc<tokio::sync::OnceCell<crate::access::jwt::SigningKey>>,
    login_backoff: Arc<crate::access::login_backoff::LoginBackoff>,
    password_work: crate::access::password::PasswordWork,
    /// What long-polls of the desired state wait on: this service's writes and,
    /// once the first poll asks, the store's word of other replicas' writes.
    signals: Arc<signals::NodeSignals>,
    listening: Arc<std::sync::Once>,
    /// Whether a reconcile goes on in the background.
    reconciling: Arc<std::sync::atomic::AtomicBool>,
    /// Reconciles after a change that may free or add capacity, one for all the
    /// changes that came before it began.
    reconcile_rounds: Arc<crate::fleet::Rounds<bool>>,
    /// Nodes with log sessions opened here, and word of lines received.
    log_nodes: logs::LogNodes,
    /// The offline transitions this process has seen (and recorded).
    offline_announced: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The index of each node's desired state, for long-polls.
    desired_indexes: desired_index::DesiredIndexes,
    /// Every change, for followers.
    events: Arc<crate::events::EventLog>,
    /// The built-in templates and those of a templates folder.
    catalog: std::sync::RwLock<Arc<crate::templates::Catalog>>,
    /// Renders templates within their bounds.
    renderer: crate::templates::Renderer,
    /// The documents nodes are sent, by deployment revision.
    node_documents: node_documents::NodeDocuments,
    /// When this service started (epoch seconds): until a heartbeat timeout has
    /// passed, nodes not yet heard from are not taken for dead.
    started_at: f64,
}

impl Service {
    /// A service on `store` reading the wall clock.
    pub fn new(store: Arc<dyn Store>, settings: ServiceSettings) -> Self {
        Self::with_clock(store, Arc::new(SystemClock), settings)
    }

    /// A service reading `clock` (tests move it by hand).
    pub fn with_clock(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
    ) -> Self {
        Self(Arc::new(Shared {
            started_at: clock.now(),
            events: crate::events::EventLog::new(store.clone()),
            catalog: std::sync::RwLock::new(
                Arc::new(crate::templates::Catalog::builtin_or_empty()),
            ),
            renderer: crate::templates::Renderer::new(settings.template_isolation.clone()),
            node_documents: node_documents::NodeDocuments::default(),
            log_nodes: logs::LogNodes::default(),
            offline_announced: std::sync::Mutex::default(),
            desired_indexes: desired_index::DesiredIndexes::default(),
            fleet: Fleet::new(
                store.clone(),
                clock.clone(),
                !store.exclusive(),
                settings.heartbeat_timeout.as_secs_f64(),
            ),
            store,
            clock,
            engine: PlacementEngine::new(settings.placement),
            signing_key: Arc::default(),
            login_backoff: Arc::default(),
            password_work: crate::access::password::PasswordWork::default(),
            signals: Arc::default(),
            listening: Arc::new(std::sync::Once::new()),
            reconciling: Arc::default(),
            reconcile_rounds: Arc::default(),
            settings,
        }))
    }

    /// Decides and commits one change, possibly in a transaction shared with
    /// concurrent ones (so `change` owns what it uses): `change` returns what to
    /// write and its own result, which comes back, once committed, with what was
    /// written. Records its events as `caller`'s and tells long-polls that the
    /// fleet moved.
    async fn transact<T: Send + 'static>(
        &self,
        caller: Option<&Principal>,
        change: impl Fn(&FleetState) -> Result<(Vec<Deployment>, T)> + Send + Sync + 'static,
    ) -> Result<(Vec<Deployment>, T)> {
        let decided = self.fleet.decide(with_events(change)).await;
        self.decided(caller, decided)
    }

    /// What a decision wrote, with its result; wakes the long-polls of the nodes it
    /// touched (every node's, when it failed: it may have committed all the same)
    /// and records its events as `caller`'s.
    fn decided<T>(
        &self,
        caller: Option<&Principal>,
        decided: Result<Decided<T>>,
    ) -> Result<(Vec<Deployment>, T)> {
        let (writes, (outcome, events)) = decided.inspect_err(|_| {
            self.signals.notify_all();
            crate::telemetry::schedule_error();
        })?;
        self.signals.notify_written(&writes);
        self.record(caller, events);
        Ok((writes, outcome))
    }

    /// Records events of a change `caller` just made (`None`: the control plane's
    /// own work), now, with the address of the request being served.
    pub(crate) fn record(&self, caller: Option<&Principal>, events: Vec<Event>) {
        self.record_new(caller, events.into_iter().map(NewEvent::from).collect());
    }

    /// As [`Self::record`], with dedupe keys.
    pub(crate) fn record_new(&self, caller: Option<&Principal>, mut events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        let origin = crate::events::Origin::current();
        let actor = caller.and_then(Principal::actor);
        let now = self.now();
        for new in &mut events {
            new.event.time = now;
            if new.event.actor.is_none() {
                new.event.actor.clone_from(&actor);
            }
            if let Some(origin) = &origin {
                new.event.client.clone_from(&origin.client);
            }
        }
        self.events.emit(events);
    }

    /// The event log.
    pub fn events(&self) -> &Arc<crate::events::EventLog> {
        &self.events
    }

    /// From the first long-poll on, other replicas' writes wake polls here too.
    pub(crate) fn listen_to_other_writers(&self) {
        self.listening.call_once(|| {
            let signals = self.signals.clone();
            self.store
                .listen_fleet(Arc::new(move |nodes: Option<&[String]>| match nodes {
                    Some(nodes) => signals.notify(nodes.iter().map(String::as_str)),
                    None => signals.notify_all(),
                }));
        });
    }

    /// The settings in force.
    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// `Ok` when the database answers.
    pub async fn health(&self) -> Result<()> {
        match tokio::time::timeout(HEALTH_TIMEOUT, self.store.ping()).await {
            Ok(answer) => answer,
            Err(_) => Err(crate::Error::Unavailable(
                "the database did not answer in time".into(),
            )),
        }
    }

    /// Re-seals every deployment's environment under the current key (after a key
    /// rotation); returns how many were rewritten.
    pub async fn reseal_secrets(&self) -> Result<usize> {
        let (written, ()) = self
            .transact(None, |state| {
                Ok((state.snapshot().deployments().cloned().collect(), ()))
            })
            .await?;
        self.reseal_cluster_secrets().await?;
        tracing::info!(
            deployments = written.len(),
            "secrets re-sealed under the current key"
        );
        Ok(written.len())
    }

    /// Decisions over `state` at time `now`.
    fn planner<'s>(&'s self, now: f64, state: &'s FleetState) -> lifecycle::Planner<'s> {
        let timeout = self.settings.heartbeat_timeout.as_secs_f64();
        // after a restart (of a single server, or of the whole control plane) nodes
        // have not had a chance to heartbeat yet: their work is not lost until they
        // have
        let marks_lost = now - self.started_at >= timeout;
        lifecycle::Planner::new(
            &self.engine,
            &self.settings,
            now,
            state.ledger_at(now),
            state.snapshot(),
        )
        .marking_lost(marks_lost)
    }

    /// Writes what is buffered and closes the store: called once serving stopped.
    pub async fn close(&self) {
        if let Err(err) = self.fleet.flush_heartbeats().await {
            tracing::warn!(error = %err, "heartbeats could not be written at shutdown");
        }
        if let Err(err) = self.events.flush().await {
            tracing::warn!(error = %err, "events could not be written at shutdown");
        }
        self.store.close().await;
    }

    /// Writes the heartbeats not written yet in one transaction; the server calls
    /// this on a short interval and when it stops. Returns how many nodes were
    /// written.
    pub async fn flush_heartbeats(&self) -> Result<usize> {
        self.fleet.flush_heartbeats().await
    }

    /// The time on the service's clock (epoch seconds).
    pub fn now(&self) -> f64 {
        self.clock.now()
    }
}

/// What a decision wrote, with its result and the events of its writes.
type Decided<T> = (Vec<Deployment>, (T, Vec<Event>));

/// `change` with the events of its writes added to its result.
fn with_events<T, C>(change: C) -> impl FnMut(&FleetState) -> Result<Decided<T>> + Send
where
    C: Fn(&FleetState) -> Result<(Vec<Deployment>, T)> + Send,
{
    move |state| {
        let (writes, outcome) = change(state)?;
        let events = crate::events::deployment_events(state.snapshot(), &writes);
        Ok((writes, (outcome, events)))
    }
}
