//! The core's Prometheus series, through the `metrics` facade (a no-op until a
//! recorder is installed, as the server does): scheduling and heartbeats.

use std::time::Duration;

use crate::placement::Decision;

/// Counts one placement decision and its duration; an unplaceable one also counts
/// each reason nodes were rejected for.
pub(crate) fn scheduled(decision: &Decision, took: Duration) {
    metrics::histogram!("miaas_scheduling_duration_seconds").record(took.as_secs_f64());
    match decision {
        Decision::Placed { .. } => {
            metrics::counter!("miaas_schedule_attempts_total", "result" => "scheduled")
                .increment(1);
        }
        Decision::Unplaceable(summary) => {
            metrics::counter!("miaas_schedule_attempts_total", "result" => "unschedulable")
                .increment(1);
            for reason in summary.reasons.keys() {
                metrics::counter!("miaas_unschedulable_total", "reason" => reason.clone())
                    .increment(1);
            }
        }
    }
}

/// Counts a decision that failed to commit (its placements are not known to hold).
pub(crate) fn schedule_error() {
    metrics::counter!("miaas_schedule_attempts_total", "result" => "error").increment(1);
}

/// Counts a heartbeat received.
pub(crate) fn heartbeat() {
    metrics::counter!("miaas_heartbeats_received_total").increment(1);
}
