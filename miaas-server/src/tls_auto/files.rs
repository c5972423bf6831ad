//! --tls auto's files: a private folder, files written whole under a random name
//! and moved or linked into place (replicas sharing the folder never see half a
//! file, and the first to link a file wins).

use std::path::Path;
use std::time::Duration;

use super::tls_error;
use crate::error::ServerError;

pub(super) fn io_error(path: &Path, what: &str, source: std::io::Error) -> ServerError {
    ServerError::Io {
        context: format!("{what} {}", path.display()),
        source,
    }
}

/// Creates `dir` `0700` (or makes it so).
pub(super) fn private_dir(dir: &Path) -> Result<(), ServerError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder
            .create(dir)
            .map_err(|err| io_error(dir, "cannot create the TLS folder", err))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|err| io_error(dir, "cannot make private the TLS folder", err))?;
    }
    #[cfg(not(unix))]
    builder
        .create(dir)
        .map_err(|err| io_error(dir, "cannot create the TLS folder", err))?;
    Ok(())
}

pub(super) fn read(path: &Path) -> Result<Option<String>, ServerError> {
    miaas_core::private_file::read_private(path).map_err(|err| io_error(path, "cannot read", err))
}

/// Waits a little for `path`, which a replica starting at the same time is
/// writing.
pub(super) fn wait_for(path: &Path) -> Result<String, ServerError> {
    for _ in 0..100 {
        if let Some(text) = read(path)? {
            return Ok(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(tls_error(format!(
        "{} is missing beside its key: remove the folder's files to start a new CA",
        path.display()
    )))
}

/// A temporary file of a random name beside `path`, holding `text` (mode
/// `0600`, created exclusively: replicas sharing the folder never write or
/// remove each other's).
fn staged(path: &Path, text: &str) -> Result<tempfile::NamedTempFile, ServerError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    let mut file = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|err| io_error(path, "cannot write beside", err))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .map_err(|err| io_error(path, "cannot write beside", err))?;
    Ok(file)
}

/// Writes `text` to `path` unless it exists; answers what `path` holds then.
pub(super) fn create_if_absent(path: &Path, text: &str) -> Result<String, ServerError> {
    match staged(path, text)?.persist_noclobber(path) {
        Ok(_) => Ok(text.to_string()),
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => wait_for(path),
        Err(err) => Err(io_error(path, "cannot write", err.error)),
    }
}

/// Replaces `path` with `text` at once (readers see the old or the new file).
pub(super) fn replace(path: &Path, text: &str) -> Result<(), ServerError> {
    staged(path, text)?
        .persist(path)
        .map(|_| ())
        .map_err(|err| io_error(path, "cannot write", err.error))
}
