//! `miaas plan -f compose.yml` (or `--template ID`, or bare requirement flags such
//! as `--cpus 1 --memory 1G`): the dry run.

use miaas_core::service::PlanInput;

use super::Context;
use super::input::{
    any_requirement_flag, bare_requirements, read_compose, requirements, template_params,
};
use crate::cli::PlanArgs;
use crate::error::Result;
use crate::output::{plan_tables, print_data, size_mb};

/// Shows where the compose file, the template or the bare requirements would be
/// placed, and why other nodes do not fit.
pub async fn run(ctx: &Context, args: PlanArgs) -> Result<()> {
    let plan_input = match (&args.file, args.template) {
        (None, None) => PlanInput::Requirements(bare_requirements(&args.requirements)?),
        (Some(file), _) => {
            let input = read_compose(file)?;
            match requirements(&input.text, &Default::default(), &args.requirements)? {
                Some(requirements) => PlanInput::Requirements(requirements),
                None => PlanInput::Compose {
                    compose: input.text,
                    env: Default::default(),
                },
            }
        }
        (None, Some(template_id)) => {
            let params = template_params(&args.set)?;
            if any_requirement_flag(&args.requirements) {
                let rendered = ctx.backend.render_template(&template_id, &params).await?;
                let requirements = requirements(
                    &rendered.rendered_compose,
                    &Default::default(),
                    &args.requirements,
                )?;
                PlanInput::Requirements(requirements.unwrap_or(rendered.requirements))
            } else {
                PlanInput::Template {
                    template_id,
                    params,
                }
            }
        }
    };
    let plan = ctx.backend.plan(&plan_input).await?;
    if print_data(ctx.output, &plan)? {
        return Ok(());
    }
    let r = &plan.requirements;
    let mut needs = vec![
        format!("cpus {}", r.cpus),
        format!("memory {}", size_mb(r.mem_mb)),
        format!("gpus {}", r.gpus),
    ];
    if !r.tags.is_empty() {
        needs.push(format!("tags {}", r.tags.join(",")));
    }
    if let Some(node) = &r.node {
        needs.push(format!("node {node}"));
    }
    say!("Requirements: {}", needs.join(", "));
    if !plan.host_access.is_empty() {
        say!(
            "Host access (deploying needs an admin unless the server allows operators): {}",
            plan.host_access.join("; ")
        );
    }
    say!();
    let (candidates, rejected) = plan_tables(&plan);
    if plan.candidates.is_empty() {
        say!("Candidates: none");
    } else {
        say!("Candidates:\n{candidates}");
    }
    if !plan.rejected.is_empty() {
        say!();
        say!("Rejected:\n{rejected}");
    }
    say!();
    say!("{}", plan.summary.message);
    Ok(())
}
