//! The document a node hands to Compose: the deployment's document as Compose
//! would resolve it with the deployment's environment ([`resolve`]), that
//! environment given to every service, and every `$` written `$$`, so that
//! Compose on the node interpolates nothing and runs exactly what the server
//! judged ([`for_node`]).

use serde_json::{Map, Value};

use super::interpolate::{MAX_INTERPOLATED_BYTES, escape, interpolate_within};
use super::{invalid, parse_compose};
use crate::Result;
use crate::model::Env;

/// `compose` as Compose would run it with `env` and nothing else in its
/// environment: parsed (anchors and merge keys resolved) and interpolated. The
/// node's document ([`for_node`]) then gives `env` to every service: with that,
/// it may hold at most [`MAX_INTERPOLATED_BYTES`] of text.
pub fn resolve(compose: &str, env: &Env) -> Result<Value> {
    let document = parse_compose(compose)?;
    let services = document["services"].as_object().map_or(0, Map::len);
    let env_bytes: usize = env
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    let room = MAX_INTERPOLATED_BYTES
        .checked_sub(services.saturating_mul(env_bytes))
        .ok_or_else(|| {
            invalid(format_args!(
                "env ({env_bytes} bytes) given to each of the {services} services would make a \
                 document of more than {} MiB",
                MAX_INTERPOLATED_BYTES / (1024 * 1024)
            ))
        })?;
    interpolate_within(&document, &|name| env.get(name), room)
}

/// The text of `resolved` ([`resolve`]) for the node: every service's
/// `environment` holds `env` (its own entries win, as they would over an
/// `env_file`; an entry without a value takes it from `env`, or is dropped when
/// `env` has none, as in a clean environment), and every `$` of every value is
/// written `$$`. JSON, which Compose reads as YAML.
pub fn for_node(resolved: &Value, env: &Env) -> String {
    let mut document = resolved.clone();
    if let Some(Value::Object(services)) = document.get_mut("services") {
        for service in services.values_mut() {
            if let Value::Object(service) = service {
                give_environment(service, env);
            }
        }
    }
    escape(&mut document);
    // a `Value` always serializes
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// Sets the service's `environment` to its own entries over `env`, as a mapping.
fn give_environment(service: &mut Map<String, Value>, env: &Env) {
    let mut merged: Map<String, Value> = env
        .iter()
        .map(|(name, value)| (name.to_string(), Value::String(value.to_string())))
        .collect();
    let own: Vec<(String, Option<Value>)> = match service.remove("environment") {
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(name, value)| (name, Some(value).filter(|v| !v.is_null())))
            .collect(),
        Some(Value::Array(list)) => list
            .into_iter()
            .filter_map(|entry| match entry {
                Value::String(text) => Some(match text.split_once('=') {
                    Some((name, value)) => (name.to_string(), Some(Value::String(value.into()))),
                    None => (text, None),
                }),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    for (name, value) in own {
        match value {
            Some(value) => {
                merged.insert(name, value);
            }
            // `NAME` alone: from the environment, which is `env` and nothing else
            None if env.get(&name).is_some() => {}
            None => {
                merged.remove(&name);
            }
        }
    }
    if !merged.is_empty() {
        service.insert("environment".into(), Value::Object(merged));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::compose::interpolate::interpolate;

    fn env(pairs: &[(&str, &str)]) -> Env {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
            .into()
    }

    #[test]
    fn the_node_gets_the_resolved_document_with_nothing_left_to_interpolate() {
        let env = env(&[
            ("TAG", "1.27"),
            ("SECRET", "pa$$word"),
            ("SHARED", "from env"),
        ]);
        let compose = "services:\n  web:\n    image: nginx:${TAG}\n    command: echo $$HOME\n    \
                       environment:\n      - OWN=mine\n      - SHARED=own wins\n      - SECRET\n      \
                       - UNSET\n  side:\n    image: busybox\n";
        let resolved = resolve(compose, &env).unwrap();
        let text = for_node(&resolved, &env);
        let sent: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(sent["services"]["web"]["image"], "nginx:1.27");
        assert_eq!(sent["services"]["web"]["command"], "echo $$HOME");
        assert_eq!(
            sent["services"]["web"]["environment"],
            json!({"OWN": "mine", "SHARED": "own wins", "SECRET": "pa$$$$word", "TAG": "1.27"})
        );
        assert_eq!(
            sent["services"]["side"]["environment"],
            json!({"SECRET": "pa$$$$word", "SHARED": "from env", "TAG": "1.27"})
        );
        // what Compose makes of it with any environment at all: the judged values
        let compose_reads = interpolate(&sent, &|_| Some("INJECTED")).unwrap();
        assert_eq!(compose_reads["services"]["web"]["command"], "echo $HOME");
        assert_eq!(
            compose_reads["services"]["web"]["environment"]["SECRET"],
            "pa$$word"
        );
    }

    /// A request is at most 1 MiB, but `$A` is two bytes and `A` may be most of
    /// it, and the node is given the environment in every service: the server
    /// must not build what that multiplies to (here 128 MiB each; 100 GiB fit in
    /// a request).
    #[test]
    fn the_environment_cannot_blow_a_small_document_up() {
        let big = "x".repeat(64 * 1024);
        let env = env(&[("A", &big)]);
        let referenced = format!(
            "services:\n  a:\n    image: busybox\n    command: \"{}\"\n",
            "$A".repeat(2048)
        );
        let many: String = (0..2048)
            .map(|i| format!("  s{i}: {{image: busybox}}\n"))
            .collect();
        let given_to_each = format!("services:\n{many}");
        for compose in [referenced, given_to_each] {
            let err = resolve(&compose, &env).unwrap_err().to_string();
            assert!(err.contains("more than 8 MiB"), "{err}");
        }
        // what a deployment needs is far below
        let plenty: String = (0..50)
            .map(|i| format!("  s{i}: {{image: busybox, command: \"$A $A\"}}\n"))
            .collect();
        let env = env_of_size(16 * 1024);
        assert!(resolve(&format!("services:\n{plenty}"), &env).is_ok());
    }

    fn env_of_size(bytes: usize) -> Env {
        env(&[("A", &"y".repeat(bytes))])
    }

    #[test]
    fn a_document_that_does_not_resolve_is_an_error() {
        let err = resolve(
            "services:\n  a:\n    image: ${IMAGE:?set IMAGE}\n",
            &Env::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("services.a.image") && err.contains("set IMAGE"),
            "{err}"
        );
    }
}
