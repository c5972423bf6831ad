//! One deployment's worker: brings the deployment to the revision the control
//! plane wants (adopting what already runs at it, after an agent restart), checks
//! its health when asked, or removes it, and reports each change. It runs beside
//! the agent's heartbeats and long-poll, which never wait on it. A newer revision
//! or a removal supersedes a start in progress (the `up` is stopped); at most
//! [`Context::starts`] start at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use miaas_core::model::{DeploymentStatus, DesiredDeployment, ReportedStatus, StatusReport};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::AgentError;
use crate::runtime::{Condition, Runtime, project_name};

/// The file in a deployment's folder naming its Compose project (so that a folder
/// left behind can be removed without knowing the id).
pub(crate) const PROJECT_FILE: &str = "project";

/// The file in a deployment's folder naming the revision it runs.
const REVISION_FILE: &str = "revision";

/// How often a start in progress reports what it is doing, at most.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What every worker shares: the runtime, where deployments' folders are, and
/// how to report.
pub(crate) struct Context {
    pub runtime: Arc<dyn Runtime>,
    pub deployments_dir: PathBuf,
    pub client: Client,
    /// The node's token.
    pub token: String,
    /// Starts that may run at once.
    pub starts: Arc<Semaphore>,
}

/// What a worker is told to do.
#[derive(Clone)]
pub(crate) enum Order {
    /// Run `deployment` at its revision; check its health when `check` differs
    /// from the last one it checked at.
    Run {
        deployment: Box<DesiredDeployment>,
        check: u64,
    },
    /// Remove it; with `confirm`, report it deleted (the control plane asked).
    Remove { confirm: bool },
}

impl Order {
    /// Whether this order replaces a start of `revision` in progress.
    fn supersedes(&self, revision: u32) -> bool {
        match self {
            Order::Run { deployment, .. } => deployment.revision != revision,
            Order::Remove { .. } => true,
        }
    }
}

/// A running worker.
pub(crate) struct Worker {
    orders: watch::Sender<Order>,
    task: JoinHandle<()>,
}

impl Worker {
    /// A worker for deployment `id`, starting with `order`.
    pub(crate) fn spawn(context: Arc<Context>, id: String, order: Order) -> Self {
        let (orders, receiver) = watch::channel(order);
        let task = tokio::spawn(async move {
            let dir = context
                .deployments_dir
                .join(crate::runtime::folder_name(&id));
            let mut state = State {
                context,
                id,
                dir,
                running: None,
                condition: None,
                checked: None,
            };
            state.work(receiver).await;
        });
        Self { orders, task }
    }

    /// Gives the worker a new order; `false` when it has ended.
    pub(crate) fn order(&self, order: Order) -> bool {
        !self.task.is_finished() && self.orders.send(order).is_ok()
    }

    /// Whether it has ended (its deployment removed).
    pub(crate) fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it where it is.
    pub(crate) fn abort(&self) {
        self.task.abort();
    }
}

struct State {
    context: Arc<Context>,
    id: String,
    dir: PathBuf,
    /// The revision this worker brought about (or adopted).
    running: Option<u32>,
    /// Its condition when last started or checked.
    condition: Option<Condition>,
    /// The health check asked for last.
    checked: Option<u64>,
}

/// What a worker does after an order.
enum Next {
    /// Waits for the next order.
    Wait,
    /// Takes the latest order at once (it superseded this one).
    Again,
    /// Ends, unless a newer order came (the deployment is removed).
    End,
}

impl State {
    async fn work(&mut self, mut orders: watch::Receiver<Order>) {
        loop {
            // the agent let go of this worker
            if orders.has_changed().is_err() {
                return;
            }
            let order = orders.borrow_and_update().clone();
            let next = match order {
                Order::Run { deployment, check } => self.run(&deployment, check, &mut orders).await,
                Order::Remove { confirm } if self.remove(confirm).await => Next::End,
                Order::Remove { .. } => Next::Wait,
            };
            match next {
                Next::Again => continue,
                Next::End if !orders.has_changed().unwrap_or(false) => return,
                _ => {}
            }
            if orders.changed().await.is_err() {
                return;
            }
        }
    }

    async fn run(
        &mut self,
        deployment: &DesiredDeployment,
        check: u64,
        orders: &mut watch::Receiver<Order>,
    ) -> Next {
        let project = project_of(&self.id, &self.dir);
        if let Some(other) =
            project_taken_elsewhere(&self.context.deployments_dir, &project, &self.dir)
        {
            // whatever runs under that project is the other deployment's
            let message = format!(
                "Compose project {project} belongs to the deployment in {}: not started",
                other.display()
            );
            self.report_if_new(deployment, Condition::Failed(message))
                .await;
            return Next::Wait;
        }
        let condition = if self.running == Some(deployment.revision) {
            if self.checked == Some(check) {
                self.condition.clone()
            } else {
                self.checked = Some(check);
                Some(
                    match self.context.runtime.condition(&project, &self.dir).await {
                        Condition::Absent => Condition::Failed("its containers are gone".into()),
                        condition => condition,
                    },
                )
            }
        } else {
            match self.bring_about(deployment, &project, orders).await {
                Some(condition) => {
                    self.running = Some(deployment.revision);
                    self.checked = Some(check);
                    Some(condition)
                }
                // superseded: the latest order says what now
                None => return Next::Again,
            }
        };
        self.condition = condition.clone();
        if let Some(condition) = condition {
            self.report_if_new(deployment, condition).await;
        }
        Next::Wait
    }

    /// Adopts what runs at this revision (an agent restart), else starts it;
    /// `None` when a newer order superseded the start.
    async fn bring_about(
        &self,
        deployment: &DesiredDeployment,
        project: &str,
        orders: &mut watch::Receiver<Order>,
    ) -> Option<Condition> {
        let revision = deployment.revision;
        if self.running.is_none()
            && let Some(condition) = self.adopt(deployment, project).await
        {
            return Some(condition);
        }
        let starts = self.context.starts.clone();
        let _permit = tokio::select! {
            permit = starts.acquire_owned() => permit.ok()?,
            () = superseded(orders, revision) => return None,
        };
        if let Some(error) = &deployment.error {
            return Some(Condition::Failed(error.clone()));
        }
        self.report_progress(format!("starting revision {revision}"))
            .await;
        let (progress, mut said) = mpsc::channel(16);
        let start = self.start(deployment, project, progress);
        tokio::pin!(start);
        let mut last_said = Instant::now();
        loop {
            tokio::select! {
                condition = &mut start => return Some(condition),
                Some(line) = said.recv() => {
                    if last_said.elapsed() >= PROGRESS_EVERY {
                        last_said = Instant::now();
                        self.report_progress(line).await;
                    }
                }
                () = superseded(orders, revision) => {
                    tracing::info!(deployment = %self.id, revision, "start superseded");
                    return None;
                }
            }
        }
    }

    /// What already runs at this revision, left as it is.
    async fn adopt(&self, deployment: &DesiredDeployment, project: &str) -> Option<Condition> {
        let recorded = std::fs::read_to_string(self.dir.join(REVISION_FILE)).ok()?;
        if recorded.trim() != deployment.revision.to_string() {
            return None;
        }
        match self.context.runtime.condition(project, &self.dir).await {
            Condition::Running(running) => {
                tracing::info!(deployment = %self.id, "adopted: already running");
                Some(Condition::Running(running))
            }
            _ => None,
        }
    }

    async fn start(
        &self,
        deployment: &DesiredDeployment,
        project: &str,
        progress: mpsc::Sender<String>,
    ) -> Condition {
        if let Err(err) = miaas_core::private_file::create_dir_all(&self.dir) {
            return Condition::Failed(format!("cannot create {}: {err}", self.dir.display()));
        }
        tracing::info!(deployment = %self.id, revision = deployment.revision, "starting");
        let _ = std::fs::write(self.dir.join(PROJECT_FILE), project);
        let runtime = &self.context.runtime;
        let condition = runtime
            .apply(deployment, &self.dir, project, progress)
            .await;
        let _ = std::fs::write(
            self.dir.join(REVISION_FILE),
            deployment.revision.to_string(),
        );
        condition
    }

    /// Removes what runs of it here; with `confirm`, reports it deleted. `false`
    /// when that failed (tried again at the next order).
    async fn remove(&mut self, confirm: bool) -> bool {
        let project = project_of(&self.id, &self.dir);
        let was_here = self.running.is_some() || self.dir.exists();
        // never `down` a project another deployment's folder records as its own
        let others = project_taken_elsewhere(&self.context.deployments_dir, &project, &self.dir);
        if was_here && others.is_none() {
            if let Err(message) = self.context.runtime.remove(&project, &self.dir).await {
                tracing::warn!(deployment = %self.id, %message, "removal failed; retrying later");
                return false;
            }
            let _ = std::fs::remove_dir_all(&self.dir);
            tracing::info!(deployment = %self.id, "removed");
        }
        self.running = None;
        self.condition = None;
        if confirm {
            let message = if was_here {
                "containers removed"
            } else {
                "nothing of it ran on this node"
            };
            return self.report(ReportedStatus::Deleted, message.into()).await;
        }
        true
    }

    /// Reports `condition` unless the control plane already shows it (its
    /// status, health and restarts).
    async fn report_if_new(&self, deployment: &DesiredDeployment, condition: Condition) {
        let report = match condition {
            Condition::Running(running) => StatusReport {
                status: ReportedStatus::Running,
                message: Some(running.message),
                health: Some(running.health),
                restarts: Some(running.restarts),
            },
            Condition::Failed(message) => StatusReport {
                status: ReportedStatus::Failed,
                message: Some(message),
                health: None,
                restarts: None,
            },
            Condition::Absent => StatusReport {
                status: ReportedStatus::Failed,
                message: Some("nothing runs".into()),
                health: None,
                restarts: None,
            },
        };
        if server_shows(deployment, &report) {
            return;
        }
        tracing::info!(deployment = %self.id, revision = deployment.revision, status = ?report.status, health = ?report.health, message = ?report.message, "reporting");
        self.send(report).await;
    }

    async fn report_progress(&self, message: String) {
        self.report(ReportedStatus::Starting, message).await;
    }

    /// Sends a report of `status` with `message`; `false` when it did not reach
    /// the control plane.
    async fn report(&self, status: ReportedStatus, message: String) -> bool {
        self.send(StatusReport {
            status,
            message: Some(message),
            health: None,
            restarts: None,
        })
        .await
    }

    /// Sends `report` (its message cut to 4000 characters); `false` when it did
    /// not reach the control plane.
    async fn send(&self, mut report: StatusReport) -> bool {
        report.message = (report.message).map(|m| m.chars().take(4000).collect());
        let context = &self.context;
        match context
            .client
            .report(&self.id, &context.token, &report)
            .await
        {
            Ok(_) => true,
            // a report the state contradicts, or of a deployment gone meanwhile
            // (already confirmed, moved): the next order says what is true now
            Err(AgentError::Refused(detail)) => {
                tracing::debug!(deployment = %self.id, %detail, "report refused");
                true
            }
            Err(err) => {
                tracing::warn!(deployment = %self.id, error = %err, "report not sent; sent again at the next order");
                false
            }
        }
    }
}

/// Returns once an order supersedes a start of `revision` (or the agent let go
/// of this worker).
async fn superseded(orders: &mut watch::Receiver<Order>, revision: u32) {
    loop {
        if orders.changed().await.is_err() {
            return;
        }
        if orders.borrow().supersedes(revision) {
            return;
        }
    }
}

/// The Compose project of a deployment whose folder is `dir`: the one the folder
/// records (what an earlier agent started it as, under an older naming), else
/// its own name.
pub(crate) fn project_of(deployment_id: &str, dir: &Path) -> String {
    std::fs::read_to_string(dir.join(PROJECT_FILE))
        .map(|text| text.trim().to_string())
        .ok()
        .filter(|project| !project.is_empty())
        .unwrap_or_else(|| project_name(deployment_id))
}

/// Another deployment's folder (under `deployments_dir`) that records `project`
/// as its own: two deployments must never share one Compose project (`up
/// --remove-orphans` of one would remove the other's containers and take its
/// volumes).
fn project_taken_elsewhere(deployments_dir: &Path, project: &str, dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(deployments_dir).ok()?;
    entries.flatten().map(|e| e.path()).find(|other| {
        other != dir
            && std::fs::read_to_string(other.join(PROJECT_FILE))
                .is_ok_and(|text| text.trim() == project)
    })
}

/// Whether the control plane already shows what `report` says.
fn server_shows(deployment: &DesiredDeployment, report: &StatusReport) -> bool {
    match (deployment.status, report.status) {
        (DeploymentStatus::Running, ReportedStatus::Running) => {
            deployment.health == report.health && Some(deployment.restarts) == report.restarts
        }
        (DeploymentStatus::Failed, ReportedStatus::Failed) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_keeps_the_project_it_records() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(project_of("my_app", dir.path()), project_name("my_app"));
        // what an agent before hashed names for ids with `_` started it as
        std::fs::write(dir.path().join(PROJECT_FILE), "miaas-my_app\n").unwrap();
        assert_eq!(project_of("my_app", dir.path()), "miaas-my_app");
    }
}
