//! The per-GPU gauges of `--metrics-per-node`, written as text beside the
//! recorder's: they show exactly what the nodes' last heartbeats said, so a GPU
//! whose value became unknown (`[N/A]`), or that is gone, has no sample rather
//! than the last value a recorder's gauge would keep forever.

use std::fmt::Write;

use miaas_core::model::GpuUsage;
use miaas_core::service::NodeTotals;

const MIB: f64 = 1024.0 * 1024.0;

/// A family of per-GPU gauges: its name, its help, and a GPU's value (`None`: no
/// sample).
type Family = (&'static str, &'static str, fn(&GpuUsage) -> Option<f64>);

/// Appends `miaas_node_gpu_utilization_ratio{node,gpu}` (0 to 1) and
/// `miaas_node_gpu_memory_used_bytes{node,gpu}` for every GPU of `nodes` that
/// reported the value; nothing when none did.
pub fn append(text: &mut String, nodes: &[NodeTotals]) {
    let families: [Family; 2] = [
        (
            "miaas_node_gpu_utilization_ratio",
            "GPU utilization (0 to 1), per node and GPU, as last reported",
            |gpu| gpu.utilization.map(|percent| percent / 100.0),
        ),
        (
            "miaas_node_gpu_memory_used_bytes",
            "GPU memory in use (bytes), per node and GPU, as last reported",
            |gpu| gpu.mem_used_mb.map(|mb| mb as f64 * MIB),
        ),
    ];
    for (name, help, value_of) in families {
        let samples: Vec<(&str, u32, f64)> = nodes
            .iter()
            .flat_map(|node| {
                (node.gpus.iter())
                    .filter_map(move |gpu| Some((node.name.as_str(), gpu.id, value_of(gpu)?)))
            })
            .collect();
        if samples.is_empty() {
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let _ = writeln!(text, "# HELP {name} {help}");
        let _ = writeln!(text, "# TYPE {name} gauge");
        for (node, gpu, value) in samples {
            let _ = writeln!(
                text,
                "{name}{{node=\"{}\",gpu=\"{gpu}\"}} {value}",
                escape(node)
            );
        }
    }
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, gpus: Vec<GpuUsage>) -> NodeTotals {
        NodeTotals {
            name: name.into(),
            online: true,
            cpu_usage: 0.0,
            mem_usage: 0.0,
            deployments: 0,
            gpus,
        }
    }

    #[test]
    fn every_known_value_is_one_sample_and_unknowns_none() {
        let mut busy = GpuUsage::unknown(0);
        busy.utilization = Some(37.0);
        busy.mem_used_mb = Some(20480);
        let mut quiet = GpuUsage::unknown(1);
        quiet.mem_used_mb = Some(1);
        let mut text = "miaas_build_info 1".to_string();
        append(
            &mut text,
            &[node("a\"b", vec![busy, quiet]), node("none", vec![])],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&r#"miaas_node_gpu_utilization_ratio{node="a\"b",gpu="0"} 0.37"#));
        assert!(
            lines.contains(&r#"miaas_node_gpu_memory_used_bytes{node="a\"b",gpu="0"} 21474836480"#)
        );
        assert!(
            lines.contains(&r#"miaas_node_gpu_memory_used_bytes{node="a\"b",gpu="1"} 1048576"#)
        );
        assert!(!text.contains(r#"gpu_utilization_ratio{node="a\"b",gpu="1"}"#));
        assert!(!text.contains("none"));
        assert_eq!(lines[0], "miaas_build_info 1");
        assert!(lines.contains(&"# TYPE miaas_node_gpu_utilization_ratio gauge"));
    }

    #[test]
    fn no_usage_adds_nothing() {
        let mut text = String::from("x 1\n");
        append(&mut text, &[node("n", vec![GpuUsage::unknown(0)])]);
        assert_eq!(text, "x 1\n");
    }
}
