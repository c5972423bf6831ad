//! Live GPU usage, as a node's heartbeat reports it (the agent asks `nvidia-smi`
//! for it every heartbeat interval).

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{KnownFormat, Object, SchemaFormat};

use crate::{Error, Result};

/// Most GPUs a heartbeat may report (more than any machine has).
pub const MAX_GPUS: usize = 64;

/// The coldest temperature there is, in °C.
const ABSOLUTE_ZERO_C: f64 = -273.15;

/// One GPU's live usage. A value the driver did not report (`nvidia-smi` said
/// `[N/A]` or `[Not Supported]`) is null, never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61, "power_w": 250.5
}))]
pub struct GpuUsage {
    /// The GPU's index on the node (`nvidia-smi`'s `index`, the `id` of
    /// `capabilities.gpus`).
    #[serde(deserialize_with = "super::number::deserialize_whole_u32")]
    #[schema(schema_with = super::number::count_schema)]
    pub id: u32,
    /// Utilization in percent (0 to 100); null when unknown.
    #[serde(default)]
    #[schema(schema_with = optional_percent_schema)]
    pub utilization: Option<f64>,
    /// Memory in use, in MB (MiB, as `nvidia-smi` counts them); null when unknown.
    #[serde(
        default,
        deserialize_with = "super::number::deserialize_optional_whole"
    )]
    #[schema(schema_with = super::number::optional_whole_schema)]
    pub mem_used_mb: Option<u64>,
    /// Temperature in °C (shown as a whole number when it is one); null when
    /// unknown.
    #[serde(default, serialize_with = "serialize_optional_reading")]
    #[schema(schema_with = optional_number_schema)]
    pub temperature_c: Option<f64>,
    /// Power draw in W (not negative); null when unknown.
    #[serde(default)]
    #[schema(schema_with = optional_number_schema)]
    pub power_w: Option<f64>,
}

impl GpuUsage {
    /// A GPU of which nothing is known but its id.
    pub fn unknown(id: u32) -> Self {
        Self {
            id,
            utilization: None,
            mem_used_mb: None,
            temperature_c: None,
            power_w: None,
        }
    }

    /// Checks one GPU's values; the error names the field under `field`
    /// (`gpus[0]`).
    fn validate(&self, field: &str) -> Result<()> {
        if let Some(utilization) = self.utilization {
            crate::validate::percent(&format!("{field}.utilization"), utilization)?;
        }
        if let Some(temperature) = self.temperature_c
            && (!temperature.is_finite() || temperature < ABSOLUTE_ZERO_C)
        {
            return Err(Error::Invalid(format!(
                "{field}.temperature_c: must be a temperature in °C above {ABSOLUTE_ZERO_C} \
                 (got {temperature})"
            )));
        }
        if let Some(power) = self.power_w
            && (!power.is_finite() || power < 0.0)
        {
            return Err(Error::Invalid(format!(
                "{field}.power_w: must be a power in W, 0 or more (got {power})"
            )));
        }
        Ok(())
    }
}

/// Checks a list of GPU usages given as `field`: at most [`MAX_GPUS`], each id
/// once, every value in range. The error names the field (`gpus[1].utilization`).
pub fn validate_gpu_usage(field: &str, gpus: &[GpuUsage]) -> Result<()> {
    crate::validate::list_len(field, gpus.len(), MAX_GPUS)?;
    for (index, gpu) in gpus.iter().enumerate() {
        gpu.validate(&format!("{field}[{index}]"))?;
        if gpus[..index].iter().any(|earlier| earlier.id == gpu.id) {
            return Err(Error::Invalid(format!(
                "{field}[{index}].id: GPU {} is reported twice",
                gpu.id
            )));
        }
    }
    Ok(())
}

/// The average utilization (%) of the GPUs that report one; `None` when none does.
pub fn average_utilization(gpus: &[GpuUsage]) -> Option<f64> {
    let known: Vec<f64> = gpus.iter().filter_map(|g| g.utilization).collect();
    (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
}

/// A reading for people: `37`, `250.5` (at most one decimal, none when it is
/// `.0`), as the CLI and the dashboard show it.
pub fn reading_text(value: f64) -> String {
    let text = format!("{value:.1}");
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

/// A reading as `nvidia-smi` gives it: a whole number (61 °C) as an integer,
/// anything else as a float.
fn serialize_optional_reading<S: Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        // whole and well within i64: exact
        #[allow(clippy::cast_possible_truncation)]
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => serializer.serialize_i64(*v as i64),
        Some(v) => serializer.serialize_f64(*v),
        None => serializer.serialize_none(),
    }
}

/// OpenAPI schema of a percentage that may be null (unknown).
fn optional_percent_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(0.0))
        .maximum(Some(100.0))
        .description(Some("A percentage (0 to 100), or null when unknown."))
        .build()
}

/// OpenAPI schema of a measured number that may be null (unknown).
fn optional_number_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .description(Some("A number, or null when unknown."))
        .build()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn usage(value: serde_json::Value) -> GpuUsage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_documented_shape_round_trips_with_nulls_for_unknowns() {
        let shown = json!({
            "id": 0, "utilization": 37.0, "mem_used_mb": 20480, "temperature_c": 61,
            "power_w": 250.5
        });
        let gpu = usage(shown.clone());
        assert_eq!(gpu.temperature_c, Some(61.0));
        assert_eq!(serde_json::to_value(&gpu).unwrap(), shown);
        let bare = usage(json!({"id": 3}));
        assert_eq!(bare, GpuUsage::unknown(3));
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            json!({"id": 3, "utilization": null, "mem_used_mb": null,
                   "temperature_c": null, "power_w": null})
        );
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let error = |gpus: serde_json::Value| {
            let gpus: Vec<GpuUsage> = serde_json::from_value(gpus).unwrap();
            validate_gpu_usage("gpus", &gpus).unwrap_err().to_string()
        };
        let message = error(json!([{"id": 0}, {"id": 1, "utilization": 101}]));
        assert!(message.contains("gpus[1].utilization"), "{message}");
        let message = error(json!([{"id": 0, "utilization": -1}]));
        assert!(message.contains("gpus[0].utilization"), "{message}");
        let message = error(json!([{"id": 0, "power_w": -5}]));
        assert!(message.contains("gpus[0].power_w"), "{message}");
        let message = error(json!([{"id": 0, "temperature_c": -300}]));
        assert!(message.contains("gpus[0].temperature_c"), "{message}");
        let message = error(json!([{"id": 2}, {"id": 2}]));
        assert!(message.contains("gpus[1].id"), "{message}");
        let many: Vec<_> = (0..65).map(|id| json!({"id": id})).collect();
        let message = error(json!(many));
        assert!(message.contains("gpus"), "{message}");
        let gpus: Vec<GpuUsage> = serde_json::from_value(json!([
            {"id": 0, "utilization": 0, "temperature_c": -40, "power_w": 0},
            {"id": 1, "utilization": 100}
        ]))
        .unwrap();
        assert!(validate_gpu_usage("gpus", &gpus).is_ok());
    }

    #[test]
    fn negative_memory_is_refused_when_read() {
        let read = serde_json::from_value::<GpuUsage>(json!({"id": 0, "mem_used_mb": -1}));
        assert!(read.is_err());
    }

    #[test]
    fn the_average_counts_only_gpus_that_report_one() {
        let mut a = GpuUsage::unknown(0);
        a.utilization = Some(30.0);
        let mut b = GpuUsage::unknown(1);
        b.utilization = Some(50.0);
        let c = GpuUsage::unknown(2);
        assert_eq!(average_utilization(&[a, b, c.clone()]), Some(40.0));
        assert_eq!(average_utilization(&[c]), None);
        assert_eq!(average_utilization(&[]), None);
    }
}
