//! `miaas events` and `miaas ps --watch`.

use std::io::IsTerminal;

use miaas_core::model::Event;

use super::Context;
use crate::backend::EventsRequest;
use crate::cli::{DeploymentsCommand, EventsArgs};
use crate::error::{CliError, Result};
use crate::output::OutputFormat;

/// Prints events, one line each (`-o json`: one JSON object per line).
pub async fn run(ctx: &Context, args: EventsArgs) -> Result<()> {
    let request = EventsRequest {
        since: args.since,
        topics: args.topic,
        types: args.types,
        follow: args.follow,
    };
    let mut feed = ctx.backend.events(&request).await?;
    let mut any = false;
    while let Some(event) = feed.next().await? {
        any = true;
        print_event(ctx.output, &event)?;
    }
    if !any && ctx.output == OutputFormat::Table {
        eprintln!("no events");
    }
    Ok(())
}

fn print_event(format: OutputFormat, event: &Event) -> Result<()> {
    match format {
        OutputFormat::Json => {
            let json = serde_json::to_string(event)
                .map_err(|err| CliError::Failed(format!("cannot print JSON: {err}")))?;
            say!("{json}");
        }
        OutputFormat::Yaml => {
            let yaml = serde_saphyr::to_string(event)
                .map_err(|err| CliError::Failed(format!("cannot print YAML: {err}")))?;
            say!("---\n{}", yaml.trim_end());
        }
        OutputFormat::Table | OutputFormat::Wide => say!("{}", line(event, format)),
    }
    Ok(())
}

/// `2026-12-02T10:00:00Z  deployment.running  web  web running on worker-01`.
pub fn line(event: &Event, format: OutputFormat) -> String {
    let since_epoch =
        std::time::Duration::try_from_secs_f64(event.time.max(0.0)).unwrap_or_default();
    let time = std::time::UNIX_EPOCH + since_epoch;
    let mut text = format!(
        "{}  {:<22} {:<24} {}",
        humantime::format_rfc3339_seconds(time),
        event.kind,
        event.subject,
        event.summary
    );
    if format == OutputFormat::Wide {
        text.push_str(&format!(
            "  [cursor {}{}{}]",
            event.cursor,
            event
                .actor
                .as_deref()
                .map(|a| format!(", by {a}"))
                .unwrap_or_default(),
            event
                .client
                .as_deref()
                .map(|c| format!(", from {c}"))
                .unwrap_or_default()
        ));
    }
    text
}

/// `miaas ps --watch`: the list, printed again after each change of a deployment.
pub async fn watch_deployments(ctx: &Context) -> Result<()> {
    // following starts before the first list, so no change falls in between
    let request = EventsRequest {
        topics: vec!["deployment".into()],
        follow: true,
        ..EventsRequest::default()
    };
    let mut feed = ctx.backend.events(&request).await?;
    let clear = std::io::stdout().is_terminal();
    loop {
        if clear {
            say!("\x1b[2J\x1b[H");
        }
        super::deployments::run(ctx, DeploymentsCommand::List).await?;
        if feed.next().await?.is_none() {
            return Ok(());
        }
    }
}
