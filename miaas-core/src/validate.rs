//! Field checks shared by the request types. Each error names its field.

use std::net::IpAddr;

use crate::{Error, Result};

/// Longest accepted name or id, in characters (a DNS name's limit).
pub const MAX_NAME_CHARS: usize = 253;

fn invalid(field: &str, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{field}: {what}"))
}

/// Not empty and not only whitespace.
pub fn non_blank(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(())
}

/// A human-given name: not blank, at most [`MAX_NAME_CHARS`], no control characters.
pub fn name(field: &str, value: &str) -> Result<()> {
    non_blank(field, value)?;
    let chars = value.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(invalid(
            field,
            format_args!("must be at most {MAX_NAME_CHARS} characters (got {chars})"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// A name that also appears in URL paths: no whitespace and none of `/ ? # %`.
pub fn identifier(field: &str, value: &str) -> Result<()> {
    name(field, value)?;
    if let Some(bad) = value
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%' | '\\'))
    {
        return Err(invalid(field, format_args!("must not contain {bad:?}")));
    }
    Ok(())
}

/// An IPv4 or IPv6 address.
pub fn ip(field: &str, value: &str) -> Result<()> {
    value
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| invalid(field, format_args!("{value:?} is not a valid IP address")))
}

/// A percentage: finite, 0 to 100.
pub fn percent(field: &str, value: f64) -> Result<()> {
    if !value.is_finite() || !(0.0..=100.0).contains(&value) {
        return Err(invalid(
            field,
            format_args!("must be a percentage between 0 and 100 (got {value})"),
        ));
    }
    Ok(())
}

/// A length (of a list or a text) within `max`.
pub fn list_len(field: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(invalid(field, format_args!("too long ({len} > {max})")));
    }
    Ok(())
}

/// A list of node tags: each a name without whitespace, at most 100.
pub fn tags(field: &str, tags: &[String]) -> Result<()> {
    list_len(field, tags.len(), 100)?;
    for tag in tags {
        identifier(field, tag)?;
    }
    Ok(())
}

/// A deployment's environment variable name: not empty, no `=`, no NUL, at most
/// 256 bytes, and none of the variables that steer Compose or Docker themselves
/// (`COMPOSE_*` but `COMPOSE_PROFILES`, `DOCKER_*`): a deployment chooses what
/// runs, not how the node's Compose runs it.
pub fn env_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 256 || key.contains(['=', '\0']) {
        return Err(invalid(
            "env",
            format_args!("{key:?} is not a valid variable name"),
        ));
    }
    let upper = key.to_ascii_uppercase();
    let steers = (upper.starts_with("COMPOSE_") && upper != "COMPOSE_PROFILES")
        || upper.starts_with("DOCKER_");
    if steers {
        return Err(invalid(
            "env",
            format_args!(
                "{key:?} steers Compose or Docker on the node (COMPOSE_* but COMPOSE_PROFILES, \
                 DOCKER_*): a deployment may not set it"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_present_short_and_printable() {
        assert!(name("name", "worker-01").is_ok());
        assert!(name("name", "").is_err());
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(254)).is_err());
        assert!(name("name", &"x".repeat(253)).is_ok());
        assert!(name("name", "a\nb").is_err());
        let err = name("name", "").unwrap_err().to_string();
        assert!(err.starts_with("name:"), "{err}");
    }

    #[test]
    fn identifiers_refuse_path_characters() {
        assert!(identifier("deployment_id", "deploy-123").is_ok());
        assert!(identifier("deployment_id", "a/b").is_err());
        assert!(identifier("deployment_id", "a b").is_err());
    }

    #[test]
    fn ips_accept_v4_and_v6_only() {
        assert!(ip("ip", "192.168.1.10").is_ok());
        assert!(ip("ip", "::1").is_ok());
        assert!(ip("ip", "999.1.1.1").is_err());
        assert!(ip("ip", "localhost").is_err());
    }

    #[test]
    fn percentages_are_bounded() {
        assert!(percent("cpu_usage", 0.0).is_ok());
        assert!(percent("cpu_usage", 100.0).is_ok());
        assert!(percent("cpu_usage", -0.1).is_err());
        assert!(percent("cpu_usage", 100.1).is_err());
        assert!(percent("cpu_usage", f64::NAN).is_err());
    }

    #[test]
    fn env_keys_refuse_equals_and_empty() {
        assert!(env_key("POSTGRES_PASSWORD").is_ok());
        assert!(env_key("").is_err());
        assert!(env_key("A=B").is_err());
        assert!(env_key("COMPOSE_PROFILES").is_ok());
        for steering in [
            "COMPOSE_FILE",
            "COMPOSE_PROJECT_NAME",
            "DOCKER_HOST",
            "docker_host",
        ] {
            let err = env_key(steering).unwrap_err().to_string();
            assert!(err.contains("steers Compose or Docker"), "{err}");
        }
    }
}
