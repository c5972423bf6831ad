//! Showing what the first start created: printed once on standard output (not in
//! the log) and written to a 0600 file beside the database.

use std::io::Write;
use std::path::PathBuf;

use miaas_core::service::BootstrapCredentials;
use miaas_core::store::DatabaseLocation;

use crate::config::ServerConfig;
use crate::error::ServerError;

/// Where the credentials file goes: `--credentials-file`, else beside the database.
pub fn credentials_path(config: &ServerConfig) -> Option<PathBuf> {
    config.credentials_file.clone().or_else(|| {
        DatabaseLocation::parse(&config.database_url)
            .ok()?
            .companion_file("credentials")
    })
}

/// Prints `created` once and writes it to the credentials file (mode 0600).
/// With `ca_hash` (serving HTTPS), the join token is also given pinned to the CA.
pub fn announce(
    config: &ServerConfig,
    created: &BootstrapCredentials,
    ca_hash: Option<&str>,
) -> Result<(), ServerError> {
    if created.is_empty() {
        return Ok(());
    }
    let mut lines = Vec::new();
    if let Some((username, password)) = &created.admin {
        lines.push(format!("MIAAS_ADMIN_USERNAME={username}"));
        lines.push(format!("MIAAS_ADMIN_PASSWORD={password}"));
    }
    if let Some(join_token) = &created.join_token {
        lines.push(format!("MIAAS_JOIN_TOKEN={join_token}"));
        if let Some(hash) = ca_hash {
            let pinned = miaas_core::access::pinned::pin(join_token, hash);
            lines.push(format!("MIAAS_JOIN_TOKEN_PINNED={pinned}"));
        }
    }
    let path = credentials_path(config);
    if let Some(path) = &path {
        write_private(path, &lines).map_err(|source| ServerError::Io {
            context: format!("cannot write the credentials file {}", path.display()),
            source,
        })?;
    }
    let saved = path.map_or_else(
        || "not saved: in-memory database".to_string(),
        |p| format!("also written to {} (mode 0600)", p.display()),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "First start: created the credentials below. They are shown only now; {saved}.\n\
         Log in with `miaas login`; register nodes with the join token.\n{}",
        lines
            .iter()
            .map(|line| format!("  {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let _ = out.flush();
    Ok(())
}

fn write_private(path: &std::path::Path, lines: &[String]) -> std::io::Result<()> {
    let mut file = miaas_core::private_file::overwrite(path)?;
    writeln!(
        file,
        "# MIaaS credentials created on first start. Keep private; nothing reads this file."
    )?;
    for line in lines {
        writeln!(file, "{line}")?;
    }
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_written_private_beside_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("cp.db").display());
        let config = ServerConfig::with_database(url);
        let path = credentials_path(&config).unwrap();
        assert_eq!(path, dir.path().join("cp.db.credentials"));
        let created = BootstrapCredentials {
            admin: Some(("admin".into(), "pw-123456789".into())),
            join_token: Some("miaas_join_abc".into()),
        };
        announce(&config, &created, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("MIAAS_ADMIN_PASSWORD=pw-123456789"));
        assert!(text.contains("MIAAS_JOIN_TOKEN=miaas_join_abc"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
