//! [`AccessStore`] for the fleet cache: users, API tokens and cluster secrets are
//! remembered once read, so that authenticating a request costs no query. This
//! cache's own writes forget them at once; on a shared database every lookup first
//! learns the cluster version, and a change of access committed by any replica
//! before the lookup began forgets them too: a revoked token is refused by the very
//! next request, on every replica.

use async_trait::async_trait;

use super::FleetCache;
use crate::Result;
use crate::model::{ApiTokenInfo, User};
use crate::store::{AccessDump, AccessStore, ApiTokenRecord, UserRecord, UserRule};

impl FleetCache {
    /// Makes the remembered credentials trustworthy for a lookup beginning now;
    /// `false` when that cannot be told (the store is down): then ask the store.
    async fn credentials_fresh(&self) -> bool {
        self.exclusive || self.observe().await.is_ok()
    }

    /// Forgets the remembered credentials after a write of them (also after a
    /// failed one: whether it committed is unknown).
    fn access_written<T>(&self, outcome: Result<T>) -> Result<T> {
        self.access.changed();
        outcome
    }
}

#[async_trait]
impl AccessStore for FleetCache {
    async fn insert_user(&self, user: &UserRecord) -> Result<()> {
        let outcome = self.inner.insert_user(user).await;
        self.access_written(outcome)
    }

    async fn insert_first_user(&self, user: &UserRecord) -> Result<bool> {
        let outcome = self.inner.insert_first_user(user).await;
        self.access_written(outcome)
    }

    async fn get_user(&self, username: &str) -> Result<Option<UserRecord>> {
        if !self.credentials_fresh().await {
            return self.inner.get_user(username).await;
        }
        if let Some(known) = self.access.user(username) {
            return Ok(Some(known));
        }
        let generation = self.access.generation();
        let record = self.inner.get_user(username).await?;
        if let Some(record) = &record {
            self.access.remember_user(generation, record);
        }
        Ok(record)
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.inner.list_users().await
    }

    async fn delete_user(&self, username: &str, now: f64, allowed: UserRule<'_>) -> Result<bool> {
        let outcome = self.inner.delete_user(username, now, allowed).await;
        self.access_written(outcome)
    }

    async fn set_password_hash(&self, username: &str, password_hash: &str) -> Result<bool> {
        let outcome = self.inner.set_password_hash(username, password_hash).await;
        self.access_written(outcome)
    }

    async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        let outcome = self.inner.insert_api_token(token).await;
        self.access_written(outcome)
    }

    async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        if !self.credentials_fresh().await {
            return self.inner.api_token_by_hash(token_hash).await;
        }
        if let Some(known) = self.access.api_token(token_hash) {
            return Ok(Some(known));
        }
        let generation = self.access.generation();
        let record = self.inner.api_token_by_hash(token_hash).await?;
        if let Some(record) = &record {
            self.access.remember_api_token(generation, record);
        }
        Ok(record)
    }

    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenInfo>> {
        self.inner.list_api_tokens().await
    }

    async fn revoke_api_token(&self, id: &str, now: f64) -> Result<bool> {
        let outcome = self.inner.revoke_api_token(id, now).await;
        self.access_written(outcome)
    }

    async fn cluster_secret(&self, name: &str) -> Result<Option<String>> {
        if !self.credentials_fresh().await {
            return self.inner.cluster_secret(name).await;
        }
        if let Some(known) = self.access.cluster_secret(name) {
            return Ok(Some(known));
        }
        let generation = self.access.generation();
        let value = self.inner.cluster_secret(name).await?;
        if let Some(value) = &value {
            self.access.remember_cluster_secret(generation, name, value);
        }
        Ok(value)
    }

    async fn init_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<String> {
        let outcome = self.inner.init_cluster_secret(name, value, now).await;
        self.access_written(outcome)
    }

    async fn put_cluster_secret(&self, name: &str, value: &str, now: f64) -> Result<()> {
        let outcome = self.inner.put_cluster_secret(name, value, now).await;
        self.access_written(outcome)
    }

    async fn sealed_key_ids(&self) -> Result<Vec<String>> {
        self.inner.sealed_key_ids().await
    }

    async fn export_access(&self) -> Result<AccessDump> {
        self.inner.export_access().await
    }
}
