//! What the dashboard shows of GPUs: on a node's page one row per GPU (what it
//! is, its live usage as bars and numbers, who holds it), in the node list each
//! node's average utilization. Widths are worked out here, so the templates only
//! print numbers.

use std::collections::HashMap;

use miaas_core::model::{GpuInfo, GpuUsage, Node, reading_text};
use minijinja::{Value, context};

/// The rows of a node's GPU table: every GPU it registered, then any other it
/// reported usage for, by id. Each row has `gpu` (id, model, mem_mb), `holder`,
/// the texts `utilization` (%), `temperature_c` and `power_w`, `mem_used_mb`
/// (each none when unknown), and the bars' widths `utilization_width` and
/// `mem_width` (0 to 100, none when unknown).
pub(super) fn rows(node: &Node, holders: &HashMap<u32, &str>) -> Vec<Value> {
    let usage: &[GpuUsage] = node.metrics.as_ref().map_or(&[], |m| &m.gpus);
    let reported_only = usage
        .iter()
        .filter(|u| !node.capabilities.gpus.iter().any(|g| g.id == u.id))
        .map(|u| GpuInfo {
            id: u.id,
            model: None,
            mem_mb: None,
            uuid: None,
            extra: Default::default(),
        });
    let mut gpus: Vec<GpuInfo> = node.capabilities.gpus.to_vec();
    gpus.extend(reported_only);
    gpus.sort_by_key(|g| g.id);
    gpus.into_iter()
        .map(|gpu| {
            let used = usage.iter().find(|u| u.id == gpu.id);
            let utilization = used.and_then(|u| u.utilization);
            let mem_used_mb = used.and_then(|u| u.mem_used_mb);
            let mem_width = match (mem_used_mb, gpu.mem_mb) {
                (Some(used), Some(total)) if total > 0 => {
                    Some(width(used as f64 / total as f64 * 100.0))
                }
                _ => None,
            };
            context! {
                holder => holders.get(&gpu.id).copied(),
                utilization => utilization.map(reading_text),
                utilization_width => utilization.map(width),
                mem_used_mb => mem_used_mb,
                mem_width => mem_width,
                temperature_c => used.and_then(|u| u.temperature_c).map(reading_text),
                power_w => used.and_then(|u| u.power_w).map(reading_text),
                gpu => gpu,
            }
        })
        .collect()
}

/// Each node's average GPU utilization by node id, as `text` (%) and the bar's
/// `width`; a node that reported no GPU utilization is absent.
pub(super) fn utilization_by_node(nodes: &[Node]) -> HashMap<String, Value> {
    nodes
        .iter()
        .filter_map(|node| {
            let average = node.metrics.as_ref()?.gpu_utilization()?;
            let shown = context! { text => reading_text(average), width => width(average) };
            Some((node.id.clone(), shown))
        })
        .collect()
}

/// A bar's width in whole percent, 0 to 100.
fn width(percent: f64) -> u8 {
    // clamped to 0..=100 first: the cast is exact
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let width = percent.clamp(0.0, 100.0).round() as u8;
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_short_and_widths_stay_in_the_bar() {
        assert_eq!(reading_text(37.0), "37");
        assert_eq!(reading_text(250.54), "250.5");
        assert_eq!(width(37.4), 37);
        assert_eq!(width(140.0), 100);
        assert_eq!(width(-3.0), 0);
    }
}
