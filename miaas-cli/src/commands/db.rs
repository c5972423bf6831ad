//! `miaas db migrate` and `miaas db copy`: always on databases directly.

use miaas_core::store::{connect_with, copy};

use crate::backend::local_options;

use crate::cli::DbCommand;
use crate::error::{CliError, Result};
use crate::output::{OutputFormat, print_data};

/// Runs a `db` subcommand.
pub async fn run(command: DbCommand, database_url: &str, output: OutputFormat) -> Result<()> {
    match command {
        DbCommand::Migrate => {
            connect_with(database_url, &local_options(database_url)?).await?;
            if !print_data(output, &serde_json::json!({"migrated": true}))? {
                say!("database schema is up to date");
            }
            Ok(())
        }
        DbCommand::Copy { from, to } => {
            let source = connect_with(&from, &local_options(&from)?).await?;
            let target = connect_with(&to, &local_options(&to)?).await?;
            let report = copy(source.as_ref(), target.as_ref())
                .await
                .map_err(|err| CliError::Failed(format!("copy failed: {err}")))?;
            source.close().await;
            target.close().await;
            if !print_data(output, &report)? {
                say!(
                    "copied {} nodes, {} deployments and {} template versions; counts verified",
                    report.nodes,
                    report.deployments,
                    report.templates
                );
            }
            Ok(())
        }
    }
}
