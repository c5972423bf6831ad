//! Compose profiles: which services a plain `up` starts, given the
//! deployment's `COMPOSE_PROFILES`.

use serde_json::{Map, Value};

use crate::model::Env;

/// The profiles `COMPOSE_PROFILES` enables (comma-separated; `*` is every one).
pub fn enabled_profiles(env: &Env) -> Vec<String> {
    env.get("COMPOSE_PROFILES")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a plain `up` starts `service`: it has no profile, or one enabled.
pub fn starts(service: &Map<String, Value>, enabled: &[String]) -> bool {
    let profiles: Vec<&str> = match service.get("profiles") {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    profiles.is_empty()
        || enabled.iter().any(|e| e == "*")
        || profiles.iter().any(|p| enabled.iter().any(|e| e == p))
}
