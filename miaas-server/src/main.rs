//! `miaas-server`: the MIaaS control plane HTTP server.

use std::process::ExitCode;

use clap::Parser;

/// MIaaS control plane: node registry, deployments and placement over HTTP.
#[derive(Debug, Parser)]
#[command(name = "miaas-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: miaas_server::ServerConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match miaas_server::run(cli.config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::FAILURE
        }
    }
}
