//! A fleet of simulated agents in one process, for `bench/fleet-agents`: the real
//! agent library, N times, against one control plane. Runs until SIGINT/SIGTERM.
//!
//! ```sh
//! cargo run --release -p miaas-agent --example fleet -- URL JOIN_TOKEN AGENTS STATE_DIR [HEARTBEAT_SECS]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use miaas_agent::AgentConfig;
use miaas_agent::runtime::SimulatedRuntime;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, server, join_token, agents, state_dir, rest @ ..] = args.as_slice() else {
        eprintln!("usage: fleet URL JOIN_TOKEN AGENTS STATE_DIR [HEARTBEAT_SECS]");
        std::process::exit(2);
    };
    let Ok(agents) = agents.parse::<usize>() else {
        eprintln!("AGENTS must be a number");
        std::process::exit(2);
    };
    let heartbeat = rest
        .first()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs_f64);
    let runtime = Arc::new(SimulatedRuntime::new(Duration::ZERO));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::with_capacity(agents);
    for i in 0..agents {
        let config = AgentConfig {
            server: server.clone(),
            join_token: Some(join_token.clone()),
            ca_cert: None,
            name: format!("fleet-{i:05}"),
            ip: Some(std::net::IpAddr::from([
                10,
                9,
                (i / 250) as u8,
                (i % 250) as u8 + 1,
            ])),
            tags: Vec::new(),
            state_dir: PathBuf::from(state_dir).join(format!("{i:05}")),
            heartbeat_interval: heartbeat,
            // simulated machines do not change
            measure_interval: std::time::Duration::from_secs(3600),
            max_parallel_starts: 4,
        };
        let runtime = runtime.clone();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(err) = miaas_agent::run(config, runtime, shutdown).await {
                eprintln!("agent {i}: {err}");
            }
        }));
        // joining spread over time, as a real fleet would
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("{agents} agents started");
    let _ = tokio::signal::ctrl_c().await;
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
}
