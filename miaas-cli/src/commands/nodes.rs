//! `miaas nodes ...`.

use std::collections::HashMap;

use miaas_core::model::{Node, NodeUpdate};
use miaas_core::service::NodeEvacuation;

use super::deployments::node_names;
use super::{Context, resolve};
use crate::cli::NodesCommand;
use crate::error::{CliError, Result};
use crate::output::{gpu_lines, nodes_table, print_data};

/// Runs a `nodes` subcommand.
pub async fn run(ctx: &Context, command: NodesCommand) -> Result<()> {
    let backend = ctx.backend.as_ref();
    match command {
        NodesCommand::List => {
            let nodes = backend.list_nodes().await?;
            show_nodes(ctx, &nodes)
        }
        NodesCommand::Get { node } => {
            let node = resolve::node(backend, &node).await?;
            if !print_data(ctx.output, &node)? {
                say!(
                    "{}",
                    nodes_table(std::slice::from_ref(&node), ctx.output, ctx.now())
                );
                let lines = gpu_lines(&node, &gpu_holders(ctx, &node).await?);
                if !lines.is_empty() {
                    say!();
                    for line in lines {
                        say!("{line}");
                    }
                }
            }
            Ok(())
        }
        NodesCommand::Cordon { node } => set_schedulable(ctx, &node, false).await,
        NodesCommand::Uncordon { node } => set_schedulable(ctx, &node, true).await,
        NodesCommand::Drain { node } => {
            let node = resolve::node(backend, &node).await?;
            let report = backend.drain_node(&node.id).await?;
            show_evacuation(ctx, &node, &report, "drained").await
        }
        NodesCommand::Rm { node } => {
            let node = resolve::node(backend, &node).await?;
            let report = backend.remove_node(&node.id).await?;
            show_evacuation(ctx, &node, &report, "removed").await
        }
        NodesCommand::Tag { node, tags, remove } => {
            let node = resolve::node(backend, &node).await?;
            let update = NodeUpdate::retag(&node.tags, &tags, &remove);
            let updated = backend.update_node(&node.id, &update).await?;
            if !print_data(ctx.output, &updated)? {
                let tags = if updated.tags.is_empty() {
                    "(none)".to_string()
                } else {
                    updated.tags.join(", ")
                };
                say!("node {} tags: {tags}", updated.name);
            }
            Ok(())
        }
    }
}

/// Which deployment holds each of `node`'s GPUs: those placed on it, by their
/// `gpu_ids` (one removed meanwhile holds nothing).
async fn gpu_holders(ctx: &Context, node: &Node) -> Result<HashMap<u32, String>> {
    let mut holders = HashMap::new();
    if node.reserved.gpu_ids.is_empty() {
        return Ok(holders);
    }
    for id in &node.deployments {
        let deployment = match ctx.backend.get_deployment(id, false).await {
            Ok(deployment) => deployment,
            Err(CliError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        if deployment.node_id.as_deref() == Some(node.id.as_str()) && deployment.holds_resources() {
            for gpu in deployment.gpu_ids {
                holders.insert(gpu, deployment.deployment_id.clone());
            }
        }
    }
    Ok(holders)
}

fn show_nodes(ctx: &Context, nodes: &[Node]) -> Result<()> {
    if !print_data(ctx.output, &nodes)? {
        if nodes.is_empty() {
            eprintln!("no nodes registered");
        } else {
            say!("{}", nodes_table(nodes, ctx.output, ctx.now()));
        }
    }
    Ok(())
}

async fn set_schedulable(ctx: &Context, query: &str, schedulable: bool) -> Result<()> {
    let node = resolve::node(ctx.backend.as_ref(), query).await?;
    let update = NodeUpdate {
        schedulable: Some(schedulable),
        tags: None,
    };
    let updated = ctx.backend.update_node(&node.id, &update).await?;
    if !print_data(ctx.output, &updated)? {
        let what = if schedulable {
            "uncordoned"
        } else {
            "cordoned"
        };
        say!("node {} {what}", updated.name);
    }
    Ok(())
}

async fn show_evacuation(
    ctx: &Context,
    node: &Node,
    report: &NodeEvacuation,
    what: &str,
) -> Result<()> {
    if print_data(ctx.output, report)? {
        return Ok(());
    }
    let names = node_names(ctx).await?;
    say!(
        "node {} {what}: {} deployment(s) moved, {} pending",
        node.name,
        report.moved.len(),
        report.pending.len()
    );
    for moved in &report.moved {
        let to = names.get(&moved.node_id).unwrap_or(&moved.node_id);
        say!("  {} -> {to}", moved.deployment_id);
    }
    for pending in &report.pending {
        say!("  {pending} -> pending (no other node fits)");
    }
    Ok(())
}
