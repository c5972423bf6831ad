//! Passwords, stored only as argon2id hashes (PHC strings with their own salt and
//! parameters).

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::{Error, Result};

/// Hashes `password` with argon2id, a fresh salt and the default parameters. Slow
/// on purpose: call it off the async executor.
pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| Error::Invalid(format!("password cannot be hashed: {err}")))
}

/// Whether `password` matches `stored` (a hash made by [`hash`]). A malformed hash
/// matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A hash of a random password, to verify against when the user does not exist, so
/// that an unknown name takes as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash(&super::credential::generate_password()).unwrap_or_else(|_| String::new())
    })
}

/// Password work (argon2: ~19 MiB and tens of milliseconds each) bounded to one
/// check per core at a time, so that a flood of logins cannot take every core and
/// gigabytes of memory: a login that finds every slot taken is answered `Busy` at
/// once; hashing a new password (admin work) waits for a slot.
#[derive(Debug, Clone)]
pub struct PasswordWork {
    slots: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for PasswordWork {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::with_slots(cores)
    }
}

impl PasswordWork {
    /// At most `slots` password checks or hashes at once.
    pub fn with_slots(slots: usize) -> Self {
        Self {
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(slots.max(1))),
        }
    }

    /// A slot for one password check, taken at once; `Busy` when every slot is
    /// taken. Take it before any other work of a login, so that a flood is turned
    /// away before it costs anything.
    pub fn try_slot(&self) -> Result<PasswordSlot> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map(PasswordSlot)
            .map_err(|_| Error::Busy {
                detail: "Too many logins in progress; retry shortly".into(),
                retry_after: 1,
            })
    }

    /// Hashes `password` off the async executor, waiting for a slot.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Unavailable("password hashing stopped".into()))?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hash(&password)
        })
        .await
        .map_err(|err| Error::Corrupt(format!("password hashing failed: {err}")))?
    }
}

/// One password check's share of the cores ([`PasswordWork::try_slot`]).
#[derive(Debug)]
pub struct PasswordSlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl PasswordSlot {
    /// Whether `password` matches `stored`, checked off the async executor.
    pub async fn verify(self, password: &str, stored: String) -> bool {
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let _slot = self;
            verify(&password, &stored)
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse", &stored));
        assert!(!verify("correct horse", "not a hash"));
        assert_ne!(stored, hash("correct horse").unwrap(), "salted");
        assert!(!verify("anything", decoy_hash()));
    }

    #[tokio::test]
    async fn a_full_pool_answers_busy_at_once() {
        let work = PasswordWork::with_slots(1);
        let stored = hash("pw").unwrap();
        assert!(work.try_slot().unwrap().verify("pw", stored.clone()).await);
        let held = work.try_slot().unwrap();
        assert!(matches!(
            work.try_slot(),
            Err(Error::Busy { retry_after: 1, .. })
        ));
        drop(held);
        assert!(!work.try_slot().unwrap().verify("other", stored).await);
    }
}
