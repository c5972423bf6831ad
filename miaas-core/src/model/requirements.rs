//! What a deployment needs from a node, and what nodes hold and offer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate;
use crate::{Error, Result};

/// A deployment's requirements. Numbers default to 0 (needs none); text fields
/// default to "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
#[schema(example = json!({"cpus": 2.0, "mem_mb": 4096, "gpus": 1, "tags": ["zone=eu"]}))]
pub struct Requirements {
    /// CPU cores to reserve (fractional).
    #[schema(minimum = 0)]
    pub cpus: f64,
    /// Memory to reserve, in MB.
    #[serde(deserialize_with = "super::number::deserialize_whole")]
    #[schema(schema_with = super::number::whole_schema)]
    pub mem_mb: u64,
    /// Disk to reserve, in MB.
    #[serde(deserialize_with = "super::number::deserialize_whole")]
    #[schema(schema_with = super::number::whole_schema)]
    pub disk_mb: u64,
    /// Number of GPUs to reserve; each is assigned by id.
    #[serde(deserialize_with = "super::number::deserialize_whole_u32")]
    #[schema(schema_with = super::number::count_schema)]
    pub gpus: u32,
    /// Every GPU of the node (Docker's `count: all`): only a node whose GPUs are
    /// all free fits, and all of them are reserved (`gpus` is then at least 1).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub gpus_all: bool,
    /// Host ports the deployment publishes: a node's port (and protocol) is one
    /// deployment's.
    pub ports: Vec<HostPort>,
    /// Container names the deployment sets (`container_name`): Docker allows one
    /// container of a name per engine.
    pub container_names: Vec<String>,
    /// Minimum memory of each reserved GPU, in MB.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    pub gpu_mem_mb: Option<u64>,
    /// GPU model to match (case-insensitive substring, e.g. `3090` or `A100`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_model: Option<String>,
    /// Docker version requirement (semver, e.g. `>=24`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_version: Option<String>,
    /// Operating system to match (e.g. `linux`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// Node tags that must all be present (`key=value` or plain).
    pub tags: Vec<String>,
    /// Pin to one node, by id or name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Requirements {
    /// These requirements with the node resources `document` (what its compose
    /// document takes) names and they do not: its host ports and container names
    /// are facts of the document, taken whatever else was given.
    pub fn with_document_resources(mut self, document: &Requirements) -> Self {
        for port in &document.ports {
            if !self.ports.contains(port) {
                self.ports.push(port.clone());
            }
        }
        for name in &document.container_names {
            if !self.container_names.contains(name) {
                self.container_names.push(name.clone());
            }
        }
        self
    }

    /// Checks ranges and syntax; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if !self.cpus.is_finite() || self.cpus < 0.0 {
            return Err(Error::Invalid(format!(
                "requirements.cpus: must be a non-negative number (got {})",
                self.cpus
            )));
        }
        if self
            .gpu_mem_mb
            .is_some_and(|mb| mb > super::number::MAX_WHOLE)
        {
            return Err(Error::Invalid("requirements.gpu_mem_mb: too large".into()));
        }
        if let Some(req) = &self.docker_version {
            parse_version_req(req)?;
        }
        for (field, value) in [
            ("requirements.gpu_model", &self.gpu_model),
            ("requirements.os", &self.os),
            ("requirements.node", &self.node),
        ] {
            if let Some(value) = value {
                validate::name(field, value)?;
            }
        }
        validate::tags("requirements.tags", &self.tags)?;
        validate::list_len("requirements.ports", self.ports.len(), MAX_PORTS)?;
        for port in &self.ports {
            port.validate()?;
        }
        validate::list_len(
            "requirements.container_names",
            self.container_names.len(),
            1000,
        )?;
        for name in &self.container_names {
            validate::name("requirements.container_names", name)?;
        }
        Ok(())
    }
}

/// Where one of a document's requirements comes from, as the plan explains it:
/// `{"service": "vllm", "resource": "cpus", "value": 8.0, "key":
/// "services.vllm.deploy.resources.limits.cpus", "source": "limits"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Derivation {
    /// The service.
    pub service: String,
    /// `cpus`, `memory_mb`, `gpus`, `port`, `container_name` or `constraint`.
    pub resource: String,
    /// What the service adds (its replicas counted).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// The key of the document it was read from.
    pub key: String,
    /// `reservations`, `limits` (no reservation: as Kubernetes, the limit is what
    /// is reserved), `device request`, `gpus`, `runtime`, `ports`, `expose`
    /// (`network_mode: host`), `container_name` or `placement`.
    pub source: String,
}

/// The most host ports one deployment may publish.
pub const MAX_PORTS: usize = 4096;

/// A host port a deployment publishes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"port": 8080, "protocol": "tcp", "host_ip": "0.0.0.0"}))]
pub struct HostPort {
    /// The port on the node.
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    #[serde(default = "HostPort::tcp")]
    pub protocol: String,
    /// The node's address it is published on; `0.0.0.0` (or `::`) is every
    /// address.
    #[serde(default = "HostPort::every_address")]
    pub host_ip: String,
}

impl HostPort {
    fn tcp() -> String {
        "tcp".into()
    }

    fn every_address() -> String {
        "0.0.0.0".into()
    }

    /// Whether it is published on every address of the node.
    pub fn on_every_address(&self) -> bool {
        matches!(self.host_ip.as_str(), "" | "0.0.0.0" | "::" | "[::]")
    }

    /// Whether it and `other` cannot both be published on one node: the same port
    /// and protocol, on the same address or on every address.
    pub fn conflicts_with(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol.eq_ignore_ascii_case(&other.protocol)
            && (self.on_every_address()
                || other.on_every_address()
                || self.host_ip == other.host_ip)
    }

    /// Checks the port, protocol and address; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.port == 0 {
            return Err(Error::Invalid(
                "requirements.ports: port 0 is no port".into(),
            ));
        }
        if !matches!(self.protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(Error::Invalid(format!(
                "requirements.ports: protocol {:?} is not tcp, udp or sctp",
                self.protocol
            )));
        }
        if !self.on_every_address() {
            validate::ip("requirements.ports.host_ip", &self.host_ip)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for HostPort {
    /// `8080/tcp`, or `127.0.0.1:8080/tcp`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.on_every_address() {
            write!(f, "{}/{}", self.port, self.protocol)
        } else {
            write!(f, "{}:{}/{}", self.host_ip, self.port, self.protocol)
        }
    }
}

/// Parses a semver requirement such as `>=24` or `^20.10`.
pub fn parse_version_req(text: &str) -> Result<semver::VersionReq> {
    semver::VersionReq::parse(text.trim()).map_err(|err| {
        Error::Invalid(format!(
            "requirements.docker_version: {text:?} is not a version requirement: {err}"
        ))
    })
}

/// `24`, `24.0`, `v24.0.7`, `20.10.17-ce` → a semver version (suffixes dropped).
pub fn lenient_version(text: &str) -> Option<semver::Version> {
    let text = text.trim().trim_start_matches(['v', 'V']);
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let mut parts = text[..end]
        .split('.')
        .filter(|p| !p.is_empty())
        .map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().transpose().ok()?.unwrap_or(0);
    let patch = parts.next().transpose().ok()?.unwrap_or(0);
    Some(semver::Version::new(major, minor, patch))
}

/// Resources as amounts: what a node reserves for deployments, or has free.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Resources {
    /// CPU cores.
    pub cpus: f64,
    /// Memory in MB.
    pub mem_mb: u64,
    /// Disk in MB.
    pub disk_mb: u64,
    /// Number of GPUs.
    pub gpus: u32,
    /// The GPUs by id.
    pub gpu_ids: Vec<u32>,
    /// Host ports taken (reserved resources only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<HostPort>,
    /// Container names taken (reserved resources only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_names: Vec<String>,
}
