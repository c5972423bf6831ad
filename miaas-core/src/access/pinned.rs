//! A join token that pins the server's CA, as k3s does: `miaas_join_<secret>`
//! followed by `::sha256:<hex>`, the SHA-256 of the CA certificate (DER) the
//! server presents. An agent joining over HTTPS with such a token fetches the
//! server's CA without verifying it, checks it against the pin, and from then on
//! trusts exactly that CA: a self-signed server is trusted on first contact,
//! and a server in the middle is refused.

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Between the join token and the CA's hash.
pub const PIN_SEPARATOR: &str = "::";

/// The hash algorithm's label, before the hex digits.
const ALGORITHM: &str = "sha256:";

/// The CA hash of a certificate: `sha256:` and the hex SHA-256 of its DER bytes.
pub fn ca_hash(der: &[u8]) -> String {
    format!("{ALGORITHM}{}", hex::encode(Sha256::digest(der)))
}

/// One certificate (DER) as PEM text, base64 in 64-column lines: what
/// `/cacerts` serves and what an agent keeps of the pinned CA.
pub fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A join token with the CA's hash appended.
pub fn pin(join_token: &str, ca_hash: &str) -> String {
    format!("{join_token}{PIN_SEPARATOR}{ca_hash}")
}

/// A join token split into the credential and its CA pin, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct PinnedJoinToken {
    /// What is sent as the bearer credential.
    pub token: String,
    /// `sha256:<hex>` of the CA to trust, when pinned.
    pub ca_hash: Option<String>,
}

impl std::fmt::Debug for PinnedJoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedJoinToken")
            .field("token", &"***")
            .field("ca_hash", &self.ca_hash)
            .finish()
    }
}

impl PinnedJoinToken {
    /// Splits `text`; a pin that is not `sha256:` and 64 hex digits is refused.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let Some((token, pin)) = text.split_once(PIN_SEPARATOR) else {
            return Ok(Self {
                token: text.to_string(),
                ca_hash: None,
            });
        };
        let digits = pin.strip_prefix(ALGORITHM).unwrap_or_default();
        if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!(
                "the join token's CA pin must be {ALGORITHM} and 64 hex digits, after {PIN_SEPARATOR:?}"
            )));
        }
        Ok(Self {
            token: token.to_string(),
            ca_hash: Some(format!("{ALGORITHM}{}", digits.to_ascii_lowercase())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_token_splits_into_token_and_hash() {
        let hash = ca_hash(b"certificate");
        assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64);
        let parsed = PinnedJoinToken::parse(&pin("miaas_join_abc", &hash)).unwrap();
        assert_eq!(parsed.token, "miaas_join_abc");
        assert_eq!(parsed.ca_hash.as_deref(), Some(hash.as_str()));
        let upper = PinnedJoinToken::parse(&pin(
            "miaas_join_abc",
            &hash.to_uppercase().replace("SHA256", "sha256"),
        ))
        .unwrap();
        assert_eq!(upper.ca_hash.as_deref(), Some(hash.as_str()));
    }

    #[test]
    fn a_plain_token_has_no_pin_and_a_bad_pin_is_refused() {
        let plain = PinnedJoinToken::parse(" miaas_join_abc\n").unwrap();
        assert_eq!(plain.token, "miaas_join_abc");
        assert_eq!(plain.ca_hash, None);
        for bad in [
            "miaas_join_abc::md5:00",
            "miaas_join_abc::sha256:xyz",
            "miaas_join_abc::",
        ] {
            assert!(PinnedJoinToken::parse(bad).is_err(), "{bad}");
        }
    }
}
