//! `miaas deploy -f compose.yml`, with `--wait` (until ready) or `--wait-for`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use miaas_core::model::{
    Deployment, DeploymentAction, DeploymentHealth, DeploymentRequest, DeploymentStatus,
};

use super::Context;
use super::deployments::{endpoint_text, health_line, node_names};
use super::input::{
    any_requirement_flag, environment, project_name, read_compose, requirements, template_params,
};
use crate::backend::{EventFeed, EventsRequest};
use crate::cli::{DeployArgs, Milestone};
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
    let milestone = match (args.wait_for, args.wait) {
        (Some(milestone), _) => Some(milestone),
        (None, true) => Some(Milestone::Ready),
        (None, false) => None,
    };
    // following starts before the deploy, so that none of its events is missed
    let feed = if milestone.is_some() {
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
    let deployment = if let (Some(feed), Some(milestone)) = (feed, milestone) {
        wait(ctx, &ack.deployment_id, milestone, args.timeout, feed).await?
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
    if let Some(line) = health_line(&deployment) {
        say!("{line}");
    }
    if milestone.is_some() && !deployment.endpoints.is_empty() {
        say!("endpoints:");
        for endpoint in &deployment.endpoints {
            say!("  {}", endpoint_text(endpoint));
        }
    }
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
        (_, Some(node_id)) => {
            let names = node_names(ctx).await?;
            let node = names.get(node_id).unwrap_or(node_id);
            format!(
                "status: {} on node {node} (revision {})",
                d.status_text(),
                d.revision
            )
        }
        (status, None) => format!("status: {}: {}", status.as_str(), d.message),
    })
}

/// How often the deployment is looked at again while no event comes (its
/// restarts and messages change without one).
const LOOK_AGAIN_EVERY: Duration = Duration::from_secs(2);

/// Waits until the deployment reaches `milestone`, looking again at each of its
/// events; fails when it fails, turns unhealthy (waiting for `ready`), goes away,
/// or `timeout` passes (saying where it stands and, pending, why).
async fn wait(
    ctx: &Context,
    id: &str,
    milestone: Milestone,
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
    let mut last_said = String::new();
    let outcome = loop {
        let d = ctx.backend.get_deployment(id, false).await?;
        let said = format!("{id}: {}", d.status_text());
        if said != last_said {
            match &spinner {
                Some(bar) => bar.set_message(said.clone()),
                None => eprintln!("{said}"),
            }
            last_said = said;
        }
        match verdict(&d, milestone) {
            Verdict::Reached => break Ok(d),
            Verdict::Failed(why) => break Err(CliError::Failed(why)),
            Verdict::NotYet => {}
        }
        let look_again = (tokio::time::Instant::now() + LOOK_AGAIN_EVERY).min(deadline);
        match tokio::time::timeout_at(look_again, feed.next()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => {
                break Err(CliError::Failed(format!(
                    "the event stream ended while waiting for deployment {id}"
                )));
            }
            Ok(Err(err)) => break Err(err),
            Err(_) if tokio::time::Instant::now() < deadline => continue,
            Err(_) => {}
        }
        let why = match (d.status, &d.placement) {
            (DeploymentStatus::Pending, Some(placement)) => placement.message.clone(),
            _ => d.message.clone(),
        };
        break Err(CliError::Failed(format!(
            "timed out after {} waiting for deployment {id} to be {} (it is {}): {why}",
            humanize(timeout),
            milestone_name(milestone),
            d.status_text(),
        )));
    };
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    outcome
}

/// Where a deployment stands against a milestone.
enum Verdict {
    Reached,
    NotYet,
    /// It will not get there: why.
    Failed(String),
}

fn verdict(d: &Deployment, milestone: Milestone) -> Verdict {
    let id = &d.deployment_id;
    match d.status {
        DeploymentStatus::Failed => {
            return Verdict::Failed(format!("deployment {id} failed: {}", d.message));
        }
        DeploymentStatus::Deleting | DeploymentStatus::Deleted => {
            return Verdict::Failed(format!("deployment {id} is being deleted"));
        }
        _ => {}
    }
    let reached = match milestone {
        Milestone::Scheduled => matches!(
            d.status,
            DeploymentStatus::Scheduled | DeploymentStatus::Running
        ),
        Milestone::Running => d.status == DeploymentStatus::Running,
        Milestone::Ready => d.is_ready(),
    };
    if reached {
        Verdict::Reached
    } else if milestone == Milestone::Ready
        && d.status == DeploymentStatus::Running
        && d.health == Some(DeploymentHealth::Unhealthy)
    {
        Verdict::Failed(format!(
            "deployment {id} is {}: {}",
            d.status_text(),
            d.message
        ))
    } else {
        Verdict::NotYet
    }
}

fn milestone_name(milestone: Milestone) -> &'static str {
    match milestone {
        Milestone::Scheduled => "scheduled",
        Milestone::Running => "running",
        Milestone::Ready => "ready",
    }
}

fn humanize(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}
