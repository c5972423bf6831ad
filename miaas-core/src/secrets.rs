//! Secrets at rest: deployment environments are sealed (ChaCha20-Poly1305) with a
//! key from configuration or a 0600 key file, and can be re-sealed under a new key.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Prefix of a sealed value: `enc1:<key id>:<hex of nonce and ciphertext>`.
const SEALED_PREFIX: &str = "enc1:";

/// A 256-bit key. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Parses 64 hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| Error::Invalid("a secret key is 64 hex digits (32 bytes)".into()))?;
        Ok(Self(bytes))
    }

    /// The key as 64 hex digits, for a key file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short public id of the key (not secret), recorded beside what it sealed.
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..4])
    }

    /// Reads the key file at `path`; `None` when there is none.
    /// A key file must be the process owner's, not a symbolic link, and readable
    /// by nobody else.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        match crate::private_file::read_private(path) {
            Ok(Some(text)) => Self::parse(&text).map(Some).map_err(|_| {
                Error::Invalid(format!(
                    "the key file {} does not hold a key (64 hex digits)",
                    path.display()
                ))
            }),
            Ok(None) => Ok(None),
            Err(err) => Err(Error::Invalid(format!(
                "cannot use the key file {}: {err}",
                path.display()
            ))),
        }
    }

    /// Writes this key to a new file at `path` (mode 0600). Another process that
    /// created the same file first with the same key is fine; with another key it is
    /// an error (start again to use theirs).
    fn save_new(&self, path: &Path) -> Result<()> {
        match crate::private_file::create_new(path) {
            Ok(mut file) => {
                file.write_all(format!("{}\n", self.to_hex()).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|err| {
                        Error::Invalid(format!("cannot write {}: {err}", path.display()))
                    })?;
                tracing::info!(path = %path.display(), key_id = %self.id(), "generated a new secret key");
                Ok(())
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                match Self::load(path)? {
                    Some(theirs) if &theirs == self => Ok(()),
                    _ => Err(Error::Invalid(format!(
                        "the key file {} was created by another process meanwhile; start again \
                         to use its key",
                        path.display()
                    ))),
                }
            }
            Err(err) => Err(Error::Invalid(format!(
                "cannot create the key file {}: {err}",
                path.display()
            ))),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.0))
    }
}

/// Text that `Debug` never shows (keys given on the command line or in the
/// environment).
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self(text.to_string()))
    }
}

/// Where the keys come from.
#[derive(Debug, Clone, Default)]
pub struct KeySettings {
    /// The key itself (64 hex digits); wins over the key file.
    pub key: Option<Redacted>,
    /// The key file; default: the one the caller gives [`KeySettings::resolve`]
    /// (whoever opens the database decides where it lives). Created (0600) when
    /// missing.
    pub key_file: Option<PathBuf>,
    /// Keys sealed with before a rotation, still accepted for opening.
    pub previous: Vec<Redacted>,
}

impl KeySettings {
    /// The keys, with `default_file` the key file used when none is given (`None`:
    /// no file, e.g. for an in-memory database). When a key or key file is given
    /// and the default key file exists too, the default key still opens what it
    /// sealed (and is re-sealed away from at start-up).
    pub fn resolve(&self, default_file: Option<&Path>) -> Result<Secrets> {
        let key_file = self.key_file.as_deref().or(default_file);
        let (current, unsaved) = match (&self.key, key_file) {
            (Some(key), _) => (SecretKey::parse(&key.0)?, None),
            (None, Some(path)) => match SecretKey::load(path)? {
                Some(key) => (key, None),
                // written only once the database is known to need a new key
                None => (SecretKey::generate(), Some(path.to_path_buf())),
            },
            (None, None) => (SecretKey::generate(), None),
        };
        let mut previous = self
            .previous
            .iter()
            .filter(|k| !k.0.trim().is_empty())
            .map(|k| SecretKey::parse(&k.0))
            .collect::<Result<Vec<_>>>()?;
        if let Some(default) = default_file.map(SecretKey::load).transpose()?.flatten()
            && default != current
            && !previous.contains(&default)
        {
            previous.push(default);
        }
        Ok(Secrets {
            unsaved_key_file: unsaved,
            ..Secrets::new(current, previous)
        })
    }
}

/// The current key, which seals, and previous keys, which still open what they
/// sealed until it is re-sealed.
#[derive(Clone)]
pub struct Secrets {
    current: SecretKey,
    previous: Vec<SecretKey>,
    /// Opened values by their sealed text: a sealed value never changes (a new seal
    /// has a new nonce), and placement re-reads every deployment many times.
    opened: Arc<Mutex<HashMap<String, String>>>,
    /// Where a key generated for this start is to be written, once the database
    /// is known to hold nothing sealed under another key ([`Secrets::settle`]).
    unsaved_key_file: Option<PathBuf>,
}

/// Most opened values kept; past it the cache starts over.
const OPENED_CACHE: usize = 100_000;

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &self.current)
            .field("previous", &self.previous)
            .finish()
    }
}

impl Secrets {
    /// Seals with `current`; opens with it or any of `previous`.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self {
            current,
            previous,
            opened: Arc::default(),
            unsaved_key_file: None,
        }
    }

    /// Checks the keys against the ids of the keys a database's secrets were
    /// sealed with: every one must be configured, or nothing can be read, and a
    /// generated key is then never written (a replica started without the shared
    /// key must be given it, not make its own). When they agree, a generated key is
    /// written to its file.
    pub fn settle(&self, sealed_with: &[String]) -> Result<()> {
        let missing: Vec<&str> = sealed_with
            .iter()
            .map(String::as_str)
            .filter(|id| !self.key_ids().any(|known| known == *id))
            .collect();
        if !missing.is_empty() {
            let given = if self.unsaved_key_file.is_some() {
                "no key was given (and no key file was written)".to_string()
            } else {
                format!("the key given is {}", self.current.id())
            };
            return Err(Error::KeyMismatch(format!(
                "this database's secrets were sealed with key id {}, but {given}. Every replica \
                 and every `miaas` on this database needs the same key: give it as \
                 MIAAS_SECRET_KEY (--secret-key) or in a key file (--secret-key-file, \
                 MIAAS_SECRET_KEY_FILE), copied from the install that created the database",
                missing.join(", ")
            )));
        }
        match &self.unsaved_key_file {
            Some(path) => self.current.save_new(path),
            None => Ok(()),
        }
    }

    fn key_ids(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(SecretKey::id)
    }

    /// The id of the key in a sealed value, if it is one.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored.strip_prefix(SEALED_PREFIX)?.split(':').next()
    }

    /// Seals `plaintext` under the current key.
    pub fn seal(&self, plaintext: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .current
            .cipher()
            .encrypt(&Nonce::from(nonce), plaintext.as_bytes())
            .map_err(|_| Error::Corrupt("sealing failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.current.id(),
            hex::encode(bytes)
        ))
    }

    /// Opens a sealed value; a value that was never sealed is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        if let Some(plain) = self.opened.lock().ok().and_then(|c| c.get(stored).cloned()) {
            return Ok(plain);
        }
        let plain = self.open_uncached(rest)?;
        if let Ok(mut cache) = self.opened.lock() {
            if cache.len() >= OPENED_CACHE {
                cache.clear();
            }
            cache.insert(stored.to_string(), plain.clone());
        }
        Ok(plain)
    }

    fn open_uncached(&self, rest: &str) -> Result<String> {
        let (id, data) = rest
            .split_once(':')
            .ok_or_else(|| Error::Corrupt("malformed sealed value".into()))?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id() == id)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "a secret was sealed with key {id}, which is not configured (give it as a \
                     previous key)"
                ))
            })?;
        let bytes =
            hex::decode(data).map_err(|_| Error::Corrupt("malformed sealed value".into()))?;
        if bytes.len() < 12 {
            return Err(Error::Corrupt("malformed sealed value".into()));
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce
            .try_into()
            .map_err(|_| Error::Corrupt("malformed sealed value".into()))?;
        let plain = key
            .cipher()
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| Error::Corrupt(format!("a secret sealed with key {id} does not open")))?;
        String::from_utf8(plain).map_err(|_| Error::Corrupt("sealed value is not text".into()))
    }

    /// Whether previous keys are configured (a rotation is under way).
    pub fn rotating(&self) -> bool {
        !self.previous.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let secrets = Secrets::new(SecretKey::generate(), vec![]);
        let sealed = secrets.seal(r#"{"PASSWORD":"hunter2"}"#).unwrap();
        assert!(sealed.starts_with("enc1:") && !sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            secrets.seal(r#"{"PASSWORD":"hunter2"}"#).unwrap(),
            "random nonces"
        );
        assert_eq!(secrets.open(&sealed).unwrap(), r#"{"PASSWORD":"hunter2"}"#);
        let stranger = Secrets::new(SecretKey::generate(), vec![]);
        assert!(matches!(stranger.open(&sealed), Err(Error::Corrupt(_))));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(secrets.open(&tampered).is_err());
    }

    #[test]
    fn previous_keys_open_and_plain_values_pass_through() {
        let old = SecretKey::generate();
        let sealed = Secrets::new(old.clone(), vec![]).seal("x").unwrap();
        let rotated = Secrets::new(SecretKey::generate(), vec![old]);
        assert_eq!(rotated.open(&sealed).unwrap(), "x");
        assert!(rotated.rotating());
        assert!(!Secrets::new(SecretKey::generate(), vec![]).rotating());
        assert_eq!(rotated.open("{}").unwrap(), "{}");
    }

    #[test]
    fn settings_default_to_the_key_file_their_caller_gives() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("cp.db.key");
        let default_file = Some(default.as_path());
        let first = KeySettings::default().resolve(default_file).unwrap();
        assert!(!dir.path().join("cp.db.key").exists(), "not before settle");
        first.settle(&[]).unwrap();
        assert!(dir.path().join("cp.db.key").is_file());
        let again = KeySettings::default().resolve(default_file).unwrap();
        assert_eq!(first.open(&again.seal("s").unwrap()).unwrap(), "s");
        let given = KeySettings {
            key: Some(Redacted(SecretKey::generate().to_hex())),
            ..KeySettings::default()
        };
        let explicit = given.resolve(default_file).unwrap();
        assert!(
            explicit.rotating(),
            "the default key stays as a previous key"
        );
        assert_eq!(explicit.open(&first.seal("s").unwrap()).unwrap(), "s");
        let stranger = Secrets::new(SecretKey::generate(), vec![]);
        assert!(stranger.open(&explicit.seal("s").unwrap()).is_err());
        assert_eq!(format!("{:?}", given.key), "Some(\"***\")");
    }

    #[test]
    fn a_database_sealed_with_an_unknown_key_is_refused_and_no_key_file_written() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("cp.db.key");
        let default_file = Some(default.as_path());
        let theirs = SecretKey::generate();
        let sealed = Secrets::new(theirs.clone(), vec![]).seal("x").unwrap();
        let sealed_with = vec![Secrets::key_id_of(&sealed).unwrap().to_string()];
        assert_eq!(sealed_with[0], theirs.id());

        let mine = KeySettings::default().resolve(default_file).unwrap();
        let err = mine.settle(&sealed_with).unwrap_err().to_string();
        assert!(
            err.contains(&theirs.id()) && err.contains("MIAAS_SECRET_KEY"),
            "{err}"
        );
        assert!(!dir.path().join("cp.db.key").exists());

        let given = KeySettings {
            key: Some(Redacted(theirs.to_hex())),
            ..KeySettings::default()
        };
        given
            .resolve(default_file)
            .unwrap()
            .settle(&sealed_with)
            .unwrap();
        assert!(
            !dir.path().join("cp.db.key").exists(),
            "a given key is no file"
        );
    }

    #[test]
    fn key_files_are_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miaas.key");
        assert_eq!(SecretKey::load(&path).unwrap(), None);
        let key = SecretKey::generate();
        key.save_new(&path).unwrap();
        key.save_new(&path).unwrap();
        assert!(SecretKey::generate().save_new(&path).is_err());
        assert_eq!(SecretKey::load(&path).unwrap(), Some(key.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(SecretKey::parse("zz").is_err());
        assert!(!format!("{key:?}").contains(&key.to_hex()));
    }
}
