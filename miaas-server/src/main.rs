//! `miaas-server`: the MIaaS control plane HTTP server.

use clap::Parser;

/// MIaaS control plane: node registry, deployments and placement over HTTP.
#[derive(Debug, Parser)]
#[command(name = "miaas-server", version, about)]
struct Cli {
    #[command(flatten)]
    config: miaas_server::ServerConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    miaas_server::run(cli.config).await?;
    Ok(())
}
