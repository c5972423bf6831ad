//! Storage of users, API tokens and cluster secrets (the join token, the access
//! token signing key): the [`AccessStore`] trait and the rows it reads. Both
//! backends implement it once, in `super::tables`.

use async_trait::async_trait;

use crate::model::{ApiTokenInfo, Role, User};
use crate::secrets::Secrets;
use crate::{Error, Result};

/// A user with its password hash, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The user.
    pub user: User,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// An API token's description with its hash, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRecord {
    /// What the API lists.
    pub info: ApiTokenInfo,
    /// SHA-256 of the token.
    pub token_hash: String,
    /// When it was revoked (epoch seconds); revoked tokens are kept so that a use of
    /// one is recognised as such.
    pub revoked_at: Option<f64>,
    /// The user who created it, whose removal revokes it (`None`: created in local
    /// mode or by another API token).
    pub created_by: Option<String>,
}

/// Every user, API token and cluster secret, for `miaas db copy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessDump {
    /// Users, by name.
    pub users: Vec<UserRecord>,
    /// API tokens, revoked ones included, by id.
    pub tokens: Vec<ApiTokenRecord>,
    /// Cluster secrets in clear (each store seals with its own key), by name.
    pub secrets: Vec<(String, String)>,
}

/// Users, API tokens and cluster secrets. Every write is committed before the
/// method returns.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Adds a user; `Conflict` when the name is taken.
    async fn insert_user(&self, user: &UserRecord) -> Result<()>;

    /// Adds `user` only when there is no user at all; whether it was added.
    async fn insert_first_user(&self, user: &UserRecord) -> Result<bool>;

    /// One user with its password hash.
    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>>;

    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>>;

    /// Removes a user and revokes the API tokens it created at `now`; `false` when
    /// there is none. `allowed` is asked first, inside the same transaction, with
    /// the user and the users that would remain: its error refuses the removal and
    /// changes nothing (concurrent removals are judged one after the other).
    async fn delete_user(&self, username: &str, now: f64, allowed: UserRule<'_>) -> Result<bool>;

    /// Replaces a user's password hash; `false` when there is no such user.
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool>;

    /// Adds an API token.
    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()>;

    /// The API token with this hash, revoked or not.
    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>>;

    /// API tokens not revoked, oldest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>>;

    /// Revokes a token at `now`; `false` when no such token is active.
    async fn revoke_api_token(&self, id: &str, now: f64) -> Result<bool>;

    /// A cluster secret in clear.
    async fn cluster_secret(&self, name: &str) -> Result<Option<String>>;

    /// Stores `value` under `name` unless one is already stored; returns the stored
    /// value (so concurrent first starts agree on one).
    async fn init_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<String>;

    /// Replaces a cluster secret (sealed under the current key).
    async fn put_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<()>;

    /// The ids of the keys the cluster secrets are sealed with (every initialized
    /// database has some: the join token and the token signing key).
    async fn sealed_key_ids(&self) -> Result<Vec<String>>;

    /// Everything, for `miaas db copy`.
    async fn export_access(&self) -> Result<AccessDump>;
}

/// A rule over a user to remove and the users that would remain (see
/// [`AccessStore::delete_user`]).
pub type UserRule<'a> = &'a (dyn Fn(&User, &[User]) -> Result<()> + Send + Sync);

/// Seals a cluster secret when the store has keys.
pub(crate) fn seal(secrets: Option<&Secrets>, value: &str) -> Result<String> {
    match secrets {
        Some(secrets) => secrets.seal(value),
        None => Ok(value.to_string()),
    }
}

/// Opens a stored cluster secret.
pub(crate) fn open(secrets: Option<&Secrets>, stored: &str) -> Result<String> {
    match secrets {
        Some(secrets) => secrets.open(stored),
        None if stored.starts_with("enc1:") => Err(Error::Corrupt(
            "a cluster secret is sealed but no key is configured".into(),
        )),
        None => Ok(stored.to_string()),
    }
}

/// A stored role.
pub(crate) fn role(text: &str) -> Result<Role> {
    text.parse()
        .map_err(|_| Error::Corrupt(format!("unknown stored role {text:?}")))
}

/// A user row: name, role, password hash, creation time.
pub(crate) type UserRow = (String, String, String, f64);

/// An API token row: id, name, role, hash, creation time, revocation time, creator.
pub(crate) type TokenRow = (
    String,
    String,
    String,
    String,
    f64,
    Option<f64>,
    Option<String>,
);

pub(crate) fn user_record(
    (username, role_text, password_hash, created_at): UserRow,
) -> Result<UserRecord> {
    Ok(UserRecord {
        user: User {
            username,
            role: role(&role_text)?,
            created_at,
        },
        password_hash,
    })
}

pub(crate) fn token_record(
    (id, name, role_text, token_hash, created_at, revoked_at, created_by): TokenRow,
) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        info: ApiTokenInfo {
            id,
            name,
            role: role(&role_text)?,
            created_at,
        },
        token_hash,
        revoked_at,
        created_by,
    })
}
