//! Docker Compose documents as Compose reads them: parsed ([`parse_compose`]),
//! interpolated with a deployment's environment ([`interpolate`]), judged against
//! what an operator may run ([`baseline`]), the requirements they state
//! ([`requirements`]), and written out for the node that runs them ([`node_document`]).

pub mod baseline;
pub mod gpus;
pub mod interpolate;
pub mod node_document;
pub mod ports;
pub mod profiles;
pub mod requirements;
pub mod runnable;

use serde_json::Value;

use crate::model::Requirements;
use crate::{Error, Result};

pub use gpus::is_gpu_request;
pub use requirements::{derive, memory_mb, parse_size_bytes, requirements_of};

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
/// wrong (and where the YAML parser says so). Its text, aliases replayed, may
/// be at most [`interpolate::MAX_INTERPOLATED_BYTES`] (the parser's default,
/// 64 MiB, let a 400 KB scalar replayed 160 times take 64 MiB for a document
/// interpolation refuses anyway). Booleans are YAML 1.2's (`true`, `false`), as
/// Compose v2 reads them: `image: y` is the image `y`, and `privileged: yes` the
/// string Compose casts to true (and judges as such).
pub fn parse_compose(compose: &str) -> Result<Value> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_total_scalar_bytes: interpolate::MAX_INTERPOLATED_BYTES,
        },
        strict_booleans: true,
    };
    let document: Value = serde_saphyr::from_str_with_options(compose, options)
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

#[cfg(test)]
mod tests {
    /// A scalar of 400 KB replayed 160 times is 64 MiB of text from a document
    /// of 400 KB: refused while parsing, before it is built.
    #[test]
    fn aliases_cannot_make_a_document_hold_more_than_interpolation_allows() {
        let anchors: String = (0..20).map(|i| format!("&b{i} 1, ")).collect();
        let aliases = "*a, ".repeat(160);
        let compose = format!(
            "x-big: &a {}\nx-anchors: [{anchors}1]\nx-list: [{aliases}1]\nservices: {{a: {{image: x}}}}\n",
            "x".repeat(400_000)
        );
        let err = super::parse_compose(&compose).unwrap_err().to_string();
        assert!(err.contains("budget"), "{err}");
        // one use of it is fine
        let once = format!(
            "x-big: &a {}\nservices: {{a: {{image: x, command: *a}}}}\n",
            "x".repeat(400_000)
        );
        assert!(super::parse_compose(&once).is_ok());
    }
}
