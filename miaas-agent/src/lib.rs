//! The node side of MIaaS as a library: an agent joins a control plane with the
//! join token (keeping its identity in a state directory), reports what the
//! machine has and how it is doing, and runs the deployments placed on it with a
//! [`runtime::Runtime`] (Docker Compose, or a simulation), reporting their status.
//! `miaas agent` runs it.

#![forbid(unsafe_code)]

mod agent;
pub mod client;
pub mod config;
pub mod error;
pub mod gpus;
pub mod identity;
mod log_sessions;
pub mod machine;
mod measure;
mod reconcile;
pub mod runtime;
pub mod trust;
mod worker;

pub use agent::run;
pub use config::AgentConfig;
pub use error::{AgentError, Result};
