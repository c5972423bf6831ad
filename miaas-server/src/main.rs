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

fn main() -> ExitCode {
    // a template rendering worker renders, and exits, before anything starts
    miaas_core::templates::sandbox::serve_worker_if_asked();
    let mut cli = Cli::parse();
    match miaas_core::templates::Isolation::worker_of_this_program() {
        Ok(isolation) => cli.config.template_isolation = isolation,
        Err(err) => eprintln!("warning: templates render in this process: {err}"),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(miaas_server::run(cli.config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            ExitCode::FAILURE
        }
    }
}
