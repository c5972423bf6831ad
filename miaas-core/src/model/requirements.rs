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
        validate::tags("requirements.tags", &self.tags)
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
}
