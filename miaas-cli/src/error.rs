//! The CLI's errors and their exit codes.

/// Exit codes, as documented in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  success
  1  the operation failed (server unreachable, refused, invalid input, timeout)
  2  usage error (unknown command or flag, bad flag value)
  3  not found (no such node or deployment)";

/// A failure, carrying the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The named thing does not exist (exit 3).
    #[error("{0}")]
    NotFound(String),
    /// The operation failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// The command line is wrong in a way clap cannot see (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Failed(_) => 1,
            Self::Usage(_) => 2,
            Self::NotFound(_) => 3,
        }
    }
}

impl From<miaas_core::Error> for CliError {
    fn from(err: miaas_core::Error) -> Self {
        match err {
            miaas_core::Error::NotFound(what) => Self::NotFound(what),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// Shorthand for the CLI's results.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
