//! The commands, each written once against [`Backend`].

mod access;
pub mod agent;
pub mod db;
mod deploy;
mod deployments;
mod events;
mod input;
pub mod login;
mod logs;
mod nodes;
mod plan;
mod resolve;
mod templates;

use miaas_core::clock::{Clock, SystemClock};

use crate::backend::Backend;
use crate::cli::{Command, DeploymentsCommand};
use crate::error::Result;
use crate::output::OutputFormat;

/// What every command gets.
pub struct Context {
    /// Where the work goes.
    pub backend: Box<dyn Backend>,
    /// How to print.
    pub output: OutputFormat,
}

impl Context {
    /// Now, as epoch seconds.
    pub fn now(&self) -> f64 {
        SystemClock.now()
    }
}

/// Runs one command (not `serve`, `version` or `completions`, which need no backend).
pub async fn run(ctx: &Context, command: Command) -> Result<()> {
    match command {
        Command::Nodes(command) => nodes::run(ctx, command).await,
        Command::Deploy(args) => deploy::run(ctx, args).await,
        Command::Deployments(command) => deployments::run(ctx, command).await,
        Command::Ps { watch: false } => deployments::run(ctx, DeploymentsCommand::List).await,
        Command::Ps { watch: true } => events::watch_deployments(ctx).await,
        Command::Events(args) => events::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Rm { id } => deployments::run(ctx, DeploymentsCommand::Rm { id }).await,
        Command::Plan(args) => plan::run(ctx, args).await,
        Command::Templates(command) => templates::run(ctx, command).await,
        Command::Users(command) => access::users(ctx, command).await,
        Command::Tokens(command) => access::tokens(ctx, command).await,
        Command::Serve(_)
        | Command::Agent(_)
        | Command::Db(_)
        | Command::Version
        | Command::Completions { .. }
        | Command::Man
        | Command::Login(_)
        | Command::Logout => Ok(()),
    }
}
