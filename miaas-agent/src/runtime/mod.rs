//! What runs deployments on this node: Docker Compose, or a simulation.

mod compose_file;
mod docker;
mod log_lines;
mod simulated;

use std::path::Path;

use async_trait::async_trait;
use miaas_core::model::{DeploymentHealth, DesiredDeployment, DockerInfo, LogLine, LogRequest};
use tokio::sync::mpsc;

pub use compose_file::{folder_name, project_name, rendered_for_node};
pub use docker::DockerRuntime;
pub use simulated::SimulatedRuntime;

/// How a deployment is doing on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Every service runs.
    Running(Running),
    /// It failed to start or stopped; what went wrong.
    Failed(String),
    /// Nothing of it runs here.
    Absent,
}

/// A deployment whose services all run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// A short description (`2 container(s) running`).
    pub message: String,
    /// What its containers' healthchecks say.
    pub health: DeploymentHealth,
    /// The sum of its containers' restart counts.
    pub restarts: u32,
}

impl Running {
    /// Running with no healthcheck and no restart.
    pub fn plain(message: String) -> Self {
        Self {
            message,
            health: DeploymentHealth::None,
            restarts: 0,
        }
    }
}

/// Runs deployments. `dir` is the deployment's own folder in the state directory.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// Starts `deployment` (or brings it to this revision) as Compose project
    /// `project`, saying what it does on `progress` (`pulling nginx:1.27`); its
    /// condition after. Dropping the future stops the start.
    async fn apply(
        &self,
        deployment: &DesiredDeployment,
        dir: &Path,
        project: &str,
        progress: mpsc::Sender<String>,
    ) -> Condition;

    /// Stops and removes the deployment of project `project`; an error message
    /// when that failed.
    async fn remove(&self, project: &str, dir: &Path) -> Result<(), String>;

    /// How the deployment of project `project` is doing now.
    async fn condition(&self, project: &str, dir: &Path) -> Condition;

    /// Names of the containers running for MIaaS, for heartbeats.
    async fn running_containers(&self) -> Vec<String>;

    /// The container engine, for the node's capabilities (`None`: none reported).
    async fn engine(&self) -> Option<DockerInfo>;

    /// Where the engine keeps images and containers (Docker's data root), whose
    /// disk is the node's disk; `None` when there is no such place.
    async fn data_root(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Sends the log lines of project `project` that `request` asks for into
    /// `lines`, until they are all sent (or, with `follow`, until `lines` is
    /// closed); an error message when they cannot be read.
    async fn logs(
        &self,
        project: &str,
        dir: &Path,
        request: &LogRequest,
        lines: mpsc::Sender<LogLine>,
    ) -> Result<(), String>;
}
