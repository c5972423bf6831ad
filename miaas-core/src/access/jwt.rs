//! Signed, expiring access tokens (JWT, HS256) handed out by a password login.
//!
//! The signing key is random, stored sealed in the database (so every replica
//! shares it) and never leaves the server.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::model::Role;
use crate::{Error, Result};

/// Issuer and audience written into every token.
const ISSUER: &str = "miaas";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's login name.
    pub sub: String,
    /// The user's role when the token was issued (the role in force is read from
    /// the database at each request).
    pub role: Role,
    /// Issued at (epoch seconds).
    pub iat: u64,
    /// Expires at (epoch seconds).
    pub exp: u64,
    /// Always `miaas`.
    pub iss: String,
    /// The user's token epoch when it was issued ([`token_epoch`]): a token of a
    /// user since removed and created again, or whose password changed since,
    /// does not match any more.
    #[serde(default)]
    pub epoch: String,
}

/// A user's token epoch: a fingerprint of their stored password hash, which is
/// salted afresh whenever a user is created or their password is set, so it
/// changes exactly when earlier access tokens must stop working. It tells nothing
/// of the password (the salt is not in it).
pub fn token_epoch(password_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..8])
}

/// The key that signs and checks access tokens. `Debug` never shows it.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// The key from its stored form (hex).
    pub fn from_hex(text: &str) -> Result<Self> {
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|b| b.len() >= 32)
            .ok_or_else(|| Error::Corrupt("the stored token signing key is malformed".into()))?;
        Ok(Self {
            encoding: EncodingKey::from_secret(&bytes),
            decoding: DecodingKey::from_secret(&bytes),
        })
    }

    /// A fresh random key in its stored form.
    pub fn generate_hex() -> String {
        super::credential::generate("")
    }

    /// A token for `username` with `role`, valid from `now` for `ttl_secs`.
    pub fn issue(
        &self,
        username: &str,
        role: Role,
        epoch: &str,
        now: u64,
        ttl_secs: u64,
    ) -> Result<String> {
        let claims = Claims {
            sub: username.to_string(),
            role,
            iat: now,
            exp: now.saturating_add(ttl_secs),
            iss: ISSUER.into(),
            epoch: epoch.to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|err| Error::Corrupt(format!("cannot sign an access token: {err}")))
    }

    /// The claims of `token` when its signature is ours and it has not expired at
    /// `now` (no leeway: expiry takes effect at once).
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        // checked below against the caller's clock, which tests can move
        validation.validate_exp = false;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| Error::Unauthorized("Invalid access token".into()))?
            .claims;
        if claims.exp <= now {
            return Err(Error::Unauthorized(
                "The access token has expired; log in again".into(),
            ));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_only_with_their_key() {
        let key = SigningKey::from_hex(&SigningKey::generate_hex()).unwrap();
        let epoch = token_epoch("$argon2id$v=19$m=19456,t=2,p=1$salt$hash");
        let token = key
            .issue("alice", Role::Operator, &epoch, 1_000, 60)
            .unwrap();
        let claims = key.verify(&token, 1_030).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.role, claims.epoch.as_str()),
            ("alice", Role::Operator, epoch.as_str())
        );
        assert_ne!(
            epoch,
            token_epoch("$argon2id$v=19$m=19456,t=2,p=1$other$hash")
        );
        assert!(matches!(
            key.verify(&token, 1_060),
            Err(Error::Unauthorized(_))
        ));
        let other = SigningKey::from_hex(&SigningKey::generate_hex()).unwrap();
        assert!(other.verify(&token, 1_030).is_err());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(key.verify(&tampered, 1_030).is_err());
        assert!(SigningKey::from_hex("abc").is_err());
        assert_eq!(format!("{key:?}"), "SigningKey(***)");
    }
}
