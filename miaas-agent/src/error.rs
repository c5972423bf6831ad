//! The one error type of `miaas-agent`.

/// What can stop the agent or one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration cannot work (a missing join token, a bad URL).
    #[error("{0}")]
    Config(String),
    /// The control plane could not be reached (or answered 5xx); retried.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// The control plane refused this node's credential (`401`/`404`): the node
    /// was removed or its token replaced.
    #[error("the control plane no longer knows this node: {0}")]
    Unknown(String),
    /// The control plane refused the request for another reason.
    #[error("the control plane refused: {0}")]
    Refused(String),
    /// The control plane refused this node's registration (a name taken, a wrong
    /// join token): only a person can fix that, so the agent stops.
    #[error("the control plane refused: {0}")]
    Rejected(String),
    /// Reading or writing the state directory failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl AgentError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Shorthand for results of the agent.
pub type Result<T, E = AgentError> = std::result::Result<T, E>;
