//! `miaas logs DEPLOYMENT`.

use miaas_core::model::LogQuery;

use super::Context;
use crate::cli::LogsArgs;
use crate::error::{CliError, Result};
use crate::output::OutputFormat;

/// Prints the deployment's log lines as they come.
pub async fn run(ctx: &Context, args: LogsArgs) -> Result<()> {
    let query = LogQuery {
        follow: Some(args.follow),
        tail: Some(args.tail),
        since: args.since,
        service: args.service,
    };
    let mut feed = ctx.backend.logs(&args.deployment, &query).await?;
    while let Some(line) = feed.next().await? {
        match ctx.output {
            OutputFormat::Json | OutputFormat::Yaml => {
                let json = serde_json::to_string(&line)
                    .map_err(|err| CliError::Failed(format!("cannot print JSON: {err}")))?;
                say!("{json}");
            }
            OutputFormat::Table | OutputFormat::Wide => {
                let ts = match (
                    &line.ts,
                    args.timestamps || ctx.output == OutputFormat::Wide,
                ) {
                    (Some(ts), true) => format!("{ts} "),
                    _ => String::new(),
                };
                say!("{} | {ts}{}", line.service, line.line);
            }
        }
    }
    Ok(())
}
