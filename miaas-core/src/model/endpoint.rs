//! Where a placed deployment can be reached.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One published port of a placed deployment: `{"service": "web", "host":
/// "10.0.0.7", "port": 8080, "target_port": 80, "protocol": "tcp", "url":
/// "http://10.0.0.7:8080"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Endpoint {
    /// The service publishing it.
    pub service: String,
    /// The node's address (the published `host_ip` when it is a specific one).
    pub host: String,
    /// The port on the node.
    pub port: u16,
    /// The container's port behind it, when the mapping names one.
    pub target_port: Option<u16>,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `http://host:port`, for TCP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Endpoint {
    /// The endpoint of `published` on a node at `node_ip`.
    pub fn of(
        service: &str,
        port: &super::HostPort,
        target_port: Option<u16>,
        node_ip: &str,
    ) -> Self {
        let host = if port.on_every_address() {
            node_ip.to_string()
        } else {
            port.host_ip.clone()
        };
        let url = (port.protocol == "tcp").then(|| {
            let shown = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            format!("http://{shown}:{}", port.port)
        });
        Self {
            service: service.to_string(),
            host,
            port: port.port,
            target_port,
            protocol: port.protocol.clone(),
            url,
        }
    }
}
