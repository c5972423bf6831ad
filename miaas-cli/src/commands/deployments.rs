//! `miaas deployments ...`, `miaas ps`, `miaas rm`.

use std::collections::HashMap;

use miaas_core::model::{Deployment, DeploymentStatus};

use super::Context;
use crate::cli::DeploymentsCommand;
use crate::error::Result;
use crate::output::{deployments_table, print_data};

/// Runs a `deployments` subcommand.
pub async fn run(ctx: &Context, command: DeploymentsCommand) -> Result<()> {
    let backend = ctx.backend.as_ref();
    match command {
        DeploymentsCommand::List => {
            let deployments = backend.list_deployments().await?;
            if print_data(ctx.output, &deployments)? {
                return Ok(());
            }
            if deployments.is_empty() {
                eprintln!("no deployments");
                return Ok(());
            }
            let names = node_names(ctx).await?;
            say!(
                "{}",
                deployments_table(&deployments, &names, ctx.output, ctx.now())
            );
            Ok(())
        }
        DeploymentsCommand::Get { id, reveal } => {
            let deployment = backend.get_deployment(&id, reveal).await?;
            if !print_data(ctx.output, &deployment)? {
                show_one(ctx, &deployment).await?;
            }
            Ok(())
        }
        DeploymentsCommand::Rm { id } => {
            let ack = backend.delete_deployment(&id).await?;
            if !print_data(ctx.output, &ack)? {
                say!("deployment {} {}", ack.deployment_id, ack.status);
            }
            Ok(())
        }
    }
}

/// `web  http://10.0.0.7:8080 (-> 80)`, or `dns  10.0.0.7:5353/udp (-> 53)`.
pub fn endpoint_text(endpoint: &miaas_core::model::Endpoint) -> String {
    let at = endpoint
        .url
        .clone()
        .unwrap_or_else(|| format!("{}:{}/{}", endpoint.host, endpoint.port, endpoint.protocol));
    match endpoint.target_port {
        Some(target) => format!("{}  {at} (-> {target})", endpoint.service),
        None => format!("{}  {at}", endpoint.service),
    }
}

/// `health: healthy`, `health: unhealthy, 3 restarts`, `health: none` (no
/// healthcheck); `None` before the node reported on it.
pub fn health_line(deployment: &Deployment) -> Option<String> {
    let health = deployment.health?;
    Some(match deployment.restarts {
        0 => format!("health: {}", health.as_str()),
        1 => format!("health: {}, 1 restart", health.as_str()),
        n => format!("health: {}, {n} restarts", health.as_str()),
    })
}

/// Node id → name, for the NODE column.
pub async fn node_names(ctx: &Context) -> Result<HashMap<String, String>> {
    let nodes = ctx.backend.list_nodes().await?;
    Ok(nodes.into_iter().map(|n| (n.id, n.name)).collect())
}

/// One deployment as a table row, then its message.
pub async fn show_one(ctx: &Context, deployment: &Deployment) -> Result<()> {
    let names = node_names(ctx).await?;
    let table = deployments_table(
        std::slice::from_ref(deployment),
        &names,
        ctx.output,
        ctx.now(),
    );
    say!("{table}");
    say!();
    say!("{}", deployment.message);
    if let Some(line) = health_line(deployment) {
        say!("{line}");
    }
    if !deployment.endpoints.is_empty() {
        say!();
        say!("endpoints:");
        for endpoint in &deployment.endpoints {
            say!("  {}", endpoint_text(endpoint));
        }
    }
    if let (Some(version), Some(params)) = (deployment.template_version, &deployment.params) {
        say!();
        say!(
            "rendered from template {} version {version}, with:",
            deployment.template_id
        );
        for (name, value) in params {
            let shown = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            say!("  {name} = {shown}");
        }
    }
    if let (DeploymentStatus::Pending, Some(placement)) = (deployment.status, &deployment.placement)
    {
        for (reason, count) in &placement.reasons {
            say!("  {reason}: {count}");
        }
    }
    Ok(())
}
