//! The host ports a service publishes, read as Compose reads `ports`: the short
//! syntax `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]` (ranges
//! `9000-9002:9000-9002`, IPv6 addresses in brackets) and the long syntax
//! (`published`, `host_ip`, `protocol`; `published` a number, a string or a
//! range). A port with no published side (`"80"`, `"127.0.0.1::80"`, `expose`)
//! takes no fixed host port.

use serde_json::Value;

use super::invalid;
use crate::Result;
use crate::model::{HostPort, MAX_PORTS};

/// The most ports one range may span.
const MAX_RANGE: u32 = 1024;

/// The host ports of one `ports` entry (`path` names it in errors).
pub fn published(entry: &Value, path: &str) -> Result<Vec<HostPort>> {
    match entry {
        // a container port alone
        Value::Number(_) => Ok(Vec::new()),
        Value::String(short) => short_syntax(short, path),
        Value::Object(long) => {
            let Some(published) = long.get("published").filter(|p| !p.is_null()) else {
                return Ok(Vec::new());
            };
            let range = match published {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.clone(),
                other => return Err(bad(path, other)),
            };
            let protocol = text_or(long.get("protocol"), "tcp").to_ascii_lowercase();
            let host_ip = text_or(long.get("host_ip"), "0.0.0.0");
            ports_of(&range, &protocol, &host_ip, path)
        }
        other => Err(bad(path, other)),
    }
}

/// The port numbers of a container port given alone (`expose`, or the target of
/// a `ports` entry): what a `network_mode: host` service binds on the node.
pub fn container_ports(entry: &Value, path: &str) -> Result<Vec<HostPort>> {
    let (ports, protocol) = match entry {
        Value::Number(n) => (n.to_string(), "tcp".to_string()),
        Value::String(text) => {
            let (spec, protocol) = split_protocol(text);
            // the container side of a short `ports` entry is its last part
            let container = spec.rsplit(':').next().unwrap_or(spec);
            (container.to_string(), protocol)
        }
        Value::Object(long) => match long.get("target") {
            Some(Value::Number(n)) => (n.to_string(), text_or(long.get("protocol"), "tcp")),
            Some(Value::String(s)) => (s.clone(), text_or(long.get("protocol"), "tcp")),
            _ => return Err(bad(path, entry)),
        },
        other => return Err(bad(path, other)),
    };
    ports_of(&ports, &protocol.to_ascii_lowercase(), "0.0.0.0", path)
}

fn text_or(value: Option<&Value>, default: &str) -> String {
    match value {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    }
}

fn bad(path: &str, value: &Value) -> crate::Error {
    invalid(format_args!("{path}: {value} is not a port mapping"))
}

/// `spec/protocol` split (`tcp` when none is given).
fn split_protocol(text: &str) -> (&str, String) {
    match text.rsplit_once('/') {
        Some((spec, protocol)) => (spec, protocol.to_ascii_lowercase()),
        None => (text, "tcp".into()),
    }
}

fn short_syntax(short: &str, path: &str) -> Result<Vec<HostPort>> {
    let (spec, protocol) = split_protocol(short.trim());
    // an IPv6 address in brackets first: `[::1]:8080:80`
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(bracketed) => {
            let (address, rest) = bracketed
                .split_once("]:")
                .ok_or_else(|| bad(path, &Value::String(short.into())))?;
            (Some(address.to_string()), rest)
        }
        None => (None, spec),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_port) = match (host_ip, parts.as_slice()) {
        (None, [_container]) => return Ok(Vec::new()),
        (None, [host, _container]) => (None, *host),
        (None, [ip, host, _container]) => (Some(ip.to_string()), *host),
        (Some(ip), [host, _container]) => (Some(ip), *host),
        _ => return Err(bad(path, &Value::String(short.into()))),
    };
    // `127.0.0.1::80`: a port the engine chooses
    if host_port.is_empty() {
        return Ok(Vec::new());
    }
    let host_ip = host_ip
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "0.0.0.0".into());
    ports_of(host_port, &protocol, &host_ip, path)
}

/// The ports of `range` (`8080` or `9000-9002`).
fn ports_of(range: &str, protocol: &str, host_ip: &str, path: &str) -> Result<Vec<HostPort>> {
    let number = |text: &str| -> Result<u16> {
        text.trim()
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(format_args!("{path}: {text:?} is not a port")))
    };
    let (first, last) = match range.split_once('-') {
        Some((first, last)) => (number(first)?, number(last)?),
        None => {
            let port = number(range)?;
            (port, port)
        }
    };
    if last < first || u32::from(last - first) >= MAX_RANGE {
        return Err(invalid(format_args!(
            "{path}: {range:?} is not a range of at most {MAX_RANGE} ports"
        )));
    }
    let port = |port| HostPort {
        port,
        protocol: protocol.to_string(),
        host_ip: host_ip.to_string(),
    };
    let ports: Vec<HostPort> = (first..=last).map(port).collect();
    for p in &ports {
        p.validate()
            .map_err(|err| invalid(format_args!("{path}: {err}")))?;
    }
    Ok(ports)
}

/// A host port a service publishes, with the container port behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedPort {
    /// The service.
    pub service: String,
    /// The port on the node.
    pub host: HostPort,
    /// The container's port, when the mapping names one.
    pub target_port: Option<u16>,
}

/// Every host port the services that start publish (a `network_mode: host`
/// service: every port it exposes or maps, its own), in document order.
pub fn published_ports(document: &Value, env: &crate::model::Env) -> Result<Vec<PublishedPort>> {
    let enabled = super::profiles::enabled_profiles(env);
    let mut all = Vec::new();
    let Some(Value::Object(services)) = document.get("services") else {
        return Ok(all);
    };
    for (name, service) in services {
        let Value::Object(service) = service else {
            continue;
        };
        if !super::profiles::starts(service, &enabled) {
            continue;
        }
        let host_network = service.get("network_mode").and_then(Value::as_str) == Some("host");
        let mut keys = vec!["ports"];
        if host_network {
            keys.push("expose");
        }
        for key in keys {
            for (i, entry) in service
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let path = format!("services.{name}.{key}.{i}");
                let (hosts, targets) = if host_network {
                    let ports = container_ports(entry, &path)?;
                    let targets = ports.iter().map(|p| Some(p.port)).collect();
                    (ports, targets)
                } else {
                    (published(entry, &path)?, target_ports(entry))
                };
                for (at, host) in hosts.into_iter().enumerate() {
                    all.push(PublishedPort {
                        service: name.clone(),
                        host,
                        // a range maps port by port; one target serves them all
                        target_port: targets.get(at).or(targets.first()).copied().flatten(),
                    });
                }
            }
        }
    }
    Ok(all)
}

/// The container ports of a `ports` entry, in order (none that cannot be read).
fn target_ports(entry: &Value) -> Vec<Option<u16>> {
    let range = match entry {
        Value::String(short) => {
            let (spec, _) = split_protocol(short.trim());
            spec.rsplit(':').next().unwrap_or(spec).to_string()
        }
        Value::Object(long) => match long.get("target") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let port = |text: &str| text.trim().parse::<u16>().ok();
    match range.split_once('-') {
        Some((first, last)) => match (port(first), port(last)) {
            (Some(first), Some(last)) if first <= last => (first..=last).map(Some).collect(),
            _ => Vec::new(),
        },
        None => vec![port(&range)],
    }
}

/// Adds `ports` to `all` once each; an error when a document publishes more than
/// [`MAX_PORTS`].
pub fn add_unique(all: &mut Vec<HostPort>, ports: Vec<HostPort>) -> Result<()> {
    for port in ports {
        if !all.contains(&port) {
            all.push(port);
        }
    }
    if all.len() > MAX_PORTS {
        return Err(invalid(format_args!(
            "publishes more than {MAX_PORTS} host ports"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ports(entry: Value) -> Vec<String> {
        published(&entry, "ports.0")
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn short_and_long_syntax_as_compose_reads_them() {
        assert_eq!(ports(json!("8080:80")), ["8080/tcp"]);
        assert_eq!(ports(json!("127.0.0.1:8080:80")), ["127.0.0.1:8080/tcp"]);
        assert_eq!(ports(json!("8080:80/udp")), ["8080/udp"]);
        assert_eq!(
            ports(json!("9000-9002:9000-9002")),
            ["9000/tcp", "9001/tcp", "9002/tcp"]
        );
        assert_eq!(ports(json!("[::1]:8080:80")), ["::1:8080/tcp"]);
        assert_eq!(ports(json!("0.0.0.0:53:53/udp")), ["53/udp"]);
        for nothing in [
            json!("80"),
            json!(80),
            json!("127.0.0.1::80"),
            json!({"target": 80}),
        ] {
            assert!(ports(nothing).is_empty());
        }
        assert_eq!(
            ports(
                json!({"target": 80, "published": 8080, "host_ip": "10.0.0.5", "protocol": "udp"})
            ),
            ["10.0.0.5:8080/udp"]
        );
        assert_eq!(
            ports(json!({"target": 80, "published": "8443"})),
            ["8443/tcp"]
        );
        assert_eq!(
            ports(json!({"target": 80, "published": "8000-8001"})),
            ["8000/tcp", "8001/tcp"]
        );
        for bad in [
            json!("x:80"),
            json!("1:2:3:4"),
            json!("70000:80"),
            json!("1-5000:1-5000"),
            json!(true),
        ] {
            assert!(published(&bad, "ports.0").is_err(), "{bad}");
        }
    }

    #[test]
    fn container_ports_are_what_a_host_network_service_binds() {
        let of = |entry: Value| -> Vec<String> {
            (container_ports(&entry, "expose.0")
                .unwrap_or_else(|e| panic!("{e}"))
                .iter())
            .map(ToString::to_string)
            .collect()
        };
        assert_eq!(of(json!(8000)), ["8000/tcp"]);
        assert_eq!(of(json!("8000-8001")), ["8000/tcp", "8001/tcp"]);
        assert_eq!(of(json!("8080:80/udp")), ["80/udp"]);
        assert_eq!(of(json!({"target": 9000})), ["9000/tcp"]);
    }

    #[test]
    fn conflicts_need_the_same_port_protocol_and_address() {
        let port = |text: &str| published(&json!(text), "p").unwrap().remove(0);
        assert!(port("8080:80").conflicts_with(&port("8080:81")));
        assert!(port("8080:80").conflicts_with(&port("127.0.0.1:8080:80")));
        assert!(port("127.0.0.1:8080:80").conflicts_with(&port("8080:80")));
        assert!(!port("127.0.0.1:8080:80").conflicts_with(&port("127.0.0.2:8080:80")));
        assert!(!port("8080:80").conflicts_with(&port("8080:80/udp")));
        assert!(!port("8080:80").conflicts_with(&port("8081:80")));
    }
}
