//! GPUs of this machine, from `nvidia-smi` (none found is `[]`, never an error).

use miaas_core::model::GpuInfo;

/// How long `nvidia-smi` may take to answer.
const NVIDIA_SMI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The GPUs `nvidia-smi` reports: `[]` when it is missing or fails, `None` when
/// it did not answer in time (a hung driver says nothing about the GPUs).
pub async fn discover() -> Option<Vec<GpuInfo>> {
    let output = tokio::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,uuid,name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(NVIDIA_SMI_TIMEOUT, output).await {
        Ok(Ok(out)) if out.status.success() => Some(parse(&String::from_utf8_lossy(&out.stdout))),
        Ok(_) => Some(Vec::new()),
        Err(_) => {
            tracing::warn!("nvidia-smi did not answer within 30 s: GPUs as last measured");
            None
        }
    }
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
}
