//! The events of a decision: what each deployment written became, compared with
//! what it was. Every change of a deployment (deploy, update, placement, a node's
//! report, loss, deletion) goes through a decision, so this one place sees them all.

use crate::fleet::Snapshot;
use crate::model::{Deployment, DeploymentHealth, DeploymentStatus, Event};

/// The events of writing `writes` over `before`.
pub(crate) fn deployment_events(before: &Snapshot, writes: &[Deployment]) -> Vec<Event> {
    let mut events = Vec::new();
    for next in writes {
        let previous = before.find(&next.deployment_id);
        let node_name = |id: Option<&str>| {
            id.map(|id| before.node(id).map_or(id, |n| n.name.as_str()).to_string())
        };
        let id = next.deployment_id.as_str();
        let event = |kind: &str, summary: String| {
            Event::new(kind, "deployment", id, summary)
                .with("status", next.status.as_str())
                .with("revision", next.revision)
        };
        match previous {
            None => events.push(event("deployment.accepted", format!("{id} accepted"))),
            Some(previous) if previous.revision != next.revision => events.push(event(
                "deployment.updated",
                format!("{id} updated to revision {}", next.revision),
            )),
            Some(_) => {}
        }
        let moved = previous
            .and_then(|p| p.node_id.as_deref())
            .filter(|from| next.node_id.as_deref().is_some_and(|to| to != *from));
        if let Some(from) = moved {
            events.push(
                event(
                    "deployment.moved",
                    format!(
                        "{id} moved from {} to {}",
                        node_name(Some(from)).unwrap_or_default(),
                        node_name(next.node_id.as_deref()).unwrap_or_default()
                    ),
                )
                .with("from_node_id", from)
                .with("node_id", next.node_id.clone())
                .with("gpu_ids", next.gpu_ids.clone()),
            );
        }
        let status_changed = previous.is_none_or(|p| p.status != next.status);
        if status_changed || (moved.is_some() && next.status != DeploymentStatus::Scheduled) {
            events.push(status_event(next, node_name(next.node_id.as_deref())));
        }
        if let Some(event) = health_event(previous, next) {
            events.push(event);
        }
    }
    events
}

/// The event of a deployment turning `unhealthy`, or `healthy` after it was
/// `starting` or `unhealthy` (healthy from the first report on, it is told by
/// `deployment.running`, which carries its health), if it did.
fn health_event(previous: Option<&Deployment>, next: &Deployment) -> Option<Event> {
    let health = next.health?;
    let before = previous.and_then(|p| p.health);
    let changed = match health {
        DeploymentHealth::Unhealthy => before != Some(health),
        DeploymentHealth::Healthy => matches!(
            before,
            Some(DeploymentHealth::Starting | DeploymentHealth::Unhealthy)
        ),
        DeploymentHealth::Starting | DeploymentHealth::None => false,
    };
    if !changed {
        return None;
    }
    let id = next.deployment_id.as_str();
    let (kind, summary) = match health {
        DeploymentHealth::Healthy => ("deployment.healthy", format!("{id} is healthy")),
        DeploymentHealth::Unhealthy => (
            "deployment.unhealthy",
            format!("{id} is unhealthy: {}", next.message),
        ),
        DeploymentHealth::Starting | DeploymentHealth::None => return None,
    };
    let mut event = Event::new(kind, "deployment", id, summary)
        .with("status", next.status.as_str())
        .with("revision", next.revision)
        .with("health", health.as_str())
        .with("restarts", next.restarts)
        .with("message", next.message.clone());
    if let Some(node_id) = &next.node_id {
        event = event.with("node_id", node_id.clone());
    }
    Some(event)
}

/// The event of a deployment reaching its status.
fn status_event(next: &Deployment, node: Option<String>) -> Event {
    let id = next.deployment_id.as_str();
    let on = node.clone().unwrap_or_else(|| "no node".into());
    let (kind, summary) = match next.status {
        DeploymentStatus::Scheduled => {
            let gpus = if next.gpu_ids.is_empty() {
                String::new()
            } else {
                let ids: Vec<String> = next.gpu_ids.iter().map(u32::to_string).collect();
                format!(" (GPUs {})", ids.join(","))
            };
            (
                "deployment.scheduled",
                format!("{id} scheduled on {on}{gpus}"),
            )
        }
        DeploymentStatus::Pending => (
            "deployment.pending",
            format!("{id} pending: {}", next.message),
        ),
        DeploymentStatus::Running => ("deployment.running", format!("{id} running on {on}")),
        DeploymentStatus::Failed => (
            "deployment.failed",
            format!("{id} failed on {on}: {}", next.message),
        ),
        DeploymentStatus::Lost => ("deployment.lost", format!("{id} lost: {}", next.message)),
        DeploymentStatus::Deleting => ("deployment.deleting", format!("{id} being deleted")),
        DeploymentStatus::Deleted => ("deployment.deleted", format!("{id} deleted")),
    };
    let mut event = Event::new(kind, "deployment", id, summary)
        .with("status", next.status.as_str())
        .with("revision", next.revision)
        .with("message", next.message.clone());
    if let Some(node_id) = &next.node_id {
        event = event.with("node_id", node_id.clone());
        if let Some(node) = node {
            event = event.with("node_name", node);
        }
    }
    if next.status == DeploymentStatus::Scheduled {
        event = event.with("gpu_ids", next.gpu_ids.clone());
    }
    if let Some(health) = next.health {
        event = event.with("health", health.as_str());
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(id: &str, status: DeploymentStatus, node: Option<&str>) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "deployment_id": id, "template_id": "t", "action": "apply",
            "status": status, "message": "", "node_id": node,
            "env": {"SECRET": "hunter2"}, "rendered_compose": "services: {a: {image: x}}",
            "revision": 1, "created_at": 1.0, "updated_at": 1.0
        }))
        .unwrap()
    }

    fn kinds(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_deployment_s_life_is_told_by_its_transitions_without_secrets() {
        let empty = Snapshot::new(Vec::new(), Vec::new());
        let placed = deployment("web", DeploymentStatus::Scheduled, Some("n1"));
        let events = deployment_events(&empty, std::slice::from_ref(&placed));
        assert_eq!(
            kinds(&events),
            ["deployment.accepted", "deployment.scheduled"]
        );
        assert!(!serde_json::to_string(&events).unwrap().contains("hunter2"));

        let before = Snapshot::new(Vec::new(), vec![placed.clone()]);
        let same = deployment_events(&before, std::slice::from_ref(&placed));
        assert!(same.is_empty(), "an unchanged write tells nothing");
        let running = deployment("web", DeploymentStatus::Running, Some("n1"));
        assert_eq!(
            kinds(&deployment_events(&before, &[running])),
            ["deployment.running"]
        );
        let moved = deployment("web", DeploymentStatus::Scheduled, Some("n2"));
        let events = deployment_events(&before, &[moved]);
        assert_eq!(kinds(&events), ["deployment.moved"]);
        assert_eq!(events[0].data["from_node_id"], "n1");
    }

    #[test]
    fn turning_healthy_or_unhealthy_is_told_once() {
        let running = |health: Option<DeploymentHealth>, restarts: u32| {
            let mut d = deployment("web", DeploymentStatus::Running, Some("n1"));
            d.health = health;
            d.restarts = restarts;
            d
        };
        let starting = running(Some(DeploymentHealth::Starting), 0);
        let before = Snapshot::new(Vec::new(), vec![starting.clone()]);
        assert!(deployment_events(&before, std::slice::from_ref(&starting)).is_empty());
        let healthy = deployment_events(&before, &[running(Some(DeploymentHealth::Healthy), 0)]);
        assert_eq!(kinds(&healthy), ["deployment.healthy"]);
        assert_eq!(healthy[0].data["health"], "healthy");

        let before = Snapshot::new(
            Vec::new(),
            vec![running(Some(DeploymentHealth::Healthy), 0)],
        );
        let sick = deployment_events(&before, &[running(Some(DeploymentHealth::Unhealthy), 3)]);
        assert_eq!(kinds(&sick), ["deployment.unhealthy"]);
        assert_eq!(sick[0].data["restarts"], 3);
        // a restart alone, still healthy, is no health event
        assert!(
            deployment_events(&before, &[running(Some(DeploymentHealth::Healthy), 1)]).is_empty()
        );
        // running with no healthcheck, or healthy from the first report, says
        // only that it runs, with its health
        let scheduled = deployment("web", DeploymentStatus::Scheduled, Some("n1"));
        let before = Snapshot::new(Vec::new(), vec![scheduled]);
        for health in [DeploymentHealth::None, DeploymentHealth::Healthy] {
            let events = deployment_events(&before, &[running(Some(health), 0)]);
            assert_eq!(kinds(&events), ["deployment.running"]);
            assert_eq!(events[0].data["health"], health.as_str());
        }
        // but unhealthy from the first report is told at once
        let events = deployment_events(&before, &[running(Some(DeploymentHealth::Unhealthy), 0)]);
        assert_eq!(
            kinds(&events),
            ["deployment.running", "deployment.unhealthy"]
        );
    }
}
