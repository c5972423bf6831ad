//! Whether a node can run a resolved document at all: a node has only the
//! document, no other file, and pulls images; it builds none. Refused before
//! anything is stored, with what to do instead: a service that would start from a
//! `build:` with no `image`, or with no image at all, `extends` of another file,
//! `include`, and a document in which no service starts (every one behind a
//! profile). A service with both `build` and `image` runs from its image.

use serde_json::{Map, Value};

use super::invalid;
use super::profiles::{enabled_profiles, starts};
use crate::Result;
use crate::model::Env;

/// `Ok` when a node can run `document` (resolved) for a deployment with `env`;
/// else an `Invalid` error saying what to do.
pub fn check_runnable(document: &Value, env: &Env) -> Result<()> {
    if document.get("include").is_some_and(|i| !i.is_null()) {
        return Err(invalid(
            "include: a node has no other files; put the included services in this document",
        ));
    }
    let Some(Value::Object(services)) = document.get("services") else {
        return Err(invalid("the document has no `services` mapping"));
    };
    let enabled = enabled_profiles(env);
    let mut starting = 0;
    for (name, service) in services {
        let Value::Object(service) = service else {
            continue;
        };
        if !starts(service, &enabled) {
            continue;
        }
        starting += 1;
        let path = format!("services.{name}");
        if let Some(file) = service.get("extends").and_then(|e| e.get("file")) {
            return Err(invalid(format_args!(
                "{path}.extends: a node has no other files (file {file}); put what it extends \
                 in this document"
            )));
        }
        if image_of(services, name, service, 0).is_none() {
            let why = if service.contains_key("build") {
                "would be built from `build:`, and nodes build no images: build and push it, \
                 then give its name as `image`"
            } else {
                "has no `image`"
            };
            return Err(invalid(format_args!("{path}: {why}")));
        }
    }
    if starting == 0 {
        return Err(invalid(
            "no service starts: every one is behind a profile; set COMPOSE_PROFILES in the \
             deployment's env to the profiles to run",
        ));
    }
    Ok(())
}

/// The image `service` runs: its own, or one it `extends` from in this document
/// (a chain of at most 10).
fn image_of<'a>(
    services: &'a Map<String, Value>,
    name: &str,
    service: &'a Map<String, Value>,
    depth: usize,
) -> Option<&'a str> {
    if let Some(image) = service
        .get("image")
        .and_then(Value::as_str)
        .filter(|i| !i.is_empty())
    {
        return Some(image);
    }
    let base = service.get("extends")?;
    let base_name = match base {
        Value::String(base) => base.as_str(),
        other => other.get("service")?.as_str()?,
    };
    if depth >= 10 || base_name == name {
        return None;
    }
    let base = services.get(base_name)?.as_object()?;
    image_of(services, base_name, base, depth + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::compose::parse_compose;

    fn check(compose: &str, profiles: Option<&str>) -> std::result::Result<(), String> {
        let env: Env = profiles
            .map(|p| BTreeMap::from([("COMPOSE_PROFILES".to_string(), p.to_string())]))
            .unwrap_or_default()
            .into();
        let document = parse_compose(compose).map_err(|e| e.to_string())?;
        check_runnable(&document, &env).map_err(|e| e.to_string())
    }

    #[test]
    fn what_a_node_cannot_run_is_refused_with_what_to_do() {
        let built = check("services:\n  app:\n    build: .\n", None).unwrap_err();
        assert!(built.contains("build and push"), "{built}");
        let nothing = check("services:\n  app:\n    command: x\n", None).unwrap_err();
        assert!(nothing.contains("no `image`"), "{nothing}");
        let extends = "services:\n  app:\n    extends: {file: base.yaml, service: web}\n";
        assert!(check(extends, None).unwrap_err().contains("no other files"));
        let include = "include: [other.yaml]\nservices:\n  app:\n    image: x\n";
        assert!(check(include, None).unwrap_err().contains("include"));
        let profiled = "services:\n  app:\n    image: x\n    profiles: [gpu]\n";
        assert!(
            check(profiled, None)
                .unwrap_err()
                .contains("COMPOSE_PROFILES")
        );
        assert_eq!(check(profiled, Some("gpu")), Ok(()));
        assert_eq!(check(profiled, Some("*")), Ok(()));
    }

    #[test]
    fn what_runs_from_an_image_passes() {
        assert_eq!(
            check("services:\n  app:\n    image: x\n    build: .\n", None),
            Ok(())
        );
        let same_file = "services:\n  base:\n    image: x\n  app:\n    extends: base\n  \
                         other:\n    extends: {service: app}\n";
        assert_eq!(check(same_file, None), Ok(()));
        // a service behind a disabled profile is not started, so not judged
        let off = "services:\n  app:\n    image: x\n  dev:\n    build: .\n    profiles: [dev]\n";
        assert_eq!(check(off, None), Ok(()));
        let looped = "services:\n  a:\n    extends: b\n  b:\n    extends: a\n";
        assert!(check(looped, None).is_err());
    }
}
