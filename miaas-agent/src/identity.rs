//! Who this node is to the control plane: its id and token, kept in the state
//! directory (`identity.json`, mode 0600) so that later starts need no join token.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};

/// The node's credentials, as registration handed them out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The server this identity belongs to.
    pub server: String,
    /// The node's name.
    pub name: String,
    /// The node's id.
    pub node_id: String,
    /// The node's token (a secret).
    pub node_token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("server", &self.server)
            .field("name", &self.name)
            .field("node_id", &self.node_id)
            .field("node_token", &"***")
            .finish()
    }
}

/// Where the identity lives in `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("identity.json")
}

impl Identity {
    /// The identity saved in `state_dir`, if any.
    pub fn load(state_dir: &Path) -> Result<Option<Self>> {
        let file = path(state_dir);
        let Some(text) = miaas_core::private_file::read_private(&file)
            .map_err(AgentError::io(format!("cannot read {}", file.display())))?
        else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|err| {
            AgentError::Config(format!(
                "{} is not an identity ({err}); remove it to register again",
                file.display()
            ))
        })
    }

    /// Saves it in `state_dir` (created `0700`), mode `0600`.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        use std::io::Write;
        let file = path(state_dir);
        let failed = AgentError::io(format!("cannot write {}", file.display()));
        miaas_core::private_file::create_dir_all(state_dir).map_err(|err| AgentError::Io {
            context: format!("cannot create {}", state_dir.display()),
            source: err,
        })?;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        let mut out = miaas_core::private_file::overwrite(&file).map_err(failed)?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(AgentError::io(format!("cannot write {}", file.display())))
    }

    /// Forgets it (the node was removed or its token replaced).
    pub fn forget(state_dir: &Path) {
        let _ = std::fs::remove_file(path(state_dir));
    }
}

/// The token this node asks for when it registers without an identity, kept in
/// `state_dir` (`token.pending`, mode 0600) until a registration with it is
/// answered: when an answer is lost, the node registered anyway, and the retry
/// proves with this token that it is that node.
pub fn pending_token(state_dir: &Path) -> Result<String> {
    use std::io::Write;
    let file = state_dir.join("token.pending");
    let kept = miaas_core::private_file::read_private(&file)
        .map_err(AgentError::io(format!("cannot read {}", file.display())))?;
    if let Some(token) = kept.map(|t| t.trim().to_string())
        && miaas_core::token::is_node_token(&token)
    {
        return Ok(token);
    }
    let token = miaas_core::token::generate_node_token();
    let mut out = miaas_core::private_file::overwrite(&file)
        .map_err(AgentError::io(format!("cannot write {}", file.display())))?;
    out.write_all(token.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(AgentError::io(format!("cannot write {}", file.display())))?;
    Ok(token)
}

/// Drops the pending token once a registration was answered.
pub fn clear_pending_token(state_dir: &Path) {
    let _ = std::fs::remove_file(state_dir.join("token.pending"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_saved_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(Identity::load(&state).unwrap(), None);
        let identity = Identity {
            server: "http://cp".into(),
            name: "n1".into(),
            node_id: "id".into(),
            node_token: "mnode_secret".into(),
        };
        identity.save(&state).unwrap();
        assert_eq!(Identity::load(&state).unwrap(), Some(identity.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(&state))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{identity:?}").contains("secret"));
        Identity::forget(&state);
        assert_eq!(Identity::load(&state).unwrap(), None);
    }
}
