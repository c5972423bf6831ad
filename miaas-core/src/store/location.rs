//! Which database a URL names.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Where the data lives, decided from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite database.
    Sqlite(SqliteTarget),
    /// A PostgreSQL database, by its `postgres://` URL.
    Postgres(String),
}

/// A SQLite database: a file or private memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    /// A file, created on first use.
    File(PathBuf),
    /// An in-memory database that lives as long as the store.
    Memory,
}

impl DatabaseLocation {
    /// A file that belongs with this database, named by `extension`: beside a
    /// SQLite file as `<file>.<extension>`, `miaas.<extension>` in the working
    /// directory for PostgreSQL, none for an in-memory database.
    pub fn companion_file(&self, extension: &str) -> Option<std::path::PathBuf> {
        match self {
            DatabaseLocation::Sqlite(SqliteTarget::Memory) => None,
            DatabaseLocation::Sqlite(SqliteTarget::File(path)) => {
                let mut name = path.file_name().unwrap_or_default().to_os_string();
                name.push(".");
                name.push(extension);
                Some(path.with_file_name(name))
            }
            DatabaseLocation::Postgres(_) => {
                Some(std::path::PathBuf::from(format!("miaas.{extension}")))
            }
        }
    }

    /// The key file of the database at `database_url` when none is configured
    /// (see [`crate::secrets::KeySettings::resolve`]): beside a SQLite file as
    /// `<file>.key`, `miaas.key` in the working directory for PostgreSQL, none for
    /// an in-memory database.
    pub fn default_key_file(database_url: &str) -> Result<Option<PathBuf>> {
        Ok(Self::parse(database_url)?.companion_file("key"))
    }

    /// Parses a database URL (see [`crate::store::connect`] for the accepted forms).
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::DatabaseUrl("the database URL is empty".into()));
        }
        if let Some(rest) = strip_scheme(url, "sqlite") {
            return sqlite_target(rest).map(Self::Sqlite);
        }
        if let Some((scheme, rest)) = url.split_once("://") {
            // SQLAlchemy names a driver after `+`: postgresql+psycopg2://...
            let base = scheme
                .split('+')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if base == "postgres" || base == "postgresql" {
                return Ok(Self::Postgres(format!("postgres://{rest}")));
            }
            return Err(Error::DatabaseUrl(format!(
                "unsupported scheme {scheme:?} (supported: sqlite, postgres, postgresql)"
            )));
        }
        Ok(Self::Sqlite(SqliteTarget::File(PathBuf::from(url))))
    }
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let (head, rest) = url.split_once(':')?;
    head.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// Interprets what follows `sqlite:`. Three slashes are ambiguous between SQLAlchemy
/// (`sqlite:///rel.db` is relative) and sqlx (`sqlite:///abs.db` is absolute): a path
/// starting `./` or `../`, or a file directly under `/`, is read as relative; one
/// whose absolute folder exists is absolute; then one whose relative folder exists
/// is relative; otherwise (folders still to be created) it is absolute when its top
/// folder exists under `/` (`/tmp`, `/var`, ...).
fn sqlite_target(rest: &str) -> Result<SqliteTarget> {
    let rest = rest.split_once('?').map_or(rest, |(path, _)| path);
    if rest == ":memory:" || rest == "//:memory:" {
        return Ok(SqliteTarget::Memory);
    }
    let path = match rest.strip_prefix("//") {
        None => rest.to_string(),
        Some(after) => match after.strip_prefix('/') {
            None => after.to_string(),
            Some(triple) if triple.starts_with('/') => triple.to_string(),
            Some(triple) => {
                let absolute = format!("/{triple}");
                if reads_as_absolute(&absolute) {
                    absolute
                } else {
                    triple.to_string()
                }
            }
        },
    };
    if path.is_empty() {
        return Err(Error::DatabaseUrl("the SQLite URL names no file".into()));
    }
    Ok(SqliteTarget::File(PathBuf::from(path)))
}

fn reads_as_absolute(absolute: &str) -> bool {
    if absolute.starts_with("/./") || absolute.starts_with("/../") {
        return false;
    }
    let absolute = Path::new(absolute);
    let Some(parent) = absolute.parent().filter(|p| *p != Path::new("/")) else {
        return false;
    };
    if parent.is_dir() {
        return true;
    }
    let relative = parent.strip_prefix("/").unwrap_or(parent);
    if relative.is_dir() {
        return false;
    }
    let top = absolute.components().nth(1);
    top.is_some_and(|top| Path::new("/").join(top).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str) -> PathBuf {
        match DatabaseLocation::parse(url).unwrap() {
            DatabaseLocation::Sqlite(SqliteTarget::File(path)) => path,
            other => panic!("{url} gave {other:?}"),
        }
    }

    #[test]
    fn sqlalchemy_relative_form_means_the_relative_file() {
        assert_eq!(
            file("sqlite:///./control_plane.db"),
            PathBuf::from("./control_plane.db")
        );
        assert_eq!(
            file("sqlite:///control_plane.db"),
            PathBuf::from("control_plane.db")
        );
        assert_eq!(
            file("sqlite:////var/lib/miaas.db"),
            PathBuf::from("/var/lib/miaas.db")
        );
    }

    #[test]
    fn sqlx_forms_work() {
        assert_eq!(
            file("sqlite://control_plane.db"),
            PathBuf::from("control_plane.db")
        );
        assert_eq!(file("sqlite:data/x.db"), PathBuf::from("data/x.db"));
        assert_eq!(
            file("sqlite:///tmp/x.db?mode=rwc"),
            PathBuf::from("/tmp/x.db")
        );
        assert_eq!(file("/tmp/plain.db"), PathBuf::from("/tmp/plain.db"));
        // folders still to be created under an existing top folder
        assert_eq!(
            file("sqlite:///tmp/miaas-not-yet/a/x.db"),
            PathBuf::from("/tmp/miaas-not-yet/a/x.db")
        );
        assert_eq!(
            file("sqlite:///no-such-top-folder/x.db"),
            PathBuf::from("no-such-top-folder/x.db")
        );
        assert_eq!(
            DatabaseLocation::parse("sqlite::memory:").unwrap(),
            DatabaseLocation::Sqlite(SqliteTarget::Memory)
        );
    }

    #[test]
    fn postgres_urls_in_every_spelling() {
        for url in [
            "postgres://u:p@localhost/miaas",
            "postgresql://u:p@localhost/miaas",
            "postgresql+psycopg2://u:p@localhost/miaas",
        ] {
            assert_eq!(
                DatabaseLocation::parse(url).unwrap(),
                DatabaseLocation::Postgres("postgres://u:p@localhost/miaas".into())
            );
        }
    }

    #[test]
    fn the_default_key_file_is_beside_a_sqlite_file() {
        let key = |url: &str| DatabaseLocation::default_key_file(url).unwrap();
        assert_eq!(
            key("sqlite:///var/lib/miaas/cp.db"),
            Some(PathBuf::from("/var/lib/miaas/cp.db.key"))
        );
        assert_eq!(
            key("postgres://db.example/miaas"),
            Some(PathBuf::from("miaas.key"))
        );
        assert_eq!(key("sqlite::memory:"), None);
        assert!(DatabaseLocation::default_key_file("").is_err());
    }

    #[test]
    fn unknown_schemes_and_empty_urls_are_refused() {
        assert!(matches!(
            DatabaseLocation::parse("mysql://x"),
            Err(Error::DatabaseUrl(_))
        ));
        assert!(matches!(
            DatabaseLocation::parse(""),
            Err(Error::DatabaseUrl(_))
        ));
        assert!(matches!(
            DatabaseLocation::parse("sqlite://"),
            Err(Error::DatabaseUrl(_))
        ));
    }
}
