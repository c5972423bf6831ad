//! Who is calling, logins, users, API tokens, the join token and the first start.

use uuid::Uuid;

use super::Service;
use crate::access::credential::{self, API_TOKEN_PREFIX, CredentialKind, JOIN_TOKEN_PREFIX};
use crate::access::jwt::{self, SigningKey};
use crate::access::{Principal, password};
use crate::model::{
    AccessToken, ApiTokenInfo, CreatedApiToken, CreatedUser, Event, JoinToken, LoginRequest,
    NewUser, PasswordChange, Role, TokenRequest, User, validate_password,
};
use crate::store::{ApiTokenRecord, UserRecord};
use crate::token::hash_token;
use crate::{Error, Result};

/// Name of the cluster secret holding the join token.
const JOIN_TOKEN: &str = "join_token";
/// Name of the cluster secret holding the access token signing key.
const SIGNING_KEY: &str = "access_token_signing_key";
/// The admin created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// What a first start created; shown once, never stored in clear. Its `Debug`
/// hides the password and the token.
#[derive(Clone, Default, PartialEq)]
pub struct BootstrapCredentials {
    /// The admin user's name and password, when the database had no user.
    pub admin: Option<(String, String)>,
    /// The join token, when the database had none.
    pub join_token: Option<String>,
}

impl BootstrapCredentials {
    /// Whether anything was created.
    pub fn is_empty(&self) -> bool {
        self.admin.is_none() && self.join_token.is_none()
    }
}

fn unauthorized(detail: &str) -> Error {
    Error::Unauthorized(detail.to_string())
}

impl std::fmt::Debug for BootstrapCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapCredentials")
            .field("admin", &self.admin.as_ref().map(|(name, _)| (name, "***")))
            .field("join_token", &self.join_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Service {
    /// On a database without users or join token: creates the `admin` user with a
    /// random password, the join token and the token signing key. Safe to call on
    /// every start and from several replicas at once: only one creates each.
    pub async fn bootstrap(&self) -> Result<BootstrapCredentials> {
        let mut created = BootstrapCredentials::default();
        let now = self.now();
        self.fleet.access_written(
            self.store
                .access()
                .init_cluster_secret(SIGNING_KEY, &SigningKey::generate_hex(), now)
                .await,
        )?;
        let join = credential::generate(JOIN_TOKEN_PREFIX);
        if self.fleet.access_written(
            self.store
                .access()
                .init_cluster_secret(JOIN_TOKEN, &join, now)
                .await,
        )? == join
        {
            created.join_token = Some(join);
        }
        if !self.store.access().list_users().await?.is_empty() {
            return Ok(created);
        }
        let admin_password = credential::generate_password();
        let record = UserRecord {
            user: User {
                username: BOOTSTRAP_ADMIN.into(),
                role: Role::Admin,
                created_at: now,
            },
            password_hash: self.password_work.hash(&admin_password).await?,
        };
        if self
            .fleet
            .access_written(self.store.access().insert_first_user(&record).await)?
        {
            tracing::info!(username = BOOTSTRAP_ADMIN, "created the first admin user");
            created.admin = Some((BOOTSTRAP_ADMIN.into(), admin_password));
        }
        Ok(created)
    }

    /// Who presents `bearer`: anonymous without one; a user (access token), an API
    /// token, the join token's holder or a node. A credential that matches nothing
    /// is `Unauthorized`; one that matched once but no longer does (expired,
    /// revoked, its user removed) is `Expired`.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<Principal> {
        let Some(token) = bearer else {
            return Ok(Principal::Anonymous);
        };
        match CredentialKind::of(token) {
            CredentialKind::AccessToken => self.user_of_access_token(token).await,
            CredentialKind::ApiToken => {
                let record = self
                    .fleet
                    .api_token(&hash_token(token))
                    .await?
                    .ok_or_else(|| unauthorized("Invalid token"))?;
                if record.revoked_at.is_some() {
                    return Err(Error::Expired("This API token has been revoked".into()));
                }
                Ok(Principal::ApiToken {
                    id: record.info.id,
                    name: record.info.name,
                    role: record.info.role,
                })
            }
            CredentialKind::JoinToken => {
                let current = self.current_join_token().await?;
                // a token given with its CA pin is still the token
                let token = token
                    .split_once(crate::access::pinned::PIN_SEPARATOR)
                    .map_or(token, |(token, _)| token);
                if credential::constant_time_eq(token, &current) {
                    Ok(Principal::Joiner)
                } else {
                    Err(unauthorized("Invalid join token"))
                }
            }
            CredentialKind::NodeToken => {
                let (node_id, _) = (self.fleet.node_of_token(&hash_token(token)).await?)
                    .ok_or_else(|| unauthorized("Invalid token"))?;
                Ok(Principal::Node { node_id })
            }
            CredentialKind::Unknown => Err(unauthorized("Invalid token")),
        }
    }

    async fn user_of_access_token(&self, token: &str) -> Result<Principal> {
        let now = self.now().max(0.0) as u64;
        let claims = self.signing_key().await?.verify(token, now)?;
        let user = self.fleet.user(&claims.sub).await?.ok_or_else(|| {
            Error::Expired("The user of this access token no longer exists".into())
        })?;
        if claims.epoch != jwt::token_epoch(&user.password_hash) {
            return Err(Error::Expired(
                "This access token was issued before the user's password was set or the \
                 user was created again; log in again"
                    .into(),
            ));
        }
        Ok(Principal::User {
            username: user.user.username,
            role: user.user.role,
        })
    }

    /// Checks a password and hands out a signed access token.
    /// Repeated failures for one username make it wait (see
    /// [`crate::access::login_backoff`]) before its password is checked again.
    pub async fn login(&self, request: &LoginRequest) -> Result<AccessToken> {
        self.login_backoff.check(&request.username, self.now())?;
        let slot = self.password_work.try_slot()?;
        let record = self.fleet.user(&request.username).await?;
        let stored = record.as_ref().map_or_else(
            || password::decoy_hash().to_string(),
            |r| r.password_hash.clone(),
        );
        let matches = slot.verify(&request.password, stored).await;
        let (user, epoch) = match record {
            Some(record) if matches => (record.user, jwt::token_epoch(&record.password_hash)),
            _ => {
                self.login_backoff.failed(&request.username, self.now());
                return Err(unauthorized("Invalid username or password"));
            }
        };
        self.login_backoff.succeeded(&user.username);
        let ttl = self.settings.access_token_ttl.as_secs().max(1);
        let now = self.now().max(0.0) as u64;
        let access_token =
            self.signing_key()
                .await?
                .issue(&user.username, user.role, &epoch, now, ttl)?;
        tracing::info!(username = %user.username, "user logged in");
        Ok(AccessToken {
            access_token,
            token_type: "bearer".into(),
            expires_in: ttl,
        })
    }

    /// Adds a user; a missing password is generated and returned once.
    pub async fn create_user(&self, caller: &Principal, new: &NewUser) -> Result<CreatedUser> {
        new.validate()?;
        let generated = new.password.is_none().then(credential::generate_password);
        let password = new
            .password
            .as_deref()
            .or(generated.as_deref())
            .unwrap_or_default();
        let record = UserRecord {
            user: User {
                username: new.username.clone(),
                role: new.role,
                created_at: self.now(),
            },
            password_hash: self.password_work.hash(password).await?,
        };
        self.fleet
            .access_written(self.store.access().insert_user(&record).await)?;
        tracing::info!(username = %new.username, role = %new.role, "user created");
        self.record(
            Some(caller),
            vec![
                Event::new(
                    "user.created",
                    "user",
                    &new.username,
                    format!("user {} created ({})", new.username, new.role),
                )
                .with("role", new.role.as_str()),
            ],
        );
        Ok(CreatedUser {
            user: record.user,
            password: generated,
        })
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        self.store.access().list_users().await
    }

    /// Removes a user: its access tokens, and the API tokens it created, stop
    /// working at once. The last admin cannot be removed.
    pub async fn delete_user(&self, caller: &Principal, username: &str) -> Result<()> {
        if !self.fleet.access_written(
            self.store
                .access()
                .delete_user(username, self.now(), &crate::access::keeps_an_admin)
                .await,
        )? {
            return Err(Error::NotFound(format!("User {username:?} not found")));
        }
        tracing::info!(%username, "user removed");
        self.record(
            Some(caller),
            vec![Event::new(
                "user.removed",
                "user",
                username,
                format!("user {username} removed"),
            )],
        );
        Ok(())
    }

    /// Creates a long-lived API token (the token is in the answer only), recording
    /// `creator` when it is a user: the token is revoked when that user is removed.
    pub async fn create_api_token(
        &self,
        creator: &Principal,
        request: &TokenRequest,
    ) -> Result<CreatedApiToken> {
        request.validate()?;
        let created_by = match creator {
            Principal::User { username, .. } => Some(username.clone()),
            _ => None,
        };
        let token = credential::generate(API_TOKEN_PREFIX);
        let info = ApiTokenInfo {
            id: Uuid::new_v4().to_string(),
            name: request.name.clone(),
            role: request.role,
            created_at: self.now(),
        };
        self.fleet.access_written(
            self.store
                .access()
                .insert_api_token(&ApiTokenRecord {
                    info: info.clone(),
                    token_hash: hash_token(&token),
                    revoked_at: None,
                    created_by,
                })
                .await,
        )?;
        tracing::info!(id = %info.id, name = %info.name, role = %info.role, "API token created");
        self.record(
            Some(creator),
            vec![
                Event::new(
                    "token.created",
                    "token",
                    &info.id,
                    format!("API token {} created ({})", info.name, info.role),
                )
                .with("name", info.name.as_str())
                .with("role", info.role.as_str()),
            ],
        );
        Ok(CreatedApiToken { info, token })
    }

    /// Sets `username`'s password as `caller` may ([`Principal::may_set_password`]):
    /// a user changing their own gives the old one. Every access token issued to
    /// the user before stops working at once.
    pub async fn change_password(
        &self,
        caller: &Principal,
        username: &str,
        change: &PasswordChange,
    ) -> Result<()> {
        let needs_old_password = caller.may_set_password(username)?;
        validate_password(&change.password)?;
        let record = self
            .fleet
            .user(username)
            .await?
            .ok_or_else(|| Error::NotFound(format!("User {username:?} not found")))?;
        if needs_old_password {
            let old = change.old_password.as_deref().ok_or_else(|| {
                Error::Invalid("old_password: required to change your own password".into())
            })?;
            self.login_backoff.check(username, self.now())?;
            let slot = self.password_work.try_slot()?;
            if !slot.verify(old, record.password_hash).await {
                self.login_backoff.failed(username, self.now());
                return Err(Error::Forbidden(
                    "old_password does not match the current password".into(),
                ));
            }
        }
        let hash = self.password_work.hash(&change.password).await?;
        if !self
            .fleet
            .access_written(self.store.access().set_password_hash(username, &hash).await)?
        {
            return Err(Error::NotFound(format!("User {username:?} not found")));
        }
        tracing::info!(%username, by = %caller.describe(), "password changed; earlier access tokens revoked");
        self.record(
            Some(caller),
            vec![Event::new(
                "user.password_changed",
                "user",
                username,
                format!("password of {username} changed"),
            )],
        );
        Ok(())
    }

    /// API tokens not revoked.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.store.access().list_api_tokens().await
    }

    /// Revokes an API token: it stops working at once.
    pub async fn revoke_api_token(&self, caller: &Principal, id: &str) -> Result<()> {
        if !self
            .fleet
            .access_written(self.store.access().revoke_api_token(id, self.now()).await)?
        {
            return Err(Error::NotFound(format!("API token {id:?} not found")));
        }
        tracing::info!(%id, "API token revoked");
        self.record(
            Some(caller),
            vec![Event::new(
                "token.removed",
                "token",
                id,
                format!("API token {id} revoked"),
            )],
        );
        Ok(())
    }

    /// The cluster's join token (created if the database has none yet).
    pub async fn join_token(&self) -> Result<JoinToken> {
        Ok(JoinToken::new(self.current_join_token().await?))
    }

    /// Replaces the join token: the old one stops registering nodes; nodes already
    /// registered keep their own tokens.
    pub async fn rotate_join_token(&self, caller: &Principal) -> Result<JoinToken> {
        let join_token = credential::generate(JOIN_TOKEN_PREFIX);
        self.fleet.access_written(
            self.store
                .access()
                .put_cluster_secret(JOIN_TOKEN, &join_token, self.now())
                .await,
        )?;
        tracing::info!("join token rotated");
        self.record(
            Some(caller),
            vec![Event::new(
                "join_token.rotated",
                "cluster",
                "join-token",
                "join token rotated: the old one no longer registers nodes".into(),
            )],
        );
        Ok(JoinToken::new(join_token))
    }

    /// Re-seals the cluster secrets under the current key (after a key rotation).
    pub(super) async fn reseal_cluster_secrets(&self) -> Result<()> {
        for name in [JOIN_TOKEN, SIGNING_KEY] {
            if let Some(value) = self.fleet.cluster_secret(name).await? {
                self.fleet.access_written(
                    self.store
                        .access()
                        .put_cluster_secret(name, &value, self.now())
                        .await,
                )?;
            }
        }
        Ok(())
    }

    async fn current_join_token(&self) -> Result<String> {
        match self.fleet.cluster_secret(JOIN_TOKEN).await? {
            Some(token) => Ok(token),
            None => {
                let fresh = credential::generate(JOIN_TOKEN_PREFIX);
                self.fleet.access_written(
                    self.store
                        .access()
                        .init_cluster_secret(JOIN_TOKEN, &fresh, self.now())
                        .await,
                )
            }
        }
    }

    async fn signing_key(&self) -> Result<&SigningKey> {
        self.signing_key
            .get_or_try_init(|| async {
                let stored = self.fleet.access_written(
                    self.store
                        .access()
                        .init_cluster_secret(SIGNING_KEY, &SigningKey::generate_hex(), self.now())
                        .await,
                )?;
                SigningKey::from_hex(&stored)
            })
            .await
    }
}
