//! The GPUs a service asks for, read as Docker gives them: device requests in
//! `deploy.resources.reservations.devices` that Docker's NVIDIA driver answers
//! (`driver: nvidia`, or a capability among `gpu nvidia compute utility graphics
//! video display compat32`), the service-level `gpus` (`all`, or device
//! requests), and `runtime: nvidia` with `NVIDIA_VISIBLE_DEVICES`. A request of
//! `count: all` (or `-1`), or of neither `count` nor `device_ids`, is every GPU
//! of the node, as in Docker.

use serde_json::{Map, Value};

use super::invalid;
use crate::Result;

/// The capabilities Docker's NVIDIA driver answers to: a device request naming any
/// of them (or `driver: nvidia`) is given GPUs.
const NVIDIA_CAPABILITIES: [&str; 8] = [
    "gpu", "nvidia", "compute", "utility", "graphics", "video", "display", "compat32",
];

/// Whether a `deploy.resources.reservations.devices` entry is a GPU request as
/// Docker reads it: `driver: nvidia`, or a capability the NVIDIA driver answers to.
/// Such a request is counted by placement and pinned to the assigned GPUs on the
/// node.
pub fn is_gpu_request(device: &Value) -> bool {
    let nvidia_driver = device
        .get("driver")
        .and_then(Value::as_str)
        .is_some_and(|d| d.eq_ignore_ascii_case("nvidia"));
    let nvidia_capability = device.get("capabilities").is_some_and(|caps| {
        strings(caps).iter().any(|c| {
            NVIDIA_CAPABILITIES
                .iter()
                .any(|known| c.eq_ignore_ascii_case(known))
        })
    });
    nvidia_driver || nvidia_capability
}

/// GPUs one service asks for (one replica).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuAsk {
    /// How many (for `all`, the least: 1).
    pub count: u32,
    /// Every GPU of the node.
    pub all: bool,
    /// Where in the service it is asked (`deploy.resources.reservations.devices.0`).
    pub key: String,
    /// `device request`, `gpus` or `runtime`.
    pub source: &'static str,
}

/// What `service` asks for; `path` (`services.web`) names it in errors.
pub fn gpu_asks(service: &Map<String, Value>, path: &str) -> Result<Vec<GpuAsk>> {
    let mut asks = Vec::new();
    let devices = service
        .get("deploy")
        .and_then(|d| d.get("resources"))
        .and_then(|r| r.get("reservations"))
        .and_then(|r| r.get("devices"))
        .filter(|d| !d.is_null());
    if let Some(devices) = devices {
        let key = "deploy.resources.reservations.devices";
        let list = devices
            .as_array()
            .ok_or_else(|| invalid(format_args!("{path}.{key}: must be a list")))?;
        for (i, device) in list.iter().enumerate() {
            if is_gpu_request(device) {
                let key = format!("{key}.{i}");
                asks.push(device_ask(
                    device,
                    &format!("{path}.{key}"),
                    key,
                    "device request",
                )?);
            }
        }
    }
    match service.get("gpus") {
        None | Some(Value::Null) => {}
        Some(Value::String(all)) if all.eq_ignore_ascii_case("all") => asks.push(GpuAsk {
            count: 1,
            all: true,
            key: "gpus".into(),
            source: "gpus",
        }),
        Some(Value::Array(requests)) => {
            for (i, device) in requests.iter().enumerate() {
                let key = format!("gpus.{i}");
                asks.push(device_ask(device, &format!("{path}.{key}"), key, "gpus")?);
            }
        }
        Some(other) => {
            return Err(invalid(format_args!(
                "{path}.gpus: {other} is neither `all` nor a list of device requests"
            )));
        }
    }
    let nvidia_runtime = service.get("runtime").and_then(Value::as_str) == Some("nvidia");
    if asks.is_empty() && nvidia_runtime {
        asks.extend(runtime_ask(service));
    }
    Ok(asks)
}

/// One device request: `count` (a number, `all`, `-1`), else its `device_ids`
/// (`'0,1'` is two), else every GPU.
fn device_ask(device: &Value, path: &str, key: String, source: &'static str) -> Result<GpuAsk> {
    let ask = |count: u32, all: bool| GpuAsk {
        count,
        all,
        key: key.clone(),
        source,
    };
    let not_a_count = |what: &Value| invalid(format_args!("{path}.count: {what} is not a count"));
    match device.get("count") {
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => Ok(ask(1, true)),
        Some(count @ Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| ask(n, false))
            .ok_or_else(|| not_a_count(count)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("all") || s.trim() == "-1" => {
            Ok(ask(1, true))
        }
        Some(count @ Value::String(s)) => s
            .trim()
            .parse()
            .map(|n| ask(n, false))
            .map_err(|_| not_a_count(count)),
        Some(Value::Null) | None => {
            let ids = device.get("device_ids").filter(|ids| !ids.is_null());
            match ids {
                Some(ids) => {
                    let count = strings(ids)
                        .iter()
                        .flat_map(|id| id.split(','))
                        .filter(|id| !id.trim().is_empty())
                        .count();
                    Ok(ask(u32::try_from(count).unwrap_or(u32::MAX), false))
                }
                None => Ok(ask(1, true)),
            }
        }
        Some(other) => Err(not_a_count(other)),
    }
}

/// `runtime: nvidia`: the GPUs of `NVIDIA_VISIBLE_DEVICES` in its environment
/// (`all`, or an image's default of all when it is not set; none for `none`,
/// `void` or empty).
fn runtime_ask(service: &Map<String, Value>) -> Option<GpuAsk> {
    const VISIBLE: &str = "NVIDIA_VISIBLE_DEVICES";
    let visible = match service.get("environment") {
        Some(Value::Object(map)) => map.get(VISIBLE).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).find_map(|entry| {
            entry
                .strip_prefix(VISIBLE)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_string)
        }),
        _ => None,
    };
    let ask = |count: u32, all: bool| GpuAsk {
        count,
        all,
        key: "runtime".into(),
        source: "runtime",
    };
    match visible.as_deref().map(str::trim) {
        None | Some("all") => Some(ask(1, true)),
        Some("" | "none" | "void") => None,
        Some(ids) => {
            let count = ids.split(',').filter(|id| !id.trim().is_empty()).count();
            Some(ask(u32::try_from(count).unwrap_or(u32::MAX), false))
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn asks(service: Value) -> Vec<(u32, bool, &'static str)> {
        let Value::Object(service) = service else {
            panic!("a mapping")
        };
        (gpu_asks(&service, "services.s")
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter())
        .map(|a| (a.count, a.all, a.source))
        .collect()
    }

    fn devices(list: Value) -> Value {
        json!({"deploy": {"resources": {"reservations": {"devices": list}}}})
    }

    #[test]
    fn device_requests_the_nvidia_driver_answers() {
        assert_eq!(
            asks(devices(
                json!([{"driver": "nvidia", "count": 2, "capabilities": ["gpu"]}])
            )),
            [(2, false, "device request")]
        );
        // Stable Diffusion WebUI's
        assert_eq!(
            asks(devices(
                json!([{"device_ids": ["0"], "capabilities": ["compute", "utility"]}])
            )),
            [(1, false, "device request")]
        );
        assert_eq!(
            asks(devices(
                json!([{"capabilities": ["gpu"], "device_ids": ["0,1"]}])
            )),
            [(2, false, "device request")]
        );
        for all in [json!("all"), json!(-1), json!("-1")] {
            assert_eq!(
                asks(devices(json!([{"capabilities": ["gpu"], "count": all}]))),
                [(1, true, "device request")]
            );
        }
        assert_eq!(
            asks(devices(json!([{"capabilities": ["gpu"]}]))),
            [(1, true, "device request")],
            "neither count nor ids: every GPU, as in Docker"
        );
        assert_eq!(
            asks(devices(json!([{"capabilities": ["tpu"], "count": 4}]))),
            []
        );
        assert!(
            gpu_asks(
                devices(json!([{"capabilities": ["gpu"], "count": "many"}]))
                    .as_object()
                    .unwrap(),
                "s"
            )
            .is_err()
        );
    }

    #[test]
    fn the_gpus_key_and_the_nvidia_runtime() {
        assert_eq!(asks(json!({"gpus": "all"})), [(1, true, "gpus")]);
        assert_eq!(asks(json!({"gpus": [{"count": 2}]})), [(2, false, "gpus")]);
        assert_eq!(asks(json!({"runtime": "nvidia"})), [(1, true, "runtime")]);
        assert_eq!(
            asks(json!({"runtime": "nvidia", "environment": ["NVIDIA_VISIBLE_DEVICES=0,2"]})),
            [(2, false, "runtime")]
        );
        assert_eq!(
            asks(json!({"runtime": "nvidia", "environment": {"NVIDIA_VISIBLE_DEVICES": "none"}})),
            []
        );
        assert_eq!(asks(json!({"runtime": "runc"})), []);
    }
}
