//! Who may do what: the callers ([`Principal`]), the operations ([`Permission`]) and
//! the one rule that relates them ([`Principal::may`]).
//!
//! Credentials: passwords ([`password`]), signed expiring access tokens
//! ([`jwt`]), and random bearer tokens (API, join and node tokens, [`credential`]).

#[cfg(feature = "server")]
pub mod credential;
#[cfg(feature = "server")]
pub mod jwt;
#[cfg(feature = "server")]
pub mod login_backoff;
#[cfg(feature = "server")]
pub mod password;
pub mod pinned;

use crate::model::{Role, User};
use crate::{Error, Result};

/// An operation that needs permission. Node-protocol calls (heartbeat, desired
/// state, status reports) are not here: only the node itself may make them, and the
/// service checks its token against the node concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Read nodes, deployments (secrets redacted) and their status.
    Read,
    /// Create, update and delete deployments.
    Deploy,
    /// Cordon, uncordon, tag and drain nodes.
    ManageNodes,
    /// Placement dry runs.
    Plan,
    /// Deregister nodes.
    DeregisterNodes,
    /// Manage users and API tokens, show and rotate the join token.
    ManageAccess,
    /// Add, change and remove templates.
    ManageTemplates,
    /// See deployment secrets in clear.
    RevealSecrets,
    /// Register a node (the join token).
    Register,
}

impl Permission {
    /// What it allows, for error messages ("may not <this>").
    pub fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read the cluster",
            Permission::Deploy => "change deployments",
            Permission::ManageNodes => "change nodes",
            Permission::Plan => "run placement plans",
            Permission::DeregisterNodes => "deregister nodes",
            Permission::ManageAccess => "manage users, tokens and the join token",
            Permission::ManageTemplates => "change templates",
            Permission::RevealSecrets => "reveal secrets",
            Permission::Register => "register nodes",
        }
    }

    /// The least role that has it; `None` when no user role has it (registration
    /// needs the join token).
    pub fn least_role(self) -> Option<Role> {
        match self {
            Permission::Read => Some(Role::Viewer),
            Permission::Deploy
            | Permission::ManageNodes
            | Permission::Plan
            | Permission::ManageTemplates => Some(Role::Operator),
            Permission::DeregisterNodes | Permission::ManageAccess | Permission::RevealSecrets => {
                Some(Role::Admin)
            }
            Permission::Register => None,
        }
    }
}

/// What a caller may register ([`Principal::registration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registrar {
    /// Any name, new or existing (an existing one is updated).
    Any,
    /// New names only: an existing name is a conflict.
    NewNamesOnly,
    /// Existing names only (an admin re-registering a node).
    ExistingOnly,
    /// Only the node with this id, under its own name.
    Itself(String),
}

/// Who is calling, as established from its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credential.
    Anonymous,
    /// A user, by password or by the access token a login gave.
    User {
        /// Login name.
        username: String,
        /// The user's role now (read at each request, so changes apply at once).
        role: Role,
    },
    /// A long-lived API token.
    ApiToken {
        /// The token's id.
        id: String,
        /// What it is for.
        name: String,
        /// What it may do.
        role: Role,
    },
    /// A node, by its own token.
    Node {
        /// The node's id.
        node_id: String,
    },
    /// A holder of the cluster's join token: may register nodes, nothing else.
    Joiner,
    /// Authentication is turned off (`--auth off`, loopback only): everything is
    /// allowed, as in the original control plane.
    Unrestricted,
    /// A person at the `miaas` command: in local mode access to the database is
    /// full access, so everything is allowed, but deployment `env` values are shown
    /// in clear only when asked (`--reveal`), whatever a server with authentication
    /// off would answer.
    Console,
}

impl Principal {
    /// The role of a user or API token.
    pub fn role(&self) -> Option<Role> {
        match self {
            Principal::User { role, .. } | Principal::ApiToken { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// Whether it may do `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        match self {
            Principal::Unrestricted | Principal::Console => true,
            Principal::Joiner => permission == Permission::Register,
            Principal::Anonymous | Principal::Node { .. } => false,
            Principal::User { role, .. } | Principal::ApiToken { role, .. } => {
                permission.least_role().is_some_and(|least| *role >= least)
            }
        }
    }

    /// `Ok` when it may do `permission`; otherwise `Unauthorized` for anonymous
    /// callers and `Forbidden` for everyone else.
    pub fn require(&self, permission: Permission) -> Result<()> {
        if self.may(permission) {
            return Ok(());
        }
        match self {
            Principal::Anonymous => Err(Error::Unauthorized(
                "Authentication required: send Authorization: Bearer <token>".into(),
            )),
            other => Err(Error::Forbidden(format!(
                "{} may not {}",
                other.describe(),
                permission.describe()
            ))),
        }
    }

    /// How it may register a node (`POST /api/v1/nodes/register`): anyone with
    /// authentication off registers and re-registers any name; the join token
    /// registers new names only, since whoever holds it must not become an existing
    /// node; a node re-registers only itself, with its current token; an admin
    /// re-registers existing nodes (new nodes join with the join token).
    pub fn registration(&self) -> Result<Registrar> {
        match self {
            Principal::Unrestricted | Principal::Console => Ok(Registrar::Any),
            Principal::User { role, .. } | Principal::ApiToken { role, .. }
                if *role == Role::Admin =>
            {
                Ok(Registrar::ExistingOnly)
            }
            Principal::Joiner => Ok(Registrar::NewNamesOnly),
            Principal::Node { node_id } => Ok(Registrar::Itself(node_id.clone())),
            other => other.require(Permission::Register).map(|()| Registrar::Any),
        }
    }

    /// `Ok` when it may deploy a compose document with host access (`features`
    /// outside what operators may run, from
    /// [`crate::compose::baseline::host_access_of`]): users and API tokens of at least
    /// `least_role` (admin unless the server allows operators), or anyone with
    /// authentication off. The error names the features.
    pub fn require_host_access(&self, least_role: Role, features: &[String]) -> Result<()> {
        let allowed = match self {
            Principal::Unrestricted | Principal::Console => true,
            other => other.role().is_some_and(|role| role >= least_role),
        };
        if allowed || features.is_empty() {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "{} may not deploy a compose document with host access ({}): it needs the {} \
             role (the server's --allow-unsafe-compose sets it)",
            self.describe(),
            features.join("; "),
            least_role
        )))
    }

    /// Whether it may set `username`'s password, and if so whether it must give
    /// the old one: an admin sets anyone's without; a user changes their own with
    /// it; nobody else may (an API token is not its user).
    pub fn may_set_password(&self, username: &str) -> Result<bool> {
        if self.may(Permission::ManageAccess) {
            return Ok(false);
        }
        match self {
            Principal::User { username: own, .. } if own == username => Ok(true),
            Principal::Anonymous => self.require(Permission::ManageAccess).map(|()| false),
            other => Err(Error::Forbidden(format!(
                "{} may not change the password of {username:?}: only an admin, or the \
                 user themself",
                other.describe()
            ))),
        }
    }

    /// Whether deployment `env` values are shown to it in clear: with
    /// authentication off (as in the original), or to an admin who `asked`; asking
    /// without the right is `Forbidden`. Everyone else sees `***`.
    pub fn sees_secrets(&self, asked: bool) -> Result<bool> {
        if *self == Principal::Unrestricted {
            return Ok(true);
        }
        if asked {
            self.require(Permission::RevealSecrets)?;
        }
        Ok(asked)
    }

    /// `deployment` as it is shown to this principal: `env` values as `***` unless
    /// it [sees secrets](Self::sees_secrets) (asking without the right is
    /// `Forbidden`).
    pub fn show(
        &self,
        deployment: crate::model::Deployment,
        asked: bool,
    ) -> Result<crate::model::Deployment> {
        Ok(if self.sees_secrets(asked)? {
            deployment
        } else {
            deployment.redacted()
        })
    }

    /// Whether it may see the audit log (the events of users, API tokens and the
    /// join token): who may manage them.
    pub fn sees_audit_log(&self) -> bool {
        self.require(Permission::ManageAccess).is_ok()
    }

    /// Who it is in the audit log (`user:NAME`, `token:NAME`, `node:ID`,
    /// `join-token`, `console`); `None` for nobody in particular.
    pub fn actor(&self) -> Option<String> {
        match self {
            Principal::User { username, .. } => Some(format!("user:{username}")),
            Principal::ApiToken { name, .. } => Some(format!("token:{name}")),
            Principal::Node { node_id } => Some(format!("node:{node_id}")),
            Principal::Joiner => Some("join-token".into()),
            Principal::Console => Some("console".into()),
            Principal::Anonymous | Principal::Unrestricted => None,
        }
    }

    /// Who it is, for messages (never a credential).
    pub fn describe(&self) -> String {
        match self {
            Principal::Anonymous => "an anonymous caller".into(),
            Principal::User { username, role } => format!("user {username:?} ({role})"),
            Principal::ApiToken { name, role, .. } => format!("API token {name:?} ({role})"),
            Principal::Node { node_id } => format!("node {node_id}"),
            Principal::Joiner => "the join token".into(),
            Principal::Unrestricted => "anyone".into(),
            Principal::Console => "the miaas command".into(),
        }
    }
}

/// An install always keeps an admin: removing the last one is a `Conflict`.
pub fn keeps_an_admin(removed: &User, remaining: &[User]) -> Result<()> {
    let last = removed.role == Role::Admin && !remaining.iter().any(|u| u.role == Role::Admin);
    if last {
        return Err(Error::Conflict(format!(
            "{:?} is the last admin; create another admin first",
            removed.username
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Principal {
        Principal::User {
            username: "u".into(),
            role,
        }
    }

    #[test]
    fn roles_include_the_ones_below() {
        let viewer = user(Role::Viewer);
        let operator = user(Role::Operator);
        let admin = user(Role::Admin);
        assert!(viewer.may(Permission::Read) && !viewer.may(Permission::Deploy));
        assert!(operator.may(Permission::Deploy) && operator.may(Permission::Plan));
        assert!(!operator.may(Permission::DeregisterNodes));
        assert!(!operator.may(Permission::RevealSecrets));
        assert!(admin.may(Permission::ManageAccess) && admin.may(Permission::RevealSecrets));
        assert!(
            !admin.may(Permission::Register),
            "nodes join with the join token"
        );
    }

    #[test]
    fn nodes_joiners_and_anonymous_callers_get_nothing_else() {
        let node = Principal::Node {
            node_id: "n".into(),
        };
        assert!(!node.may(Permission::Read));
        assert!(Principal::Joiner.may(Permission::Register));
        assert!(!Principal::Joiner.may(Permission::Read));
        assert!(matches!(
            Principal::Anonymous.require(Permission::Read),
            Err(Error::Unauthorized(_))
        ));
        assert!(matches!(
            node.require(Permission::Read),
            Err(Error::Forbidden(_))
        ));
        assert!(Principal::Unrestricted.may(Permission::RevealSecrets));
    }

    #[test]
    fn only_admins_and_the_node_itself_may_register_an_existing_name() {
        assert_eq!(
            user(Role::Admin).registration().unwrap(),
            Registrar::ExistingOnly
        );
        assert_eq!(
            Principal::Unrestricted.registration().unwrap(),
            Registrar::Any
        );
        assert_eq!(
            Principal::Joiner.registration().unwrap(),
            Registrar::NewNamesOnly
        );
        let node = Principal::Node {
            node_id: "n".into(),
        };
        assert_eq!(node.registration().unwrap(), Registrar::Itself("n".into()));
        assert!(matches!(
            user(Role::Operator).registration(),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            Principal::Anonymous.registration(),
            Err(Error::Unauthorized(_))
        ));
    }

    #[test]
    fn host_access_needs_the_configured_role() {
        let features = vec!["services.a: privileged".to_string()];
        assert!(
            user(Role::Admin)
                .require_host_access(Role::Admin, &features)
                .is_ok()
        );
        let refused = user(Role::Operator)
            .require_host_access(Role::Admin, &features)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("services.a: privileged"), "{refused}");
        assert!(
            user(Role::Operator)
                .require_host_access(Role::Operator, &features)
                .is_ok()
        );
        assert!(
            user(Role::Operator)
                .require_host_access(Role::Admin, &[])
                .is_ok()
        );
        assert!(
            Principal::Unrestricted
                .require_host_access(Role::Admin, &features)
                .is_ok()
        );
    }

    #[test]
    fn secrets_show_to_admins_who_ask_and_with_authentication_off() {
        let admin = user(Role::Admin);
        assert!(!admin.sees_secrets(false).unwrap(), "not unless asked");
        assert!(admin.sees_secrets(true).unwrap());
        assert!(matches!(
            user(Role::Operator).sees_secrets(true),
            Err(Error::Forbidden(_))
        ));
        assert!(!user(Role::Viewer).sees_secrets(false).unwrap());
        assert!(Principal::Unrestricted.sees_secrets(false).unwrap());
        // the miaas command may do anything, but shows secrets only when asked
        assert!(!Principal::Console.sees_secrets(false).unwrap());
        assert!(Principal::Console.sees_secrets(true).unwrap());
        assert!(Principal::Console.may(Permission::RevealSecrets));
    }
}
