//! Database URLs as configuration holds them: the password never reaches a log
//! line, an error message or `Debug` output.

use std::fmt;

/// A database URL whose `Debug` and `Display` hide its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL itself, password included: for connecting only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self(url.to_string())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(url.into())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `url` with its password replaced by `***`, whether it is given as
/// `user:password@host` or as a `password=` query parameter (libpq's form).
pub fn redact_url(url: &str) -> String {
    let mut text = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    };
    if let Some(query_start) = text.find('?') {
        let (base, query) = text.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        text = format!("{base}{}", query.join("&"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://miaas:s3cret@db:5432/miaas"),
            "postgres://miaas:***@db:5432/miaas"
        );
        assert_eq!(
            redact_url("postgres://db/miaas?user=miaas&password=s3cret&sslmode=require"),
            "postgres://db/miaas?user=miaas&password=***&sslmode=require"
        );
        assert_eq!(redact_url("postgres://db/miaas"), "postgres://db/miaas");
        assert_eq!(
            redact_url("sqlite://control_plane.db"),
            "sqlite://control_plane.db"
        );
        let url = DatabaseUrl::from("postgresql://u:hunter2@h/d?password=hunter2");
        for shown in [format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(url.as_str().contains("hunter2"), "connecting still can");
    }
}
