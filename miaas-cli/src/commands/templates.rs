//! `miaas templates list|show|render|add|rm`.

use std::io::Read;
use std::path::Path;

use miaas_core::model::{ParameterType, Template, TemplateSpec};

use super::Context;
use super::input::template_params;
use crate::cli::TemplatesCommand;
use crate::error::{CliError, Result};
use crate::output::{parameters_table, print_data, size_mb, templates_table};

/// Runs a templates subcommand.
pub async fn run(ctx: &Context, command: TemplatesCommand) -> Result<()> {
    match command {
        TemplatesCommand::List { category } => {
            let list = ctx.backend.list_templates(category.as_deref()).await?;
            if !print_data(ctx.output, &list)? {
                say!("{}", templates_table(&list, ctx.output));
            }
        }
        TemplatesCommand::Show { id, compose } => {
            let template = ctx.backend.get_template(&id).await?;
            if !print_data(ctx.output, &template)? {
                show(&template, compose);
            }
        }
        TemplatesCommand::Render { id, set } => {
            let params = template_params(&set)?;
            let rendered = ctx.backend.render_template(&id, &params).await?;
            if !print_data(ctx.output, &rendered)? {
                let r = &rendered.requirements;
                say!("{}", rendered.rendered_compose.trim_end());
                say!(
                    "# {} version {}: needs cpus {}, memory {}, gpus {}",
                    rendered.template_id,
                    rendered.template_version,
                    r.cpus,
                    size_mb(r.mem_mb),
                    r.gpus
                );
                if !rendered.secret_env.is_empty() {
                    say!(
                        "# secrets, filled on the node from the deployment's environment: {}",
                        rendered.secret_env.join(", ")
                    );
                }
            }
        }
        TemplatesCommand::Add { file, id, replace } => {
            let mut spec = read_spec(&file)?;
            if let Some(id) = id {
                spec.id = id;
            }
            if spec.id.is_empty() {
                spec.id = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .filter(|s| s != "-")
                    .ok_or_else(|| {
                        CliError::Usage("the template names no `id`: give --id".into())
                    })?;
            }
            let template = ctx.backend.put_template(spec, replace).await?;
            if !print_data(ctx.output, &template)? {
                let verb = if replace { "updated" } else { "added" };
                say!(
                    "template {} {verb}: version {}",
                    template.id,
                    template.version
                );
            }
        }
        TemplatesCommand::Rm { id } => {
            ctx.backend.remove_template(&id).await?;
            if !print_data(ctx.output, &serde_json::json!({"id": id, "removed": true}))? {
                say!("template {id} removed");
            }
        }
    }
    Ok(())
}

fn read_spec(file: &Path) -> Result<TemplateSpec> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| CliError::Failed(format!("cannot read stdin: {err}")))?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|err| CliError::Failed(format!("cannot read {}: {err}", file.display())))?
    };
    serde_saphyr::from_str(&text)
        .map_err(|err| CliError::Usage(format!("{} is not a template file: {err}", file.display())))
}

fn show(t: &Template, compose: bool) {
    say!("{} ({}), version {}", t.name, t.id, t.version);
    if !t.description.is_empty() {
        say!("{}", t.description);
    }
    say!(
        "category: {}   source: {}",
        if t.category.is_empty() {
            "-"
        } else {
            &t.category
        },
        serde_json::to_value(t.source)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    say!();
    if t.parameters.is_empty() {
        say!("Parameters: none");
    } else {
        say!("Parameters:\n{}", parameters_table(&t.parameters));
    }
    let secrets: Vec<&str> = (t.parameters.iter())
        .filter(|p| p.kind == ParameterType::Secret)
        .map(|p| p.name.as_str())
        .collect();
    if !secrets.is_empty() {
        say!();
        say!(
            "Secrets ({}) are sealed with the deployment's environment and shown as ***.",
            secrets.join(", ")
        );
    }
    if compose {
        say!();
        say!("{}", t.compose.trim_end());
    }
}
