//! What in a compose document reaches past its containers into the host: a
//! container that is privileged, shares the host's network, PID, IPC, UTS or user
//! namespace, gains capabilities or devices, drops its security profile, or mounts a
//! host path can read the agent's token and every secret placed on that node. Such
//! documents are for admins unless the server allows operators
//! (`--allow-unsafe-compose operator`).

use serde_json::Value;

use crate::Result;

/// The host-access features a compose document asks for (see [`host_access_of`]);
/// the document must parse ([`crate::compose::parse_compose`]).
pub fn host_access(compose: &str) -> Result<Vec<String>> {
    Ok(host_access_of(&crate::compose::parse_compose(compose)?))
}

/// The host-access features a parsed compose document asks for, one line each
/// (`services.app: privileged`), in document order; empty for a document that
/// stays inside its containers.
pub fn host_access_of(document: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let Some(Value::Object(services)) = document.get("services") else {
        return found;
    };
    for (name, service) in services {
        let mut feature = |what: String| found.push(format!("services.{name}: {what}"));
        if service.get("privileged").is_some_and(is_true) {
            feature("privileged".into());
        }
        for key in ["network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup"] {
            if service.get(key).and_then(Value::as_str) == Some("host") {
                feature(format!("{key}: host"));
            }
        }
        for key in ["cap_add", "devices", "device_cgroup_rules"] {
            if service.get(key).is_some_and(non_empty) {
                feature(key.to_string());
            }
        }
        if let Some(options) = service.get("security_opt").and_then(Value::as_array) {
            for option in options.iter().filter_map(Value::as_str) {
                let option = option.to_ascii_lowercase();
                if option.contains("unconfined") || option.contains("disable") {
                    feature(format!("security_opt: {option}"));
                }
            }
        }
        if let Some(volumes) = service.get("volumes").and_then(Value::as_array) {
            for volume in volumes {
                if let Some(source) = host_path(volume) {
                    feature(format!("volumes: host path {source}"));
                }
            }
        }
    }
    found
}

/// `true`, or a string that Docker reads as true.
fn is_true(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1"),
        _ => false,
    }
}

fn non_empty(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        Value::Object(items) => !items.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// The host path a volume entry mounts, if it is a bind mount: the short syntax
/// `SOURCE:TARGET[:MODE]` whose source is a path (`/`, `./`, `../`, `~`), or the
/// long syntax with `type: bind`.
fn host_path(volume: &Value) -> Option<String> {
    match volume {
        Value::String(short) => {
            let (source, _) = short.split_once(':')?;
            let is_path = source.starts_with('/')
                || source.starts_with('.')
                || source.starts_with('~')
                || source.starts_with('$');
            is_path.then(|| source.to_string())
        }
        Value::Object(long) => {
            let bind = long.get("type").and_then(Value::as_str) == Some("bind");
            bind.then(|| {
                long.get("source")
                    .and_then(Value::as_str)
                    .unwrap_or("(unnamed)")
                    .to_string()
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_document_reaches_nothing() {
        let plain = "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n    \
                     volumes: ['data:/usr/share/nginx/html']\nvolumes:\n  data: {}\n";
        assert_eq!(host_access(plain).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn every_kind_of_host_access_is_named() {
        let risky = r#"
services:
  root:
    image: busybox
    privileged: true
    network_mode: host
    pid: host
    cap_add: [SYS_ADMIN]
    devices: ["/dev/sda:/dev/sda"]
    security_opt: ["seccomp=unconfined"]
    volumes:
      - /:/host
      - ./conf:/etc/app:ro
      - type: bind
        source: /var/run/docker.sock
        target: /var/run/docker.sock
      - cache:/cache
"#;
        let found = host_access(risky).unwrap();
        assert_eq!(
            found,
            [
                "services.root: privileged",
                "services.root: network_mode: host",
                "services.root: pid: host",
                "services.root: cap_add",
                "services.root: devices",
                "services.root: security_opt: seccomp=unconfined",
                "services.root: volumes: host path /",
                "services.root: volumes: host path ./conf",
                "services.root: volumes: host path /var/run/docker.sock",
            ]
        );
        assert!(
            host_access("services:\n  a:\n    privileged: false\n")
                .unwrap()
                .is_empty()
        );
        assert!(
            host_access("not: compose\n").is_err(),
            "a document without services"
        );
    }
}
