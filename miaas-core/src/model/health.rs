//! A deployment's health: what the Docker healthchecks of its containers say.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The health of a running deployment, from its containers' Docker
/// healthchecks: any `unhealthy` makes it `unhealthy`, else any `starting`
/// makes it `starting`, else all `healthy` make it `healthy`; `none` when no
/// service has a healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentHealth {
    /// A healthcheck has not passed yet (within its `start_period`, say).
    Starting,
    /// Every healthcheck passes.
    Healthy,
    /// A healthcheck fails.
    Unhealthy,
    /// No service has a healthcheck.
    None,
}

impl DeploymentHealth {
    /// Every health, in order.
    pub const ALL: [Self; 4] = [Self::Starting, Self::Healthy, Self::Unhealthy, Self::None];

    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::None => "none",
        }
    }

    /// Parses the JSON name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == text)
    }

    /// The health of a deployment whose containers have `each` (Docker's
    /// per-container health, `None` for a container without a healthcheck).
    pub fn of_containers(each: impl IntoIterator<Item = Option<Self>>) -> Self {
        let mut checked = Vec::new();
        for health in each.into_iter().flatten() {
            checked.push(health);
        }
        if checked.contains(&Self::Unhealthy) {
            Self::Unhealthy
        } else if checked.contains(&Self::Starting) {
            Self::Starting
        } else if checked.contains(&Self::Healthy) {
            Self::Healthy
        } else {
            Self::None
        }
    }

    /// Whether a deployment with this health is ready to serve (`healthy`, or no
    /// healthcheck to say otherwise).
    pub fn is_ready(self) -> bool {
        matches!(self, Self::Healthy | Self::None)
    }
}

#[cfg(test)]
mod tests {
    use super::DeploymentHealth::{self, *};

    #[test]
    fn the_worst_container_decides() {
        let of = |each: &[Option<DeploymentHealth>]| DeploymentHealth::of_containers(each.to_vec());
        assert_eq!(of(&[]), None);
        assert_eq!(of(&[Option::None, Option::None]), None);
        assert_eq!(of(&[Some(Healthy), Option::None]), Healthy);
        assert_eq!(of(&[Some(Healthy), Some(Starting)]), Starting);
        assert_eq!(
            of(&[Some(Starting), Some(Unhealthy), Some(Healthy)]),
            Unhealthy
        );
        assert_eq!(DeploymentHealth::parse("unhealthy"), Some(Unhealthy));
        assert_eq!(DeploymentHealth::parse("sick"), Option::None);
        assert!(Healthy.is_ready() && None.is_ready());
        assert!(!Starting.is_ready() && !Unhealthy.is_ready());
    }
}
