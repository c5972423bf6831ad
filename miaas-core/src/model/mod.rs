//! Domain types; their serde form is exactly the API's JSON.

/// `Debug` of the types that carry a secret: the secret field prints `***`.
macro_rules! debug_without {
    ($type:ty, $secret:ident, [$($field:ident),*]) => {
        impl std::fmt::Debug for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .field(stringify!($secret), &"***")
                    .finish()
            }
        }
    };
}

mod access;
mod agent;
mod capabilities;
mod deployment;
mod endpoint;
mod env;
mod event;
mod gpu_usage;
mod health;
mod heartbeat;
mod logs;
mod node;
pub mod number;
pub mod page;
mod requirements;
pub mod schema;
mod template;

use schema::{env_schema, tag_list_schema};

pub use access::{
    AccessToken, ApiTokenInfo, CreatedApiToken, CreatedUser, JoinToken, LoginRequest,
    MIN_PASSWORD_CHARS, NewUser, PasswordChange, Role, TokenRequest, User, validate_password,
    validate_username,
};
pub use agent::{
    DesiredDeployment, DesiredState, DesiredStateQuery, RemovalOrder, ReportedStatus, StatusReport,
};
pub use capabilities::{DockerInfo, GpuInfo, NodeCapabilities};
pub use deployment::{
    Deployment, DeploymentAck, DeploymentAction, DeploymentRequest, DeploymentSpec,
    DeploymentStatus, MAX_COMPOSE_BYTES, PlacementSummary, REDACTED, health_note, status_text,
};
pub use endpoint::Endpoint;
pub use env::Env;
pub use event::{Event, EventBounds, EventFilter, NewEvent};
pub use gpu_usage::{GpuUsage, MAX_GPUS, average_utilization, reading_text};
pub use health::DeploymentHealth;
pub use heartbeat::{Heartbeat, HeartbeatAck, HeartbeatMetrics};
pub use logs::{LogLine, LogQuery, LogRequest, LogSession, MAX_TAIL};
pub use node::{
    Node, NodeMetrics, NodeRecord, NodeRegistration, NodeStatus, NodeUpdate, NodeUsage,
    RegistrationResponse, free_resources,
};
pub use requirements::{
    Derivation, HostPort, MAX_PORTS, Requirements, Resources, lenient_version, parse_version_req,
};
pub use template::{
    Generator, ParameterType, RenderRequest, RenderedTemplate, Template, TemplateParameter,
    TemplateSource, TemplateSpec, TemplateSummary,
};

#[cfg(test)]
mod debug_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn types_that_carry_secrets_never_print_them() {
        let secret = "hunter2-secret";
        let request: DeploymentRequest = serde_json::from_value(json!({
            "deployment_id": "d", "template_id": "t",
            "rendered_compose": "services: {a: {image: x}}",
            "env": {"PASSWORD": secret}
        }))
        .unwrap();
        let desired: DesiredDeployment = serde_json::from_value(json!({
            "deployment_id": "d", "template_id": "t", "revision": 1,
            "rendered_compose": "x", "env": {"PASSWORD": secret},
            "gpu_ids": [], "status": "scheduled"
        }))
        .unwrap();
        let registered = RegistrationResponse {
            node_id: "n".into(),
            node_token: secret.into(),
            control_plane_url: "http://cp".into(),
        };
        let change = PasswordChange {
            password: secret.into(),
            old_password: Some(secret.into()),
        };
        for shown in [
            format!("{request:?}"),
            format!("{desired:?}"),
            format!("{registered:?}"),
            format!("{change:?}"),
        ] {
            assert!(!shown.contains(secret) && shown.contains("***"), "{shown}");
        }
    }
}
