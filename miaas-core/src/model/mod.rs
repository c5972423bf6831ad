//! Domain types; their serde form is exactly the API's JSON.

mod access;
mod agent;
mod capabilities;
mod deployment;
mod env;
mod heartbeat;
mod node;
pub mod number;
pub mod page;
mod requirements;
pub mod schema;

use schema::{env_schema, tag_list_schema};

pub use access::{
    AccessToken, ApiTokenInfo, CreatedApiToken, CreatedUser, JoinToken, LoginRequest,
    MIN_PASSWORD_CHARS, NewUser, PasswordChange, Role, TokenRequest, User, validate_password,
    validate_username,
};
pub use agent::{DesiredDeployment, DesiredState, RemovalOrder, ReportedStatus, StatusReport};
pub use capabilities::{DockerInfo, GpuInfo, NodeCapabilities};
pub use deployment::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentStatus,
    MAX_COMPOSE_BYTES, PlacementSummary, REDACTED,
};
pub use env::Env;
pub use heartbeat::{Heartbeat, HeartbeatAck};
pub use node::{
    Node, NodeMetrics, NodeRecord, NodeRegistration, NodeStatus, NodeUpdate, NodeUsage,
    RegistrationResponse, free_resources,
};
pub use requirements::{Requirements, Resources, parse_version_req};
