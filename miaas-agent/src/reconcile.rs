//! Bringing this node to its desired state: each deployment has a worker
//! ([`crate::worker`]) that starts it (or brings it to the new revision), checks
//! its health, or removes it, and reports; this module hands each worker its
//! orders from every desired state, without waiting on any of them, so that
//! heartbeats and the long-poll go on however long a start takes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miaas_core::model::DesiredState;
use tokio::sync::Semaphore;

use crate::client::Client;
use crate::runtime::{Runtime, folder_name, project_name};
use crate::worker::{Context, Order, PROJECT_FILE, Worker};

/// The deployments of this node, each with its worker.
pub(crate) struct Reconciler {
    runtime: Arc<dyn Runtime>,
    deployments_dir: PathBuf,
    starts: Arc<Semaphore>,
    /// What workers report with, for the node's current token.
    context: Option<Arc<Context>>,
    workers: HashMap<String, Worker>,
    /// Bumped to have every worker check its deployment's health.
    check: u64,
}

impl Reconciler {
    /// Workers of `runtime`, deployments' folders under `state_dir`, at most
    /// `max_parallel_starts` starting at once.
    pub(crate) fn new(
        runtime: Arc<dyn Runtime>,
        state_dir: &Path,
        max_parallel_starts: usize,
    ) -> Self {
        Self {
            runtime,
            deployments_dir: state_dir.join("deployments"),
            starts: Arc::new(Semaphore::new(max_parallel_starts.max(1))),
            context: None,
            workers: HashMap::new(),
            check: 0,
        }
    }

    /// Orders every worker after `desired`; `check_health` has each look at what
    /// already runs. Returns at once: the workers do the work.
    pub(crate) fn reconcile(
        &mut self,
        client: &Client,
        token: &str,
        desired: &DesiredState,
        check_health: bool,
    ) {
        let context = self.context_for(client, token);
        if check_health {
            self.check += 1;
        }
        self.workers.retain(|_, worker| !worker.is_finished());
        for order in &desired.remove {
            self.order(
                &context,
                &order.deployment_id,
                Order::Remove { confirm: true },
            );
        }
        let wanted: HashSet<&str> = (desired.deployments.iter())
            .map(|d| d.deployment_id.as_str())
            .chain(desired.remove.iter().map(|r| r.deployment_id.as_str()))
            .collect();
        let gone: Vec<String> = (self.workers.keys())
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.order(&context, &id, Order::Remove { confirm: false });
        }
        for deployment in &desired.deployments {
            let order = Order::Run {
                deployment: Box::new(deployment.clone()),
                check: self.check,
            };
            self.order(&context, &deployment.deployment_id, order);
        }
    }

    /// The workers' context for this token: a new token (the node registered
    /// anew) lets every worker of the old one go.
    fn context_for(&mut self, client: &Client, token: &str) -> Arc<Context> {
        if let Some(context) = self.context.as_ref().filter(|c| c.token == token) {
            return context.clone();
        }
        for worker in self.workers.values() {
            worker.abort();
        }
        self.workers.clear();
        let context = Arc::new(Context {
            runtime: self.runtime.clone(),
            deployments_dir: self.deployments_dir.clone(),
            client: client.clone(),
            token: token.to_string(),
            starts: self.starts.clone(),
        });
        self.context = Some(context.clone());
        context
    }

    fn order(&mut self, context: &Arc<Context>, id: &str, order: Order) {
        if let Some(worker) = self.workers.get(id)
            && worker.order(order.clone())
        {
            return;
        }
        let worker = Worker::spawn(context.clone(), id.to_string(), order);
        self.workers.insert(id.to_string(), worker);
    }

    /// Removes, in the background, what runs here but the control plane does not
    /// know of (an agent restart after a deployment moved away while it was down).
    pub(crate) fn remove_strays(&self, desired: &DesiredState) {
        // those to remove are their workers' to remove
        let known: HashSet<String> = (desired.deployments.iter())
            .map(|d| folder_name(&d.deployment_id))
            .chain(desired.remove.iter().map(|r| folder_name(&r.deployment_id)))
            .collect();
        let (runtime, deployments_dir) = (self.runtime.clone(), self.deployments_dir.clone());
        tokio::spawn(async move {
            let Ok(entries) = std::fs::read_dir(&deployments_dir) else {
                return;
            };
            for entry in entries.flatten() {
                let folder = entry.file_name().to_string_lossy().into_owned();
                if known.contains(&folder) {
                    continue;
                }
                let project = std::fs::read_to_string(entry.path().join(PROJECT_FILE))
                    .map(|text| text.trim().to_string())
                    .unwrap_or_else(|_| project_name(&folder));
                match runtime.remove(&project, &entry.path()).await {
                    Ok(()) => {
                        tracing::info!(%project, "removed a deployment this node no longer runs");
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                    Err(message) => {
                        tracing::warn!(%project, %message, "cannot remove a stray deployment")
                    }
                }
            }
        });
    }
}
