//! # miaas-server
//!
//! The MIaaS control plane over HTTP (axum): the original API's paths, JSON and
//! status codes, an OpenAPI document generated from the code, and Swagger UI / ReDoc
//! served from the binary.
//!
//! ```no_run
//! # async fn example() -> Result<(), miaas_server::ServerError> {
//! let mut config = miaas_server::ServerConfig::with_database("sqlite://control_plane.db");
//! config.port = 0; // any free port
//! let app = miaas_server::Application::build(&config).await?;
//! println!("listening on {}", app.port());
//! app.run_until(miaas_server::shutdown_signal()).await
//! # }
//! ```

mod app;
mod auth;
mod bootstrap;
mod client_addr;
pub mod config;
mod downloads;
mod error;
mod extract;
mod limit;
mod local_only;
mod metrics;
mod overload;
mod page_cache;
mod request_id;
mod routes;
mod security_headers;
mod serve;
mod state;
pub mod telemetry;
mod template_folder;
mod tls;
mod tls_auto;
mod ui;

pub use app::{Application, run, shutdown_signal};
pub use config::{AuthMode, LogFormat, ServerConfig, TlsMode};
pub use error::{ApiError, ErrorBody, ServerError};
pub use routes::openapi;
pub use routes::placement::PlanRequest;

/// Decodes a JSON request body exactly as the routes do (the body's bytes, once
/// its `Content-Type` was accepted): `400` for malformed JSON, `422` naming the
/// field for a missing, mistyped or out-of-range one. For fuzzing and tools.
pub fn decode_json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    extract::parse_json(bytes)
}
