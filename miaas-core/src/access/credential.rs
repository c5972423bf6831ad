//! Random bearer tokens, recognisable by their prefix so that a credential can be
//! routed to the right check (and spotted by secret scanners).

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::token::NODE_TOKEN_PREFIX;

/// Prefix of long-lived API tokens.
pub const API_TOKEN_PREFIX: &str = "miaas_api_";

/// Prefix of the cluster's join token.
pub const JOIN_TOKEN_PREFIX: &str = "miaas_join_";

/// What kind of credential a bearer token is, from its form alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A signed access token (three dot-separated parts).
    AccessToken,
    /// A long-lived API token.
    ApiToken,
    /// The cluster's join token.
    JoinToken,
    /// A node's token.
    NodeToken,
    /// Nothing this server issues.
    Unknown,
}

impl CredentialKind {
    /// Classifies `token` by its form.
    pub fn of(token: &str) -> Self {
        if token.starts_with(API_TOKEN_PREFIX) {
            CredentialKind::ApiToken
        } else if token.starts_with(JOIN_TOKEN_PREFIX) {
            CredentialKind::JoinToken
        } else if token.starts_with(NODE_TOKEN_PREFIX) {
            CredentialKind::NodeToken
        } else if token.split('.').count() == 3 {
            CredentialKind::AccessToken
        } else {
            CredentialKind::Unknown
        }
    }

    /// Whether it is a user's or the cluster's credential (not a node's).
    pub fn is_user_or_cluster(self) -> bool {
        matches!(
            self,
            CredentialKind::AccessToken | CredentialKind::ApiToken | CredentialKind::JoinToken
        )
    }
}

/// 256 random bits, hex, after `prefix`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A random password for generated accounts: 24 characters from an alphabet
/// without look-alikes (about 138 bits).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_prefix() {
        assert_eq!(
            CredentialKind::of(&generate(API_TOKEN_PREFIX)),
            CredentialKind::ApiToken
        );
        assert_eq!(
            CredentialKind::of(&generate(JOIN_TOKEN_PREFIX)),
            CredentialKind::JoinToken
        );
        assert_eq!(
            CredentialKind::of(&crate::token::generate_node_token()),
            CredentialKind::NodeToken
        );
        assert_eq!(CredentialKind::of("a.b.c"), CredentialKind::AccessToken);
        assert_eq!(CredentialKind::of("guess"), CredentialKind::Unknown);
    }

    #[test]
    fn generated_secrets_differ_and_compare() {
        let a = generate_password();
        assert_eq!(a.chars().count(), 24);
        assert_ne!(a, generate_password());
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
