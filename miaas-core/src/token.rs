//! Node tokens: random secrets handed out once and stored only as hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a node token recognisable in logs and secret scanners.
pub const NODE_TOKEN_PREFIX: &str = "mnode_";

/// A fresh node token: 256 random bits, hex-encoded, with [`NODE_TOKEN_PREFIX`].
pub fn generate_node_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{NODE_TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// Whether `token` has the form of [`generate_node_token`]'s tokens (so that one
/// an agent chose for itself carries as much entropy).
pub fn is_node_token(token: &str) -> bool {
    token.strip_prefix(NODE_TOKEN_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The form a token is stored and looked up in (SHA-256, hex). A fast hash is right
/// here: the token carries 256 bits of entropy, so there is nothing to brute-force.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_long_and_hash_stably() {
        let a = generate_node_token();
        let b = generate_node_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), NODE_TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), hash_token(&b));
        assert_ne!(hash_token(&a), a);
    }
}
