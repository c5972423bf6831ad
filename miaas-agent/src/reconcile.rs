//! Bringing this node to its desired state: start what should run (or bring it to
//! the new revision), remove what should not, and report each change. A
//! deployment found running at the desired revision (an agent restart) is adopted
//! without touching it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miaas_core::model::{
    DeploymentStatus, DesiredDeployment, DesiredState, ReportedStatus, StatusReport,
};

use crate::client::Client;
use crate::error::{AgentError, Result};
use crate::runtime::{Health, Runtime, folder_name, project_name};

/// The file in a deployment's folder naming its Compose project (so that a folder
/// left behind can be removed without knowing the id).
const PROJECT_FILE: &str = "project";

/// The deployments of this node and the runtime that runs them.
pub(crate) struct Reconciler {
    runtime: Arc<dyn Runtime>,
    deployments_dir: PathBuf,
    /// The revision of each deployment this node runs (or tried to).
    local: HashMap<String, u32>,
}

impl Reconciler {
    pub(crate) fn new(runtime: Arc<dyn Runtime>, state_dir: &Path) -> Self {
        Self {
            runtime,
            deployments_dir: state_dir.join("deployments"),
            local: HashMap::new(),
        }
    }

    fn dir_of(&self, deployment_id: &str) -> PathBuf {
        self.deployments_dir.join(folder_name(deployment_id))
    }

    /// Another deployment's folder that records `project` as its own: two
    /// deployments must never share one Compose project (`up --remove-orphans`
    /// of one would remove the other's containers and take its volumes).
    fn project_taken_elsewhere(&self, project: &str, dir: &Path) -> Option<PathBuf> {
        let entries = std::fs::read_dir(&self.deployments_dir).ok()?;
        entries.flatten().map(|e| e.path()).find(|other| {
            other != dir
                && std::fs::read_to_string(other.join(PROJECT_FILE))
                    .is_ok_and(|text| text.trim() == project)
        })
    }

    /// One pass over `desired`; `check_health` also looks at what already runs.
    pub(crate) async fn reconcile(
        &mut self,
        client: &Client,
        token: &str,
        desired: &DesiredState,
        check_health: bool,
    ) -> Result<()> {
        for order in &desired.remove {
            self.remove(client, token, &order.deployment_id, true)
                .await?;
        }
        let wanted: HashSet<&str> = desired
            .deployments
            .iter()
            .map(|d| d.deployment_id.as_str())
            .chain(desired.remove.iter().map(|r| r.deployment_id.as_str()))
            .collect();
        let gone: Vec<String> = self
            .local
            .keys()
            .filter(|id| !wanted.contains(id.as_str()))
            .cloned()
            .collect();
        for id in gone {
            self.remove(client, token, &id, false).await?;
        }
        for deployment in &desired.deployments {
            self.run(client, token, deployment, check_health).await?;
        }
        Ok(())
    }

    /// Removes what runs here but the control plane does not know of (an agent
    /// restart after a deployment moved away while it was down).
    pub(crate) async fn remove_strays(&mut self, desired: &DesiredState) {
        let Ok(entries) = std::fs::read_dir(&self.deployments_dir) else {
            return;
        };
        let known: HashSet<String> = desired
            .deployments
            .iter()
            .map(|d| folder_name(&d.deployment_id))
            .collect();
        for entry in entries.flatten() {
            let folder = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&folder) {
                continue;
            }
            let project = std::fs::read_to_string(entry.path().join(PROJECT_FILE))
                .map(|text| text.trim().to_string())
                .unwrap_or_else(|_| project_name(&folder));
            match self.runtime.remove(&project, &entry.path()).await {
                Ok(()) => {
                    tracing::info!(%project, "removed a deployment this node no longer runs");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                Err(message) => {
                    tracing::warn!(%project, %message, "cannot remove a stray deployment")
                }
            }
        }
    }

    async fn run(
        &mut self,
        client: &Client,
        token: &str,
        deployment: &DesiredDeployment,
        check_health: bool,
    ) -> Result<()> {
        let id = &deployment.deployment_id;
        let dir = self.dir_of(id);
        let project = project_of(id, &dir);
        let current = self.local.get(id).copied();
        let conflict = self.project_taken_elsewhere(&project, &dir);
        let health = match (&conflict, current) {
            // whatever runs under that project is the other deployment's
            (Some(other), _) => Health::Failed(format!(
                "Compose project {project} belongs to the deployment in {}: not started",
                other.display()
            )),
            (None, Some(revision)) if revision == deployment.revision => {
                if !check_health {
                    return Ok(());
                }
                match self.runtime.health(&project, &dir).await {
                    Health::Absent => Health::Failed("its containers are gone".into()),
                    health => health,
                }
            }
            (None, Some(_)) => self.start(deployment, &dir, &project).await,
            (None, None) => match self.adopt(deployment, &dir, &project).await {
                Some(health) => health,
                None => self.start(deployment, &dir, &project).await,
            },
        };
        let (status, message) = match health {
            Health::Running(message) => (ReportedStatus::Running, message),
            Health::Failed(message) => (ReportedStatus::Failed, message),
            Health::Absent => (ReportedStatus::Failed, "nothing runs".into()),
        };
        let already = server_shows(deployment.status, status);
        if conflict.is_none() {
            self.local.insert(id.clone(), deployment.revision);
        }
        if already {
            return Ok(());
        }
        tracing::info!(deployment = %id, revision = deployment.revision, ?status, %message, "reporting");
        report(client, token, id, status, message).await
    }

    /// What already runs at this revision (an agent restart), left as it is.
    async fn adopt(
        &self,
        deployment: &DesiredDeployment,
        dir: &Path,
        project: &str,
    ) -> Option<Health> {
        let recorded = std::fs::read_to_string(dir.join("revision")).ok()?;
        if recorded.trim() != deployment.revision.to_string() {
            return None;
        }
        match self.runtime.health(project, dir).await {
            Health::Running(message) => {
                tracing::info!(deployment = %deployment.deployment_id, "adopted: already running");
                Some(Health::Running(message))
            }
            _ => None,
        }
    }

    async fn start(&self, deployment: &DesiredDeployment, dir: &Path, project: &str) -> Health {
        if let Some(error) = &deployment.error {
            return Health::Failed(error.clone());
        }
        if let Err(err) = miaas_core::private_file::create_dir_all(dir) {
            return Health::Failed(format!("cannot create {}: {err}", dir.display()));
        }
        tracing::info!(deployment = %deployment.deployment_id, revision = deployment.revision, "starting");
        let _ = std::fs::write(dir.join(PROJECT_FILE), project);
        let health = self.runtime.apply(deployment, dir, project).await;
        let _ = std::fs::write(dir.join("revision"), deployment.revision.to_string());
        health
    }

    async fn remove(
        &mut self,
        client: &Client,
        token: &str,
        id: &str,
        confirm: bool,
    ) -> Result<()> {
        let dir = self.dir_of(id);
        let project = project_of(id, &dir);
        let was_here = self.local.contains_key(id) || dir.exists();
        // never `down` a project another deployment's folder records as its own
        if was_here && self.project_taken_elsewhere(&project, &dir).is_none() {
            if let Err(message) = self.runtime.remove(&project, &dir).await {
                tracing::warn!(deployment = %id, %message, "removal failed; retrying later");
                return Ok(());
            }
            let _ = std::fs::remove_dir_all(&dir);
            self.local.remove(id);
            tracing::info!(deployment = %id, "removed");
        }
        if confirm {
            let message = if was_here {
                "containers removed".to_string()
            } else {
                "nothing of it ran on this node".to_string()
            };
            report(client, token, id, ReportedStatus::Deleted, message).await?;
        }
        Ok(())
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

/// Whether the control plane already shows `status`.
fn server_shows(server: DeploymentStatus, status: ReportedStatus) -> bool {
    matches!(
        (server, status),
        (DeploymentStatus::Running, ReportedStatus::Running)
            | (DeploymentStatus::Failed, ReportedStatus::Failed)
    )
}

async fn report(
    client: &Client,
    token: &str,
    id: &str,
    status: ReportedStatus,
    message: String,
) -> Result<()> {
    let report = StatusReport {
        status,
        message: Some(message.chars().take(4000).collect()),
    };
    match client.report(id, token, &report).await {
        // a report the state contradicts, or of a deployment gone meanwhile (already
        // confirmed, moved): the next pass sees what is true now
        Err(AgentError::Refused(detail)) => {
            tracing::debug!(deployment = %id, %detail, "report refused");
            Ok(())
        }
        other => other,
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
