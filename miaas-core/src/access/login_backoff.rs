//! Per-account protection of password logins: after a few failures for one
//! username, from any address, each further failure doubles how long that username
//! must wait before its password is checked again. A success resets it. The
//! per-address limit of the server cannot stop a guesser spread over many
//! addresses; this can.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{Error, Result};

/// Failures allowed for one username before it must wait.
pub const FREE_FAILURES: u32 = 5;
/// The first wait, in seconds; each further failure doubles it.
pub const FIRST_WAIT_SECS: f64 = 1.0;
/// The longest wait, in seconds.
pub const MAX_WAIT_SECS: f64 = 300.0;
/// A username not failing for this long (seconds) starts afresh.
const FORGET_AFTER_SECS: f64 = 900.0;
/// Usernames tracked at most (a spray of invented names cannot grow it further).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: f64,
    blocked_until: f64,
}

/// The failures of each username, as epoch seconds of the service's clock.
#[derive(Debug, Default)]
pub struct LoginBackoff {
    accounts: Mutex<HashMap<String, Failures>>,
}

impl LoginBackoff {
    /// `Err(Throttled)` while `username` must wait; checked before the password.
    pub fn check(&self, username: &str, now: f64) -> Result<()> {
        let Ok(accounts) = self.accounts.lock() else {
            return Ok(());
        };
        match accounts.get(username) {
            Some(f) if now < f.blocked_until => {
                let retry_after = (f.blocked_until - now).ceil().max(1.0) as u64;
                Err(Error::Throttled {
                    detail: format!(
                        "Too many failed logins for this user; retry in {retry_after}s"
                    ),
                    retry_after,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a failed login for `username`; returns the wait it now has (seconds).
    pub fn failed(&self, username: &str, now: f64) -> f64 {
        let Ok(mut accounts) = self.accounts.lock() else {
            return 0.0;
        };
        if accounts.len() >= MAX_TRACKED && !accounts.contains_key(username) {
            accounts.retain(|_, f| now - f.last < FORGET_AFTER_SECS);
            if accounts.len() >= MAX_TRACKED {
                return 0.0;
            }
        }
        let entry = accounts.entry(username.to_string()).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: 0.0,
        });
        if now - entry.last >= FORGET_AFTER_SECS {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let wait = wait_after(entry.count);
        entry.blocked_until = now + wait;
        if wait > 0.0 {
            tracing::warn!(
                username,
                failures = entry.count,
                wait_secs = wait,
                "repeated failed logins for one user; backing off"
            );
        }
        wait
    }

    /// A successful login: `username` starts afresh.
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.remove(username);
        }
    }
}

/// The wait after `failures` consecutive failures: none for the first
/// [`FREE_FAILURES`], then 1 s, 2 s, 4 s, ... up to [`MAX_WAIT_SECS`].
fn wait_after(failures: u32) -> f64 {
    if failures < FREE_FAILURES {
        return 0.0;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    (FIRST_WAIT_SECS * f64::from(1u32 << doublings)).min(MAX_WAIT_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_after_the_free_failures_and_a_success_resets() {
        let backoff = LoginBackoff::default();
        let t = 1000.0;
        for _ in 1..FREE_FAILURES {
            assert_eq!(backoff.failed("alice", t), 0.0);
            assert!(backoff.check("alice", t).is_ok());
        }
        assert_eq!(backoff.failed("alice", t), 1.0);
        assert!(matches!(
            backoff.check("alice", t + 0.5),
            Err(Error::Throttled { retry_after: 1, .. })
        ));
        assert!(backoff.check("bob", t).is_ok(), "per user");
        assert!(backoff.check("alice", t + 1.0).is_ok());
        assert_eq!(backoff.failed("alice", t + 1.0), 2.0);
        assert_eq!(backoff.failed("alice", t + 3.0), 4.0);
        backoff.succeeded("alice");
        assert!(backoff.check("alice", t + 3.0).is_ok());
        assert_eq!(backoff.failed("alice", t + 3.0), 0.0);
    }

    #[test]
    fn the_wait_is_capped_and_forgotten_after_a_quiet_while() {
        let backoff = LoginBackoff::default();
        let mut wait = 0.0;
        for _ in 0..40 {
            wait = backoff.failed("alice", 0.0);
        }
        assert_eq!(wait, MAX_WAIT_SECS);
        assert_eq!(backoff.failed("alice", FORGET_AFTER_SECS + 1.0), 0.0);
    }
}
