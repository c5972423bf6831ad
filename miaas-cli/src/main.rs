//! `miaas`: the MIaaS command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MIaaS: a control plane for your own GPU and CPU machines.
#[derive(Debug, Parser)]
#[command(name = "miaas", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane server (the same server and flags as `miaas-server`).
    Serve(Box<miaas_server::ServerConfig>),
    /// Print the version of this command.
    Version,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(config) => miaas_server::run(*config)
            .await
            .map_err(anyhow::Error::from),
        Command::Version => {
            println!("miaas {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
