//! Moving a whole install from one store to another (`miaas db copy`).

use serde::{Deserialize, Serialize};

use super::Store;
use crate::{Error, Result};

/// What a copy moved, verified by reading the target back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Nodes copied (with their tokens, so agents keep working).
    pub nodes: usize,
    /// Deployments copied, deleted ones included.
    pub deployments: usize,
    /// Versions of templates added through the API copied.
    #[serde(default)]
    pub templates: usize,
}

/// Copies every node, deployment and template of `from` into the empty store `to` in one
/// transaction, then checks that `to` holds exactly as many of each.
pub async fn copy(from: &dyn Store, to: &dyn Store) -> Result<CopyReport> {
    let dump = from.export().await?;
    to.import(&dump).await?;
    let copied = to.export().await?;
    let report = CopyReport {
        nodes: copied.nodes.len(),
        deployments: copied.deployments.len(),
        templates: copied.templates.len(),
    };
    if report.nodes != dump.nodes.len() || report.deployments != dump.deployments.len() {
        return Err(Error::Conflict(format!(
            "verification failed: copied {} of {} nodes and {} of {} deployments",
            report.nodes,
            dump.nodes.len(),
            report.deployments,
            dump.deployments.len()
        )));
    }
    if copied != dump {
        return Err(Error::Conflict(
            "verification failed: the copy differs from the source".into(),
        ));
    }
    Ok(report)
}
