//! Docker Compose documents as Compose reads them: parsed ([`parse_compose`]),
//! interpolated with a deployment's environment ([`interpolate`]), judged against
//! what an operator may run ([`baseline`]), the requirements they state
//! ([`requirements`]), and written out for the node that runs them ([`node_document`]).

pub mod baseline;
pub mod interpolate;
pub mod node_document;
pub mod requirements;

use serde_json::Value;

use crate::model::Requirements;
use crate::{Error, Result};

pub use requirements::{is_gpu_request, memory_mb, parse_size_bytes, requirements_of};

/// The request field every error names.
const FIELD: &str = "rendered_compose";

/// An `Invalid` error about the compose document.
pub(crate) fn invalid(what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{FIELD}: {what}"))
}

/// Parses `compose` and derives the requirements it states. The document must be
/// YAML with a `services` mapping; errors name what is wrong (and where the YAML
/// parser says so).
pub fn requirements_from_compose(compose: &str) -> Result<Requirements> {
    requirements_of(&parse_compose(compose)?)
}

/// Parses `compose`: YAML with a `services` mapping, or an error naming what is
/// wrong (and where the YAML parser says so).
pub fn parse_compose(compose: &str) -> Result<Value> {
    let document: Value = serde_saphyr::from_str(compose)
        .map_err(|err| invalid(format_args!("invalid YAML: {err}")))?;
    match document.get("services") {
        Some(Value::Object(_)) => Ok(document),
        Some(Value::Null) | None => Err(invalid("the document has no `services` mapping")),
        Some(_) => Err(invalid("`services` must be a mapping of service names")),
    }
}

/// The service names of a compose document (empty when it does not parse).
pub fn service_names(compose: &str) -> Vec<String> {
    match parse_compose(compose) {
        Ok(document) => match document.get("services") {
            Some(Value::Object(services)) => services.keys().cloned().collect(),
            _ => Vec::new(),
        },
        Err(_) => Vec::new(),
    }
}
