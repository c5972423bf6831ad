//! How results are printed: tables for people, JSON or YAML exactly as the API
//! answers for programs.

mod gpus;
mod human;
mod tables;

use std::io::IsTerminal;

use serde::Serialize;

use crate::error::{CliError, Result};

pub use gpus::gpu_lines;
pub use human::size_mb;
pub use tables::{
    deployments_table, nodes_table, parameters_table, plan_tables, templates_table, tokens_table,
    users_table,
};

/// `-o`/`--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table (the default).
    Table,
    /// A table with more columns.
    Wide,
    /// Exactly the API's JSON.
    Json,
    /// The API's JSON, as YAML.
    Yaml,
}

/// Writes a line to stdout; a closed pipe (`miaas ps | head -1`) is not an error.
pub fn emit(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// `println!` that does not panic when stdout is a closed pipe.
#[macro_export]
macro_rules! say {
    () => {
        $crate::output::emit(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!($($arg)*))
    };
}

/// Prints `value` as JSON or YAML; `false` when the format is a table (the caller
/// prints that).
pub fn print_data<T: Serialize>(format: OutputFormat, value: &T) -> Result<bool> {
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map_err(|err| CliError::Failed(format!("cannot print JSON: {err}")))?,
        OutputFormat::Yaml => serde_saphyr::to_string(value)
            .map_err(|err| CliError::Failed(format!("cannot print YAML: {err}")))?,
        OutputFormat::Table | OutputFormat::Wide => return Ok(false),
    };
    say!("{}", text.trim_end());
    Ok(true)
}

/// Whether stdout is a terminal that wants colour (`NO_COLOR` unset).
pub fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
