//! `miaas agent`: runs the node agent until SIGINT or SIGTERM (deployments keep
//! running).

use std::path::PathBuf;
use std::sync::Arc;

use miaas_agent::runtime::{DockerRuntime, Runtime, SimulatedRuntime};
use miaas_agent::{AgentConfig, AgentError};

use crate::cli::{AgentArgs, RuntimeKind};
use crate::error::{CliError, Result};

/// Runs the agent against `server`.
pub async fn run(server: &str, ca_cert: Option<PathBuf>, args: AgentArgs) -> Result<()> {
    miaas_server::telemetry::init(&args.log_level, miaas_server::LogFormat::Text)
        .map_err(|err| CliError::Usage(err.to_string()))?;
    let name = args
        .name
        .clone()
        .or_else(miaas_agent::machine::host_name)
        .ok_or_else(|| CliError::Usage("cannot tell the host name: give --name".into()))?;
    let runtime: Arc<dyn Runtime> = match args.runtime {
        RuntimeKind::Docker => Arc::new(
            DockerRuntime::detect()
                .await
                .with_start_timeout(args.start_timeout),
        ),
        RuntimeKind::Simulated => Arc::new(SimulatedRuntime {
            start_delay: args.simulated_start,
            fail_pattern: args.simulated_fail.clone(),
            ready_after: args.simulated_ready,
            unhealthy_pattern: args.simulated_unhealthy.clone(),
        }),
    };
    let config = AgentConfig {
        server: server.to_string(),
        join_token: args.join_token.filter(|t| !t.trim().is_empty()),
        ca_cert,
        name,
        ip: args.ip,
        tags: args.tags,
        state_dir: args.state_dir.unwrap_or_else(default_state_dir),
        heartbeat_interval: args.heartbeat_interval,
        measure_interval: args.measure_interval,
        max_parallel_starts: usize::from(args.max_parallel_starts),
    };
    tracing::info!(server = %config.server, name = %config.name, state_dir = %config.state_dir.display(), "agent starting");
    miaas_agent::run(config, runtime, miaas_server::shutdown_signal())
        .await
        .map_err(|err| match err {
            AgentError::Config(message) => CliError::Usage(message),
            other => CliError::Failed(other.to_string()),
        })
}

/// `/var/lib/miaas-agent` for root, else a folder of the user's.
fn default_state_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/miaas-agent");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("miaas-agent")
}
