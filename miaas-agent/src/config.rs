//! What an agent needs to start.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An agent's settings (the `miaas agent` flags).
#[derive(Clone)]
pub struct AgentConfig {
    /// The control plane, `http://host:port`.
    pub server: String,
    /// The cluster's join token: needed for the first registration, and again
    /// only when the control plane no longer knows this node. It may pin the
    /// server's CA (`<token>::sha256:<hex>`).
    pub join_token: Option<String>,
    /// Trust only the CA certificates of this PEM file (else the CA a pinned join
    /// token named, else the system roots).
    pub ca_cert: Option<PathBuf>,
    /// The node's name.
    pub name: String,
    /// The node's address (default: the one routing to the server).
    pub ip: Option<IpAddr>,
    /// The node's tags.
    pub tags: Vec<String>,
    /// Where the identity and the deployments' files live.
    pub state_dir: PathBuf,
    /// How often a heartbeat is sent.
    pub heartbeat_interval: Duration,
    /// How often the machine is measured again (the node re-registers when its
    /// capabilities changed: a GPU added, memory resized).
    pub measure_interval: Duration,
    /// How many deployments may be starting at once.
    pub max_parallel_starts: usize,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("server", &self.server)
            .field("join_token", &self.join_token.as_ref().map(|_| "***"))
            .field("ca_cert", &self.ca_cert)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("tags", &self.tags)
            .field("state_dir", &self.state_dir)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("measure_interval", &self.measure_interval)
            .field("max_parallel_starts", &self.max_parallel_starts)
            .finish()
    }
}
