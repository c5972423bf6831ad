//! Files that hold secrets (the SQLite database and its `-wal` / `-shm`, the key
//! file, the credentials file, the CLI's saved logins): only their owner may read
//! them. Files are created `0600` and folders `0700`, whatever the umask. A path
//! that is a symbolic link, or a file another user owns, is never written or
//! trusted: someone who can plant either could otherwise read what is written, or
//! choose the key.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// Creates `path` for writing, mode `0600`, and its missing folders `0700`; fails
/// when it exists (a symbolic link included, dangling or not).
pub fn create_new(path: &Path) -> io::Result<File> {
    create_parent(path)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    options.open(path)
}

/// Opens `path` for writing from empty, creating it (and its missing folders,
/// `0700`); mode `0600` either way (a file that existed keeps its mode on open, so
/// it is made private too). Refuses a symbolic link and a file another user owns.
pub fn overwrite(path: &Path) -> io::Result<File> {
    create_parent(path)?;
    let mut options = OpenOptions::new();
    // truncation waits until the file is known to be ours
    options.write(true).create(true);
    private_mode(&mut options);
    let file = options.open(path).map_err(|err| explain_link(path, err))?;
    check_owner(path, &file)?;
    file.set_len(0)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

/// Reads the secret file at `path`; `None` when there is none. Refuses a symbolic
/// link, a file another user owns, and a file that group or others may read.
pub fn read_private(path: &Path) -> io::Result<Option<String>> {
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(explain_link(path, err)),
    };
    check_owner(path, &file)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} may be read by other users (mode {:o}): make it private with \
                     `chmod 600 {}`",
                    path.display(),
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Creates the folder `dir` and its missing parents, each created one `0700`.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the missing folders above `path`, each `0700`.
fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => create_dir_all(dir),
        _ => Ok(()),
    }
}

/// Takes group and other permissions away from `path` when it exists and has
/// them; returns whether it changed anything.
pub fn restrict(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(meta) => meta.permissions().mode(),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            return Ok(true);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(false)
}

/// Sets mode `0600` for a file `options` creates, and refuses a symbolic link.
pub(crate) fn private_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    no_follow(options);
}

/// Opening fails (`ELOOP`) when the last component of the path is a symbolic link.
fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let flag = rustix::fs::OFlags::NOFOLLOW.bits();
        options.custom_flags(i32::try_from(flag).unwrap_or_default());
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// A clearer error for a path that is a symbolic link.
fn explain_link(path: &Path, err: io::Error) -> io::Error {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symbolic link; secrets are never written through or read from one",
                path.display()
            ),
        )
    } else {
        err
    }
}

fn check_owner(path: &Path, file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let owner = file.metadata()?.uid();
        let me = rustix::process::geteuid().as_raw();
        if owner != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} belongs to another user (uid {owner}); secrets are never kept in \
                     another user's file",
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, file);
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_are_private_whatever_existed() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);

        let new = nested.join("new");
        create_new(&new).unwrap();
        assert_eq!(mode(&new), 0o600);
        let deeper = dir.path().join("c/d/file");
        create_new(&deeper).unwrap();
        assert_eq!(mode(&deeper), 0o600);
        assert_eq!(mode(&dir.path().join("c")), 0o700);
        assert_eq!(mode(&dir.path().join("c/d")), 0o700);
        overwrite(&dir.path().join("e/file")).unwrap();
        assert_eq!(mode(&dir.path().join("e")), 0o700);
        assert!(create_new(&new).is_err(), "never reuses a file");

        let shared = nested.join("shared");
        std::fs::write(&shared, "x").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
        overwrite(&shared).unwrap();
        assert_eq!(mode(&shared), 0o600);
        assert_eq!(std::fs::read(&shared).unwrap(), b"");

        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(restrict(&shared).unwrap());
        assert_eq!(mode(&shared), 0o600);
        assert!(!restrict(&shared).unwrap());
        assert!(!restrict(&nested.join("missing")).unwrap());
    }

    #[test]
    fn symbolic_links_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep me").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = overwrite(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(create_new(&link).is_err());
        assert!(read_private(&link).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(create_new(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn a_secret_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        assert_eq!(read_private(&key).unwrap(), None);
        std::fs::write(&key, "secret").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&key).unwrap().as_deref(), Some("secret"));
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_private(&key).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}
