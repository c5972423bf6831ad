//! What an operator may run on a node: an allow-list modelled on Kubernetes' Pod
//! Security Standards *Baseline* profile, applied to the document as Compose will
//! run it (interpolated, anchors and merge keys resolved: see
//! [`super::node_document::resolve`]).
//!
//! A container that is privileged, shares a host namespace or another container's,
//! gains capabilities or devices, drops its security profile, mounts a host path,
//! reads files of the node (`env_file`, `extends`, `include`, `build`, secrets and
//! configs from files) or joins networks and volumes it did not make can read the
//! agent's token and every secret placed on that node. Everything this module does
//! not name is refused, so that a key a future Compose adds does not slip through;
//! `x-` extension fields are allowed (Compose ignores them). Such documents are for
//! admins unless the server allows operators (`--allow-unsafe-compose operator`).

use serde_json::{Map, Value};

use super::is_gpu_request;

/// Every feature of a resolved compose document outside the operator allow-list,
/// one line each (`services.app: privileged`), in document order; empty for a
/// document an operator may deploy.
pub fn host_access_of(document: &Value) -> Vec<String> {
    let mut found = Findings::default();
    let Value::Object(top) = document else {
        return found.0;
    };
    for (key, value) in top {
        match key.as_str() {
            "version" | "name" => {}
            "services" => {
                for (name, service) in objects(value) {
                    judge_service(&format!("services.{name}"), service, &mut found);
                }
            }
            "volumes" => {
                for (name, volume) in objects(value) {
                    judge_volume(&format!("volumes.{name}"), volume, &mut found);
                }
            }
            "networks" => {
                for (name, network) in objects(value) {
                    judge_network(&format!("networks.{name}"), network, &mut found);
                }
            }
            "configs" | "secrets" => {
                for (name, item) in objects(value) {
                    judge_file_object(&format!("{key}.{name}"), key == "configs", item, &mut found);
                }
            }
            "include" => found.add(
                key,
                "include (it reads other files of the node; put everything in one document)",
            ),
            other if is_extension(other) => {}
            other => found.add(other, "unknown top-level key"),
        }
    }
    found.0
}

#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, place: &str, what: impl std::fmt::Display) {
        self.0.push(format!("{place}: {what}"));
    }
}

fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

/// The entries of a mapping of named things (`services`, `volumes`, …); an entry
/// given as `null` is an empty mapping.
fn objects(value: &Value) -> Vec<(&String, &Map<String, Value>)> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(name, item)| (name, item.as_object().unwrap_or(&EMPTY)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Service keys an operator may set with any value: the container's own
/// process, resources, health, restart policy and published ports.
const FREE_SERVICE_KEYS: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cap_drop",
    "command",
    "configs",
    "container_name",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpus",
    "cpuset",
    "depends_on",
    "dns",
    "dns_opt",
    "dns_search",
    "domainname",
    "entrypoint",
    "environment",
    "expose",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "labels",
    "links",
    "mac_address",
    "mem_limit",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "pids_limit",
    "platform",
    "ports",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "scale",
    "secrets",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "working_dir",
];

/// Docker's default capabilities: adding one of these back is no escalation.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The sysctls Kubernetes' Baseline profile calls safe: namespaced to the
/// container.
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_syncookies",
];

/// Logging drivers that write where the container's own logs go; the others
/// send them from the node's engine to the node's journal, syslog or the network.
const LOCAL_LOG_DRIVERS: &[&str] = &["json-file", "local", "none"];

/// Why a service key is refused whatever its value, with what to do instead.
fn refused_service_key(key: &str) -> Option<&'static str> {
    Some(match key {
        "build" => "build (it reads the node's files; deploy a built image)",
        "cgroup_parent" => "cgroup_parent (a cgroup of the host)",
        "credential_spec" => "credential_spec",
        "develop" => "develop (it watches the node's files)",
        "device_cgroup_rules" => "device_cgroup_rules (host devices)",
        "devices" => {
            "devices (host devices; GPUs come through deploy.resources.reservations.devices)"
        }
        "env_file" => "env_file (it reads the node's files; give the values in env)",
        "extends" => "extends (it reads the node's files; put everything in one document)",
        "external_links" => "external_links (containers of other deployments)",
        "gpus" => {
            "gpus (ask for GPUs in deploy.resources.reservations.devices, which placement pins)"
        }
        "isolation" => "isolation",
        "label_file" => "label_file (it reads the node's files)",
        "models" => "models",
        "post_start" | "pre_stop" => "lifecycle hooks (they may run privileged)",
        "provider" => "provider (it runs a program on the node)",
        "runtime" => "runtime (a container runtime of the node)",
        "use_api_socket" => "use_api_socket (the node's Docker engine)",
        "userns_mode" => "userns_mode (the host's user namespace)",
        "uts" => "uts (the host's UTS namespace)",
        "volumes_from" => "volumes_from (volumes of other containers)",
        _ => return None,
    })
}

fn judge_service(place: &str, service: &Map<String, Value>, found: &mut Findings) {
    for (key, value) in service {
        if value.is_null() || FREE_SERVICE_KEYS.contains(&key.as_str()) || is_extension(key) {
            continue;
        }
        if let Some(why) = refused_service_key(key) {
            found.add(place, why);
            continue;
        }
        match key.as_str() {
            "privileged" => {
                if !is_false(value) {
                    found.add(place, "privileged");
                }
            }
            "network_mode" => namespace(place, key, value, &["bridge", "none", "default"], found),
            "pid" => namespace(place, key, value, &[], found),
            "ipc" => namespace(place, key, value, &["private", "shareable", "none"], found),
            "cgroup" => namespace(place, key, value, &["private"], found),
            "cap_add" => {
                for capability in strings(value) {
                    let name = capability.to_ascii_uppercase();
                    let name = name.strip_prefix("CAP_").unwrap_or(&name);
                    if !DEFAULT_CAPABILITIES.contains(&name) {
                        found.add(place, format_args!("cap_add: {capability}"));
                    }
                }
            }
            "security_opt" => {
                for option in strings(value) {
                    if !safe_security_option(&option) {
                        found.add(place, format_args!("security_opt: {option}"));
                    }
                }
            }
            "sysctls" => {
                for name in sysctl_names(value) {
                    if !SAFE_SYSCTLS.contains(&name.as_str()) {
                        found.add(place, format_args!("sysctls: {name} (not namespaced safe)"));
                    }
                }
            }
            "storage_opt" => {
                for name in value.as_object().into_iter().flat_map(Map::keys) {
                    if name != "size" {
                        found.add(place, format_args!("storage_opt: {name}"));
                    }
                }
            }
            "logging" => {
                let driver = value.get("driver").and_then(Value::as_str);
                if let Some(driver) = driver.filter(|d| !LOCAL_LOG_DRIVERS.contains(d)) {
                    found.add(
                        place,
                        format_args!("logging driver {driver} (sent by the node's engine)"),
                    );
                }
            }
            "volumes" => {
                for volume in value.as_array().into_iter().flatten() {
                    judge_mount(place, volume, found);
                }
            }
            "networks" => judge_service_networks(place, value, found),
            "deploy" => judge_deploy(place, value, found),
            other => found.add(place, format_args!("unknown key {other}")),
        }
    }
}

/// `false`, or a string Compose reads as false.
fn is_false(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "false" | "no" | "n" | "off"
        ),
        _ => false,
    }
}

/// The strings of a list (or of one string).
fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A namespace mode (`network_mode`, `pid`, `ipc`, `cgroup`): one of `allowed`,
/// or another service of this document (`service:NAME`); never the host's or
/// another container's.
fn namespace(place: &str, key: &str, value: &Value, allowed: &[&str], found: &mut Findings) {
    let mode = match value {
        Value::String(s) => s.as_str(),
        other => {
            found.add(place, format_args!("{key}: {other}"));
            return;
        }
    };
    if mode.is_empty() || allowed.contains(&mode) || mode.starts_with("service:") {
        return;
    }
    let what = match (key, mode) {
        ("ipc", "host") => {
            "ipc: host (the host's shared memory; give the service shm_size instead)".to_string()
        }
        (_, "host") => format!("{key}: host (the host's namespace)"),
        (_, m) if m.starts_with("container:") => {
            format!("{key}: {m} (another container's namespace)")
        }
        (_, m) => format!("{key}: {m}"),
    };
    found.add(place, what);
}

/// Options that only tighten the container's confinement.
fn safe_security_option(option: &str) -> bool {
    let option = option.trim().to_ascii_lowercase();
    let normalized = option.replacen('=', ":", 1);
    if matches!(
        normalized.as_str(),
        "no-new-privileges" | "no-new-privileges:true"
    ) {
        return true;
    }
    // as Baseline: an SELinux level, or one of the container types (`spc_t`
    // would unconfine it as `label:disable` does); no user or role
    if normalized.starts_with("label:level:") {
        return true;
    }
    normalized
        .strip_prefix("label:type:")
        .is_some_and(|kind| CONTAINER_SELINUX_TYPES.contains(&kind))
}

/// The SELinux types Baseline allows a container.
const CONTAINER_SELINUX_TYPES: &[&str] = &[
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The names of `sysctls` (a mapping, or a list of `NAME=VALUE`).
fn sysctl_names(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map.keys().cloned().collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.split('=').next().unwrap_or(s).trim().to_string(),
                other => other.to_string(),
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A Docker volume name (the name of a volume this document declares).
fn is_volume_name(source: &str) -> bool {
    let mut chars = source.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

const NAMED_VOLUME: &str = "use a named volume declared under `volumes:`";

/// One entry of a service's `volumes`: a named or anonymous volume, or a tmpfs.
fn judge_mount(place: &str, volume: &Value, found: &mut Findings) {
    match volume {
        Value::String(short) => {
            // `SOURCE:TARGET[:MODE]`, or `TARGET` alone (an anonymous volume). A
            // letter and `:` are a Windows drive to Compose v2 whatever follows
            // (compose-go's ParseVolume): the source runs to the next `:`, and is
            // a bind mount of a path joined to the project folder (`c:data`, and
            // `c:x/../..`, which is the node's `/`)
            let mut chars = short.char_indices();
            let drive = match (chars.next(), chars.next()) {
                (Some((_, letter)), Some((colon, ':'))) if letter.is_alphabetic() => {
                    Some(colon + 1).filter(|_| short.len() > 2)
                }
                _ => None,
            };
            let source = match drive {
                Some(end) => Some(
                    short[end..]
                        .find(':')
                        .map_or(&short[..], |at| &short[..end + at]),
                ),
                None => short.split_once(':').map(|(source, _)| source),
            };
            if let Some(source) = source.filter(|s| !is_volume_name(s)) {
                found.add(
                    place,
                    format_args!("volumes: host path {source} ({NAMED_VOLUME})"),
                );
            }
        }
        Value::Object(long) => {
            let kind = long.get("type").and_then(Value::as_str).unwrap_or("volume");
            let source = long.get("source").and_then(Value::as_str);
            match kind {
                "volume" => {
                    if let Some(source) = source.filter(|s| !is_volume_name(s)) {
                        found.add(
                            place,
                            format_args!("volumes: host path {source} ({NAMED_VOLUME})"),
                        );
                    }
                }
                "tmpfs" => {}
                "bind" => found.add(
                    place,
                    format_args!(
                        "volumes: host path {} ({NAMED_VOLUME})",
                        source.unwrap_or("(unnamed)")
                    ),
                ),
                other => found.add(place, format_args!("volumes: type {other}")),
            }
            for key in long.keys() {
                let known = matches!(
                    key.as_str(),
                    "type" | "source" | "target" | "read_only" | "volume" | "tmpfs" | "consistency"
                );
                if !known && !is_extension(key) {
                    found.add(place, format_args!("volumes: {key}"));
                }
            }
        }
        other => found.add(place, format_args!("volumes: {other}")),
    }
}

/// A service's `networks`: names of this document's networks, with the settings
/// of its place in each (no driver options).
fn judge_service_networks(place: &str, value: &Value, found: &mut Findings) {
    for (name, settings) in objects(value) {
        for key in settings.keys() {
            let known = matches!(
                key.as_str(),
                "aliases"
                    | "ipv4_address"
                    | "ipv6_address"
                    | "link_local_ips"
                    | "mac_address"
                    | "priority"
                    | "gw_priority"
                    | "interface_name"
            );
            if !known && !is_extension(key) {
                found.add(place, format_args!("networks.{name}.{key}"));
            }
        }
    }
}

/// `deploy`: replicas, resources, restart and placement; a device reservation
/// only as a GPU request (which placement counts and the node pins).
fn judge_deploy(place: &str, deploy: &Value, found: &mut Findings) {
    for key in deploy.as_object().into_iter().flat_map(Map::keys) {
        let known = matches!(
            key.as_str(),
            "mode"
                | "replicas"
                | "labels"
                | "resources"
                | "restart_policy"
                | "placement"
                | "update_config"
                | "rollback_config"
                | "endpoint_mode"
        );
        if !known && !is_extension(key) {
            found.add(place, format_args!("deploy.{key}"));
        }
    }
    let resources = deploy.get("resources");
    for (part, known) in [
        (None, &["limits", "reservations"][..]),
        (Some("limits"), &["cpus", "memory", "pids"][..]),
        (
            Some("reservations"),
            &["cpus", "memory", "devices", "generic_resources"][..],
        ),
    ] {
        let settings = match part {
            None => resources,
            Some(part) => resources.and_then(|r| r.get(part)),
        };
        for key in settings
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(Map::keys)
        {
            if !known.contains(&key.as_str()) && !is_extension(key) {
                let at = part.map_or(String::new(), |p| format!("{p}."));
                found.add(place, format_args!("deploy.resources.{at}{key}"));
            }
        }
    }
    let reservations = resources.and_then(|r| r.get("reservations"));
    let devices = reservations.and_then(|r| r.get("devices"));
    for device in devices.and_then(Value::as_array).into_iter().flatten() {
        let gpu = is_gpu_request(device)
            && device
                .get("capabilities")
                .is_some_and(|c| strings(c).iter().any(|c| c.eq_ignore_ascii_case("gpu")));
        if !gpu {
            found.add(
                place,
                "deploy.resources.reservations.devices: a device request without the gpu \
                 capability",
            );
        }
        if device.get("options").is_some_and(|o| !o.is_null()) {
            found.add(place, "deploy.resources.reservations.devices: options");
        }
    }
    if reservations
        .and_then(|r| r.get("generic_resources"))
        .is_some()
    {
        found.add(place, "deploy.resources.reservations.generic_resources");
    }
}

/// A top-level volume: one the deployment makes with the local driver and no
/// options (options can mount any path of the node), never an existing one.
fn judge_volume(place: &str, volume: &Map<String, Value>, found: &mut Findings) {
    for (key, value) in volume {
        if value.is_null() || is_extension(key) {
            continue;
        }
        match key.as_str() {
            "labels" => {}
            "driver" if value.as_str() == Some("local") => {}
            "driver" => found.add(place, format_args!("driver {value}")),
            "driver_opts" => found.add(
                place,
                "driver_opts (they can mount any path of the node; use a plain named volume)",
            ),
            "external" | "name" => found.add(
                place,
                format_args!("{key} (a volume this deployment did not make)"),
            ),
            other => found.add(place, format_args!("unknown key {other}")),
        }
    }
}

/// A top-level network: a bridge network the deployment makes, never the host's
/// or another deployment's.
fn judge_network(place: &str, network: &Map<String, Value>, found: &mut Findings) {
    for (key, value) in network {
        if value.is_null() || is_extension(key) {
            continue;
        }
        match key.as_str() {
            "labels" | "internal" | "attachable" | "enable_ipv6" => {}
            "driver" if value.as_str() == Some("bridge") => {}
            "driver" => found.add(place, format_args!("driver {value}")),
            "external" | "name" => found.add(
                place,
                format_args!("{key} (a network this deployment did not make)"),
            ),
            "driver_opts" | "ipam" => found.add(place, key),
            other => found.add(place, format_args!("unknown key {other}")),
        }
    }
}

/// A top-level config or secret: only a config given inline (`content`); files,
/// the engine's environment and existing ones are the node's.
fn judge_file_object(
    place: &str,
    is_config: bool,
    item: &Map<String, Value>,
    found: &mut Findings,
) {
    for (key, value) in item {
        if value.is_null() || is_extension(key) {
            continue;
        }
        match key.as_str() {
            "content" if is_config => {}
            "labels" => {}
            "file" => found.add(
                place,
                format_args!("file {} (a file of the node)", value.as_str().unwrap_or("")),
            ),
            "environment" => found.add(place, "environment (the node's environment)"),
            "external" | "name" => found.add(place, format_args!("{key} (not this deployment's)")),
            other => found.add(place, format_args!("unknown key {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::compose::node_document::resolve;
    use crate::model::Env;

    fn judged(compose: &str, env: &[(&str, &str)]) -> Vec<String> {
        let env: Env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into();
        host_access_of(&resolve(compose, &env).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn what_operators_run_every_day_is_allowed() {
        let everyday = r#"
version: "3.8"
x-common: &common
  restart: unless-stopped
  logging: {driver: json-file, options: {max-size: 10m}}
services:
  web:
    <<: *common
    image: nginx:${TAG:-1.27}
    ports: ["8080:80", {target: 443, published: 8443}]
    volumes: [html:/usr/share/nginx/html:ro, /cache, {type: tmpfs, target: /tmp}]
    environment: {A: "1"}
    depends_on: [db]
    healthcheck: {test: [CMD, true], interval: 10s}
    cap_drop: [ALL]
    cap_add: [NET_BIND_SERVICE, CAP_CHOWN]
    security_opt: ["no-new-privileges:true", "label=type:container_t"]
    sysctls: {net.ipv4.ip_unprivileged_port_start: 0}
    shm_size: 2gb
    ipc: shareable
    networks: {front: {aliases: [www]}}
    privileged: false
    x-note: anything
  db:
    image: postgres:16
    network_mode: service:web
    deploy:
      replicas: 1
      resources:
        limits: {cpus: "2", memory: 4G, pids: 200}
        reservations:
          devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]
volumes:
  html: {}
  data: {driver: local, labels: {a: b}}
networks:
  front: {driver: bridge, internal: false}
configs:
  motd: {content: "hello"}
"#;
        assert_eq!(judged(everyday, &[]), Vec::<String>::new());
    }

    #[test]
    fn interpolated_host_access_is_judged_as_compose_resolves_it() {
        let compose = r#"
services:
  a:
    image: busybox
    privileged: ${P}
    network_mode: ${N}
    pid: ${N}
    security_opt: ["${S}"]
    volumes: ["${V}", {type: "${T}", source: /etc, target: /e}]
"#;
        let env = [
            ("P", "true"),
            ("N", "host"),
            ("S", "seccomp=unconfined"),
            ("V", "/:/host"),
            ("T", "bind"),
        ];
        assert_eq!(
            judged(compose, &env),
            [
                "services.a: network_mode: host (the host's namespace)",
                "services.a: pid: host (the host's namespace)",
                "services.a: privileged",
                "services.a: security_opt: seccomp=unconfined",
                "services.a: volumes: host path / (use a named volume declared under `volumes:`)",
                "services.a: volumes: host path /etc (use a named volume declared under `volumes:`)",
            ]
        );
        // the same document with harmless values is an operator's
        let harmless = [
            ("P", "false"),
            ("N", "bridge"),
            ("S", "no-new-privileges"),
            ("V", "data:/d"),
            ("T", "volume"),
        ];
        let plain = compose.replace("source: /etc", "source: data");
        assert_eq!(judged(&plain, &harmless), ["services.a: pid: bridge"]);
    }

    #[test]
    fn outside_services_the_node_is_out_of_reach_too() {
        let compose = r#"
services:
  a: {image: busybox}
volumes:
  root: {driver_opts: {type: none, o: bind, device: /}}
  theirs: {external: true}
  named: {name: miaas-victim_data}
networks:
  h: {external: true, name: host}
  mac: {driver: macvlan}
secrets:
  shadow: {file: /etc/shadow}
configs:
  env: {environment: HOME}
include: [other.yaml]
surprise: {}
"#;
        let found = judged(compose, &[]);
        for expected in [
            "volumes.root: driver_opts",
            "volumes.theirs: external",
            "volumes.named: name",
            "networks.h: external",
            "networks.h: name",
            "networks.mac: driver \"macvlan\"",
            "secrets.shadow: file /etc/shadow",
            "configs.env: environment",
            "include: include",
            "surprise: unknown top-level key",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(expected)),
                "{expected} in {found:?}"
            );
        }
    }

    #[test]
    fn other_deployments_and_the_nodes_files_are_out_of_reach() {
        let compose = r#"
services:
  a:
    image: busybox
    env_file: [/var/lib/miaas-agent/deployments/victim/.env]
    extends: {file: /var/lib/miaas-agent/deployments/victim/compose.yaml, service: web}
    volumes_from: [victim]
    build: {context: /var/lib/miaas-agent}
    ipc: host
    uts: host
    userns_mode: host
    cgroup_parent: /
    cap_add: [SYS_ADMIN]
    devices: ["/dev/sda:/dev/sda"]
    device_cgroup_rules: ["a *:* rwm"]
    runtime: nvidia
    gpus: all
    sysctls: [kernel.core_pattern=|/x]
    logging: {driver: syslog}
    volumes: [./data:/data, ~/x:/x, "../up:/up", 'C:\data:/d']
    future_key: 1
  b:
    image: busybox
    pid: container:victim
    network_mode: container:victim
    security_opt: [apparmor=unconfined, label:disable, "no-new-privileges:false", systempaths=unconfined]
    deploy:
      resources:
        limits: {devices: [x]}
        reservations:
          devices: [{capabilities: [compute], count: all}]
"#;
        let found = judged(compose, &[]);
        for expected in [
            "services.a: env_file",
            "services.a: extends",
            "services.a: volumes_from",
            "services.a: build",
            "services.a: ipc: host (the host's shared memory; give the service shm_size instead)",
            "services.a: uts",
            "services.a: userns_mode",
            "services.a: cgroup_parent",
            "services.a: cap_add: SYS_ADMIN",
            "services.a: devices",
            "services.a: device_cgroup_rules",
            "services.a: runtime",
            "services.a: gpus",
            "services.a: sysctls: kernel.core_pattern",
            "services.a: logging driver syslog",
            "services.a: volumes: host path ./data",
            "services.a: volumes: host path ~/x",
            "services.a: volumes: host path ../up",
            "services.a: volumes: host path C:\\",
            "services.a: unknown key future_key",
            "services.b: pid: container:victim",
            "services.b: network_mode: container:victim",
            "services.b: security_opt: apparmor=unconfined",
            "services.b: security_opt: label:disable",
            "services.b: security_opt: no-new-privileges:false",
            "services.b: security_opt: systempaths=unconfined",
            "services.b: deploy.resources.reservations.devices: a device request without the gpu",
            "services.b: deploy.resources.limits.devices",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(expected)),
                "{expected} in {found:?}"
            );
        }
        assert_eq!(found.len(), 28, "{found:#?}");
    }

    #[test]
    fn a_letter_and_a_colon_are_a_host_drive_as_compose_v2_reads_them() {
        // compose-go (format.ParseVolume) takes a letter followed by `:` for a
        // Windows drive whatever comes next, makes that source a bind mount, and
        // joins a relative one to the project folder: `c:x/../..` is `/` there
        let root = format!("c:x{}:/host", "/..".repeat(30));
        for spec in [root.as_str(), "c:data:/data", "Z:x:/x:ro"] {
            let compose =
                format!("services:\n  a:\n    image: busybox\n    volumes: [\"{spec}\"]\n");
            let found = judged(&compose, &[]);
            assert!(
                found.len() == 1 && found[0].starts_with("services.a: volumes: host path "),
                "{spec}: {found:?}"
            );
        }
        // a volume name of two letters or more is a volume
        let compose = "services:\n  a:\n    image: busybox\n    volumes: [\"cd:/data\"]\n";
        assert_eq!(judged(compose, &[]), Vec::<String>::new());
    }

    /// Baseline allows an SELinux type only of the container types and no user
    /// or role: `spc_t` is the unconfined "super privileged container" type,
    /// which `label:disable` amounts to.
    #[test]
    fn selinux_labels_are_the_baselines() {
        let refused = [
            "label=type:spc_t",
            "label:type:unconfined_t",
            "label=user:system_u",
            "label=role:system_r",
        ];
        let allowed = [
            "label=type:container_t",
            "label:type:container_init_t",
            "label=level:s0:c100,c200",
        ];
        for (options, expected) in [(&refused[..], refused.len()), (&allowed[..], 0)] {
            let compose = format!(
                "services:\n  a:\n    image: busybox\n    security_opt: {}\n",
                serde_json::to_string(options).unwrap()
            );
            assert_eq!(judged(&compose, &[]).len(), expected, "{options:?}");
        }
    }

    #[test]
    fn anchors_and_merge_keys_are_judged_resolved() {
        let compose =
            "x-root: &root\n  privileged: true\nservices:\n  a:\n    <<: *root\n    image: x\n";
        assert_eq!(judged(compose, &[]), ["services.a: privileged"]);
        assert!(host_access_of(&json!("not a mapping")).is_empty());
        // booleans as Compose v2 reads YAML: `y` is an image, `yes` is cast to true
        let yes = "services:\n  a:\n    image: y\n    privileged: yes\n";
        assert_eq!(judged(yes, &[]), ["services.a: privileged"]);
        let document = crate::compose::parse_compose(yes).unwrap();
        assert_eq!(document["services"]["a"]["image"], "y");
    }
}
