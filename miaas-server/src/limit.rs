//! Failed authentication is rate-limited per client address (an IPv6 client by its
//! /64): past a number of failed attempts in a window, further *failing* attempts
//! from that address are answered `429` with `Retry-After` until the window ends.
//! A valid credential is always served, whoever else shares the address (a load
//! balancer, a NAT): the credential is checked first (which costs no I/O), and only
//! a `401` is counted or turned into a `429`. Password logins are the exception:
//! their check is deliberately slow, so a blocked address is refused before it;
//! they are counted apart from guessed tokens, so that neither kind of flood
//! refuses the other kind of caller.
//! A login is counted before its password is checked and taken back when it
//! succeeds. A credential this server issued that has expired or was revoked is
//! not a guess and is not counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::client_addr::ClientAddr;
use crate::error::{ApiError, ExpiredCredential};

/// The password login, whose failures count although it carries no credential.
const LOGIN_PATH: &str = "/api/v1/auth/token";

/// Routes never limited: health and the documentation.
const OPEN_PATHS: [&str; 3] = ["/", "/health", "/openapi.json"];
const OPEN_PREFIXES: [&str; 2] = ["/docs", "/redoc"];

/// Client addresses tracked at most; past it, new addresses share one count.
const MAX_TRACKED: usize = 100_000;

/// Who failures are counted for: an address (IPv6 by its /64), or every address
/// that found the table full.
type ClientKey = Option<IpAddr>;

#[derive(Debug)]
struct FailureTable {
    counts: HashMap<ClientKey, (u32, Instant)>,
    pruned_at: Instant,
}

/// Counts failed authentications per client address.
#[derive(Debug, Clone)]
pub struct AuthFailureLimiter {
    max_failures: u32,
    window: Duration,
    table: Arc<Mutex<FailureTable>>,
}

impl AuthFailureLimiter {
    /// Allows `max_failures` failed authentications per address per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            table: Arc::new(Mutex::new(FailureTable {
                counts: HashMap::new(),
                pruned_at: Instant::now(),
            })),
        }
    }

    /// Seconds until `ip` may try again, when it has used up its failures.
    fn blocked_for(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let table = self.table.lock().ok()?;
        let key = key_of(ip);
        let (count, since) = table.counts.get(&key).or_else(|| table.counts.get(&None))?;
        self.wait(*count >= self.max_failures, *since, now)
    }

    /// Counts an attempt of `ip` as failed until [`Self::refund`]ed; refuses it
    /// (with the seconds to wait) when `ip` has no failures left.
    fn begin_attempt(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        if let Some(retry_after) = self.blocked_for(ip, now) {
            return Some(retry_after);
        }
        self.record_failure(ip, now);
        None
    }

    /// Takes back an attempt [`Self::begin_attempt`] counted: it did not fail.
    fn refund(&self, ip: IpAddr) {
        if let Ok(mut table) = self.table.lock()
            && let Some(entry) = table.counts.get_mut(&key_of(ip))
        {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// The rest of the window from `since`, when `over` and the window still runs.
    fn wait(&self, over: bool, since: Instant, now: Instant) -> Option<u64> {
        let elapsed = now.duration_since(since);
        (over && elapsed < self.window).then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Counts a failure of `ip`; returns the seconds to wait when it is now over
    /// the limit.
    fn record_failure(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut table = self.table.lock().ok()?;
        if now.duration_since(table.pruned_at) >= self.window {
            let window = self.window;
            table
                .counts
                .retain(|_, (_, since)| now.duration_since(*since) < window);
            table.pruned_at = now;
        }
        let mut key = key_of(ip);
        if table.counts.len() >= MAX_TRACKED && !table.counts.contains_key(&key) {
            key = None;
        }
        let entry = table.counts.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        let (count, since) = *entry;
        self.wait(count > self.max_failures, since, now)
    }
}

/// An IPv4 address, or the /64 network of an IPv6 one (one customer's allocation).
fn key_of(ip: IpAddr) -> ClientKey {
    Some(match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    })
}

fn too_many(retry_after: u64) -> Response {
    ApiError::too_many(
        format!("Too many failed authentication attempts; retry in {retry_after}s"),
        retry_after,
    )
    .into_response()
}

/// The limits of an address: guessed tokens and failed password logins are
/// counted apart, so that a flood of bad tokens never refuses a login (and the
/// other way round).
#[derive(Debug, Clone)]
pub struct AuthLimits {
    tokens: AuthFailureLimiter,
    logins: AuthFailureLimiter,
}

impl AuthLimits {
    /// `max_failures` of each kind per address per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            tokens: AuthFailureLimiter::new(max_failures, window),
            logins: AuthFailureLimiter::new(max_failures, window),
        }
    }
}

/// The middleware: counts the `401` answers to authentication attempts and, past
/// the limit, answers them `429` instead.
pub async fn limit_auth_failures(
    State(limits): State<AuthLimits>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if OPEN_PATHS.contains(&path) || OPEN_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return next.run(request).await;
    }
    let login = path == LOGIN_PATH;
    let authenticating = login || request.headers().contains_key(header::AUTHORIZATION);
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|c| c.0)
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip())
        });
    let Some(ip) = client.filter(|_| authenticating) else {
        return next.run(request).await;
    };
    if login {
        let limiter = &limits.logins;
        // counted before the (slow) password check, so that a flood of concurrent
        // logins is refused past the limit instead of all being checked at once
        if let Some(retry_after) = limiter.begin_attempt(ip, Instant::now()) {
            return too_many(retry_after);
        }
        let response = next.run(request).await;
        let failed = matches!(
            response.status(),
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        );
        if !failed {
            limiter.refund(ip);
        }
        return response;
    }
    let response = next.run(request).await;
    let expired = response.extensions().get::<ExpiredCredential>().is_some();
    if response.status() == StatusCode::UNAUTHORIZED
        && !expired
        && let Some(retry_after) = limits.tokens.record_failure(ip, Instant::now())
    {
        return too_many(retry_after);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_limited_after_too_many_failures_until_the_window_ends() {
        let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.record_failure(ip, t0), None);
        }
        assert_eq!(
            limiter.blocked_for(ip, t0),
            Some(60),
            "3 failures are used up"
        );
        assert_eq!(
            limiter.record_failure(ip, t0),
            Some(60),
            "the 4th is refused"
        );
        assert_eq!(
            limiter.blocked_for(ip, t0 + Duration::from_secs(10)),
            Some(50)
        );
        assert_eq!(limiter.blocked_for(other, t0), None, "per address");
        assert_eq!(limiter.blocked_for(ip, t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn logins_count_before_they_run_and_successes_are_taken_back() {
        let limiter = AuthFailureLimiter::new(2, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(limiter.begin_attempt(ip, t0), None);
        assert_eq!(limiter.begin_attempt(ip, t0), None);
        assert_eq!(limiter.begin_attempt(ip, t0), Some(60), "two in flight");
        limiter.refund(ip);
        assert_eq!(limiter.begin_attempt(ip, t0), None, "one succeeded");
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let limiter = AuthFailureLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.record_failure(a, t0), None);
        assert!(limiter.record_failure(b, t0).is_some(), "same /64");
        assert_eq!(limiter.record_failure(elsewhere, t0), None);
    }

    #[test]
    fn a_full_table_counts_new_addresses_together() {
        let limiter = AuthFailureLimiter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED as u32 {
            limiter.record_failure(IpAddr::from(i.to_be_bytes()), t0);
        }
        let new = |n: u8| IpAddr::from([250, 0, 0, n]);
        assert_eq!(limiter.record_failure(new(1), t0), None);
        assert_eq!(limiter.record_failure(new(2), t0), None);
        assert!(limiter.record_failure(new(3), t0).is_some());
        assert_eq!(
            limiter.table.lock().unwrap().counts.len(),
            MAX_TRACKED + 1,
            "bounded"
        );
    }
}
