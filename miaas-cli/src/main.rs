//! `miaas`: the MIaaS command line. It talks to a server (`--server`) or works on a
//! database directly, with the same output either way.

#[macro_use]
mod output;
mod backend;
mod cli;
mod commands;
mod credentials;
mod error;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use backend::{Backend, HttpBackend, LocalBackend};
use cli::{Cli, Command};
use error::{CliError, Result};

fn main() -> ExitCode {
    // a template rendering worker renders, and exits, before anything starts
    miaas_core::templates::sandbox::serve_worker_if_asked();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(mut config) => {
            config.template_isolation = miaas_core::templates::Isolation::worker_of_this_program()
                .map_err(|err| CliError::Failed(format!("cannot find this program: {err}")))?;
            miaas_server::run(*config)
                .await
                .map_err(|err| CliError::Failed(err.to_string()))
        }
        Command::Db(command) => commands::db::run(command, &cli.database_url, cli.output).await,
        Command::Agent(args) => {
            let server = cli.server.clone().ok_or_else(|| {
                CliError::Usage(
                    "the agent joins a control plane: give its URL with --server (or \
                     MIAAS_SERVER)"
                        .into(),
                )
            })?;
            commands::agent::run(&server, cli.ca_cert.clone(), *args).await
        }
        Command::Version => {
            say!("miaas {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "miaas", &mut script);
            say!("{}", String::from_utf8_lossy(&script).trim_end());
            Ok(())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|err| CliError::Failed(format!("cannot write the manual page: {err}")))?;
            say!("{}", String::from_utf8_lossy(&page).trim_end());
            Ok(())
        }
        Command::Logout => commands::login::logout(&require_server(cli.server.as_deref())?),
        Command::Login(args) => {
            let server = require_server(cli.server.as_deref())?;
            let backend = HttpBackend::new(&server, None, cli.ca_cert.as_deref())?;
            commands::login::login(&backend, cli.output, &server, args).await
        }
        command => {
            let backend: Box<dyn Backend> = match &cli.server {
                Some(server) => {
                    // --token / MIAAS_TOKEN first, else the saved login
                    let now = miaas_core::clock::Clock::now(&miaas_core::clock::SystemClock);
                    let token = cli
                        .token
                        .clone()
                        .or_else(|| credentials::token_for(server, now));
                    Box::new(HttpBackend::new(server, token, cli.ca_cert.as_deref())?)
                }
                None => Box::new(LocalBackend::open(&cli.database_url).await?),
            };
            let ctx = commands::Context {
                backend,
                output: cli.output,
            };
            let outcome = commands::run(&ctx, command).await;
            ctx.backend.finish().await;
            outcome
        }
    }
}

fn require_server(server: Option<&str>) -> Result<String> {
    server.map(str::to_string).ok_or_else(|| {
        CliError::Usage(
            "logging in and out talks to a server: give --server (or MIAAS_SERVER); local \
             mode needs no login"
                .into(),
        )
    })
}
