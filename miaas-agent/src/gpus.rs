//! GPUs of this machine, from `nvidia-smi` (none found is `[]`, never an error):
//! what they are, and how busy they are now.

use miaas_core::model::{GpuInfo, GpuUsage};

/// How long `nvidia-smi` may take to answer.
const NVIDIA_SMI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The query of [`discover`].
const DISCOVERY_QUERY: &str = "--query-gpu=index,uuid,name,memory.total";

/// The query of [`usage`].
const USAGE_QUERY: &str =
    "--query-gpu=index,utilization.gpu,memory.used,temperature.gpu,power.draw";

/// What `nvidia-smi` printed for `query`: `Some("")` when it is missing or fails,
/// `None` when it did not answer in time.
async fn query(query: &str) -> Option<String> {
    let output = tokio::process::Command::new("nvidia-smi")
        .args([query, "--format=csv,noheader,nounits"])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(NVIDIA_SMI_TIMEOUT, output).await {
        Ok(Ok(out)) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into()),
        Ok(_) => Some(String::new()),
        Err(_) => None,
    }
}

/// The GPUs `nvidia-smi` reports: `[]` when it is missing or fails, `None` when
/// it did not answer in time (a hung driver says nothing about the GPUs).
pub async fn discover() -> Option<Vec<GpuInfo>> {
    let Some(text) = query(DISCOVERY_QUERY).await else {
        tracing::warn!("nvidia-smi did not answer within 30 s: GPUs as last measured");
        return None;
    };
    Some(parse(&text))
}

/// Each GPU's usage now: `[]` when `nvidia-smi` is missing, fails or does not
/// answer in time (usage that old would be shown as now).
pub async fn usage() -> Vec<GpuUsage> {
    let Some(text) = query(USAGE_QUERY).await else {
        tracing::warn!("nvidia-smi did not answer within 30 s: no GPU usage reported");
        return Vec::new();
    };
    parse_usage(&text)
}

/// Parses `index, utilization.gpu, memory.used, temperature.gpu, power.draw`
/// lines: a value `nvidia-smi` cannot give (`[N/A]`, `N/A`, `[Not Supported]`,
/// empty, or anything else that is not a number in range) is unknown; a line
/// without five fields or an index is skipped, as is a GPU already given.
pub fn parse_usage(text: &str) -> Vec<GpuUsage> {
    let mut gpus: Vec<GpuUsage> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [index, utilization, memory, temperature, power] = fields.as_slice() else {
            continue;
        };
        let Ok(id) = index.parse::<u32>() else {
            continue;
        };
        if gpus.iter().any(|g| g.id == id) || gpus.len() >= miaas_core::model::MAX_GPUS {
            continue;
        }
        gpus.push(GpuUsage {
            id,
            utilization: number(utilization).filter(|u| (0.0..=100.0).contains(u)),
            mem_used_mb: number(memory)
                .filter(|mb| *mb >= 0.0)
                .map(|mb| mb.trunc() as u64),
            temperature_c: number(temperature).filter(|t| *t >= -273.15),
            power_w: number(power).filter(|w| *w >= 0.0),
        });
    }
    gpus
}

/// A finite number, or `None` for what `nvidia-smi` writes instead of one.
fn number(field: &str) -> Option<f64> {
    field.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses `index, uuid, name, memory.total` lines; lines that do not parse are
/// skipped.
pub fn parse(text: &str) -> Vec<GpuInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [index, uuid, name, memory] = fields.as_slice() else {
                return None;
            };
            if name.is_empty() {
                return None;
            }
            let mem_mb = memory.parse::<f64>().ok().map(|mb| mb.max(0.0) as u64)?;
            let mut gpu = GpuInfo::new(index.parse().ok()?, *name, mem_mb);
            gpu.uuid = (!uuid.is_empty()).then(|| (*uuid).to_string());
            tracing::debug!(id = gpu.id, %uuid, model = %name, "GPU found");
            Some(gpu)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_become_gpus() {
        let text = "0, GPU-5c2e, NVIDIA A100-SXM4-80GB, 81920\n\
                    1, GPU-77ab, NVIDIA A100-SXM4-80GB, 81920\n\
                    garbage\n";
        let gpus = parse(text);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[1].id, 1);
        assert_eq!(gpus[0].model.as_deref(), Some("NVIDIA A100-SXM4-80GB"));
        assert_eq!(gpus[0].mem_mb, Some(81920));
        assert_eq!(gpus[0].uuid.as_deref(), Some("GPU-5c2e"));
        assert!(parse("").is_empty());
    }

    #[test]
    fn usage_lines_become_usage_with_unknowns_as_none() {
        let text = "0, 37, 20480, 61, 250.50\n\
                    1, [N/A], [N/A], 45, [Not Supported]\n\
                    2, N/A, 0, , 0.00\n\
                    garbage\n\
                    x, 1, 2, 3, 4\n\
                    3, 1, 2, 3\n\
                    4, 250, -1, NaN, -5\n\
                    0, 99, 1, 1, 1\n";
        let gpus = parse_usage(text);
        assert_eq!(gpus.len(), 4, "{gpus:?}");
        assert_eq!(
            gpus[0],
            GpuUsage {
                id: 0,
                utilization: Some(37.0),
                mem_used_mb: Some(20480),
                temperature_c: Some(61.0),
                power_w: Some(250.5),
            }
        );
        let mut one = GpuUsage::unknown(1);
        one.temperature_c = Some(45.0);
        assert_eq!(gpus[1], one);
        let mut two = GpuUsage::unknown(2);
        two.mem_used_mb = Some(0);
        two.power_w = Some(0.0);
        assert_eq!(gpus[2], two);
        assert_eq!(gpus[3], GpuUsage::unknown(4), "out of range is unknown");
        assert!(parse_usage("").is_empty());
    }
}
