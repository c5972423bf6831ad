//! Domain types; their serde form is exactly the API's JSON.

mod capabilities;
mod deployment;
mod heartbeat;
mod node;
pub mod number;
pub mod schema;

use schema::{env_schema, tag_list_schema};

pub use capabilities::{DockerInfo, GpuInfo, NodeCapabilities};
pub use deployment::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentStatus,
    MAX_COMPOSE_BYTES,
};
pub use heartbeat::{Heartbeat, HeartbeatAck};
pub use node::{Node, NodeMetrics, NodeRecord, NodeRegistration, NodeStatus, RegistrationResponse};
