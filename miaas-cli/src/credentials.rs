//! Saved logins: the access token `miaas login` got, per server, in
//! `$XDG_CONFIG_HOME/miaas/credentials.json` (else `~/.config/miaas/...`), mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// One server's saved login. Its `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedLogin {
    /// Who logged in.
    pub username: String,
    /// The access token.
    pub access_token: String,
    /// When it expires (epoch seconds).
    pub expires_at: f64,
}

impl std::fmt::Debug for SavedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedLogin")
            .field("username", &self.username)
            .field("expires_at", &self.expires_at)
            .field("access_token", &"***")
            .finish()
    }
}

/// Saved logins by server URL.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SavedLogins {
    servers: BTreeMap<String, SavedLogin>,
}

/// The server URL as logins are keyed: with a scheme, without a trailing `/`.
pub fn server_key(server: &str) -> String {
    let server = server.trim().trim_end_matches('/');
    if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    }
}

fn path() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("miaas").join("credentials.json"))
}

fn read() -> SavedLogins {
    path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

fn write(logins: &SavedLogins) -> Result<PathBuf> {
    let path = path().ok_or_else(|| {
        CliError::Failed("cannot save the login: neither XDG_CONFIG_HOME nor HOME is set".into())
    })?;
    let failed = |err: std::io::Error| {
        CliError::Failed(format!(
            "cannot save the login in {}: {err}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent() {
        miaas_core::private_file::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_string_pretty(logins)
        .map_err(|err| CliError::Failed(format!("cannot save the login: {err}")))?;
    let mut file = miaas_core::private_file::overwrite(&path).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    Ok(path)
}

/// The saved access token for `server`, unless it has expired at `now`.
pub fn token_for(server: &str, now: f64) -> Option<String> {
    read()
        .servers
        .remove(&server_key(server))
        .filter(|login| login.expires_at > now)
        .map(|login| login.access_token)
}

/// Saves `login` for `server`; returns the file.
pub fn save(server: &str, login: SavedLogin) -> Result<PathBuf> {
    let mut logins = read();
    logins.servers.insert(server_key(server), login);
    write(&logins)
}

/// Forgets the login for `server`; whether there was one.
pub fn forget(server: &str) -> Result<bool> {
    let mut logins = read();
    let had = logins.servers.remove(&server_key(server)).is_some();
    if had {
        write(&logins)?;
    }
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_keyed_with_a_scheme_and_no_trailing_slash() {
        assert_eq!(server_key("cp:8080/"), "http://cp:8080");
        assert_eq!(server_key("https://cp.example/"), "https://cp.example");
    }
}
