//! `miaas deploy -f compose.yml`, with `--wait`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use miaas_core::model::{Deployment, DeploymentAction, DeploymentRequest, DeploymentStatus};

use super::Context;
use super::deployments::node_names;
use super::input::{
    any_requirement_flag, environment, project_name, read_compose, requirements, template_params,
};
use crate::backend::{EventFeed, EventsRequest};
use crate::cli::DeployArgs;
use crate::error::{CliError, Result};
use crate::output::print_data;

/// Submits the compose file, or the template with its parameters, and shows
/// where it landed (or why not yet).
pub async fn run(ctx: &Context, args: DeployArgs) -> Result<()> {
    let env = environment(&args.env, args.env_file.as_deref())?;
    let request = match &args.file {
        Some(file) => {
            let input = read_compose(file)?;
            let name = (args.name.clone()).unwrap_or_else(|| project_name(&input.folder_name));
            DeploymentRequest {
                template_id: args.template.clone().unwrap_or_else(|| name.clone()),
                deployment_id: name,
                requirements: requirements(&input.text, &env, &args.requirements)?,
                env,
                rendered_compose: Some(input.text),
                params: None,
                action: DeploymentAction::Apply,
            }
        }
        None => {
            let template = args.template.clone().unwrap_or_default();
            let params = template_params(&args.set)?;
            // requirement flags are laid over what the rendering needs
            let requirements = if any_requirement_flag(&args.requirements) {
                let rendered = ctx.backend.render_template(&template, &params).await?;
                requirements(&rendered.rendered_compose, &env, &args.requirements)?
            } else {
                None
            };
            DeploymentRequest {
                deployment_id: args.name.clone().unwrap_or_else(|| template.clone()),
                template_id: template,
                env,
                requirements,
                rendered_compose: None,
                params: Some(params),
                action: DeploymentAction::Apply,
            }
        }
    };
    // following starts before the deploy, so that none of its events is missed
    let feed = if args.wait {
        let request = EventsRequest {
            topics: vec![format!("deployment:{}", request.deployment_id)],
            follow: true,
            ..EventsRequest::default()
        };
        Some(ctx.backend.events(&request).await?)
    } else {
        None
    };
    let ack = ctx.backend.submit_deployment(&request).await?;
    let deployment = if let Some(feed) = feed {
        wait(ctx, &ack.deployment_id, args.timeout, feed).await?
    } else {
        ctx.backend
            .get_deployment(&ack.deployment_id, false)
            .await?
    };
    if print_data(ctx.output, &deployment)? {
        return Ok(());
    }
    say!("deployment {} accepted: {}", ack.deployment_id, ack.message);
    say!("{}", describe(ctx, &deployment).await?);
    Ok(())
}

/// `status: scheduled on node worker-01`, `status: pending: no node fits: ...`.
async fn describe(ctx: &Context, d: &Deployment) -> Result<String> {
    Ok(match (d.status, &d.node_id) {
        (DeploymentStatus::Pending, _) => format!(
            "status: pending: {}",
            d.placement
                .as_ref()
                .map_or(d.message.as_str(), |p| p.message.as_str())
        ),
        (status, Some(node_id)) => {
            let names = node_names(ctx).await?;
            let node = names.get(node_id).unwrap_or(node_id);
            format!(
                "status: {} on node {node} (revision {})",
                status.as_str(),
                d.revision
            )
        }
        (status, None) => format!("status: {}: {}", status.as_str(), d.message),
    })
}

/// Waits until the deployment is scheduled or running, looking again at each of
/// its events; fails when it fails, goes away, or `timeout` passes (naming why it
/// is not placed).
async fn wait(
    ctx: &Context,
    id: &str,
    timeout: Duration,
    mut feed: Box<dyn EventFeed>,
) -> Result<Deployment> {
    let deadline = tokio::time::Instant::now() + timeout;
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let mut last_status = None;
    let outcome = loop {
        let d = ctx.backend.get_deployment(id, false).await?;
        if last_status != Some(d.status) {
            let line = format!("{id}: {}", d.status.as_str());
            match &spinner {
                Some(bar) => bar.set_message(line),
                None => eprintln!("{line}"),
            }
            last_status = Some(d.status);
        }
        match d.status {
            DeploymentStatus::Scheduled | DeploymentStatus::Running => break Ok(d),
            DeploymentStatus::Failed => {
                break Err(CliError::Failed(format!(
                    "deployment {id} failed: {}",
                    d.message
                )));
            }
            DeploymentStatus::Deleting | DeploymentStatus::Deleted => {
                break Err(CliError::Failed(format!(
                    "deployment {id} is being deleted"
                )));
            }
            DeploymentStatus::Pending | DeploymentStatus::Lost => {}
        }
        match tokio::time::timeout_at(deadline, feed.next()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => {
                break Err(CliError::Failed(format!(
                    "the event stream ended while waiting for deployment {id}"
                )));
            }
            Ok(Err(err)) => break Err(err),
            Err(_) => {}
        }
        let why = d
            .placement
            .as_ref()
            .map_or(d.message.clone(), |p| p.message.clone());
        break Err(CliError::Failed(format!(
            "timed out after {} waiting for deployment {id} ({}): {why}",
            humanize(timeout),
            d.status.as_str()
        )));
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    outcome
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}
