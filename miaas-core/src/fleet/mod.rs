//! The fleet cache: one layer over any [`Store`] that keeps the fleet in memory
//! for a long-running server — the fleet snapshot with node tokens, the decision
//! and registration queues (group commit), and remembered credentials — with
//! **one** version, the cluster version of the database, and one way to learn of
//! writes made elsewhere:
//!
//! - a server that owns its SQLite file ([`Store::exclusive`]) is the only
//!   writer: its own writes keep the cache in step, nothing is ever checked;
//! - PostgreSQL replicas share the database: a read first learns the cluster
//!   version (one query answers every read waiting, see `watch`), and when it
//!   moved reads only the rows written since the version the cache knows (each
//!   row carries the version that wrote it). Decisions read the same change feed
//!   under the cluster's write lock.
//!
//! Reads the cache cannot answer at once (the snapshot is out for a decision, or
//! not loaded yet, or behind while the writer is busy) go to the store.

mod access;
mod access_memo;
mod decisions;
mod registrations;
mod state;
mod store;
mod watch;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use tokio::sync::{OwnedMutexGuard, oneshot};

use crate::Result;
use crate::store::Store;

pub use access_memo::AccessMemo;
use state::FleetState;

/// A [`Store`] that keeps the fleet in memory over another store.
#[derive(Clone)]
pub struct FleetCache {
    inner: Arc<dyn Store>,
    /// Whether the inner store's process is its only writer.
    exclusive: bool,
    /// The fleet, when loaded and not out for a decision.
    state: Arc<RwLock<Option<FleetState>>>,
    /// The writer's turn: every write of this cache holds it, so the state and
    /// the database change in step.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Decisions waiting to share the next transaction.
    decisions: Arc<decisions::SharedQueue>,
    /// Registrations waiting to share the next commit.
    registrations: Arc<registrations::RegistrationQueue>,
    /// Users, API tokens and cluster secrets as last read.
    access: Arc<AccessMemo>,
    /// The `access_changed_at` the remembered credentials are right for.
    access_seen: Arc<AtomicU64>,
    /// The cluster version as the latest reads saw it (shared databases).
    watch: Arc<watch::VersionWatch>,
    /// Whether the fleet is being read into memory.
    loading: Arc<AtomicBool>,
    /// Set once the store is closed: nothing is read into memory any more.
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for FleetCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetCache")
            .field("exclusive", &self.exclusive)
            .finish_non_exhaustive()
    }
}

impl FleetCache {
    /// A cache over `inner`; the fleet is read into memory on first use.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            exclusive: inner.exclusive(),
            inner,
            state: Arc::default(),
            writer: Arc::default(),
            decisions: Arc::default(),
            registrations: Arc::default(),
            access: Arc::default(),
            access_seen: Arc::default(),
            watch: Arc::default(),
            loading: Arc::default(),
            closed: Arc::default(),
        }
    }

    fn slot(&self) -> RwLockWriteGuard<'_, Option<FleetState>> {
        // a panic while changing it may have left it half-changed: start over
        self.state.write().unwrap_or_else(|poisoned| {
            let mut slot = poisoned.into_inner();
            *slot = None;
            slot
        })
    }

    /// The version the state knows; `None` while it is out or not loaded.
    fn known(&self) -> Option<u64> {
        self.state.read().ok()?.as_ref().map(|s| s.known)
    }

    /// Drops the state: it is read afresh when next needed (after a write whose
    /// outcome is unknown).
    fn forget(&self) {
        *self.slot() = None;
    }

    /// Lays a committed write over the state, if loaded.
    fn patch(&self, change: impl FnOnce(&mut FleetState)) {
        if let Some(state) = self.slot().as_mut() {
            change(state);
        }
    }

    /// `read` over the state when it holds every write committed before this call
    /// (on a shared database: after learning the cluster version, and catching up
    /// when it moved and the writer is free); `None` otherwise, and the caller
    /// asks the store.
    async fn read<T>(&self, read: impl FnOnce(&FleetState) -> T) -> Option<T> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        if !self.exclusive && !self.caught_up().await {
            if self.known().is_none() {
                self.load_in_background();
            }
            return None;
        }
        let answer = {
            let slot = self.state.read().ok()?;
            slot.as_ref().map(read)
        };
        if answer.is_none() {
            self.load_in_background();
        }
        answer
    }

    /// Whether the state holds every write committed before this call.
    async fn caught_up(&self) -> bool {
        let Ok(observed) = self.observe().await else {
            return false;
        };
        if self.known().is_some_and(|k| k >= observed.version) {
            return true;
        }
        // the writer's holder may have the state out: never wait behind it
        let Ok(_writer) = self.writer.try_lock() else {
            return false;
        };
        let Some(known) = self.known() else {
            return false;
        };
        match self.inner.changes_since(known).await {
            Ok(changes) => {
                let mut slot = self.slot();
                match slot.as_mut() {
                    Some(state) if state.known == known => {
                        state.apply_changes(&changes);
                        state.known >= observed.version
                    }
                    _ => false,
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the fleet's changes");
                false
            }
        }
    }

    /// The cluster version as of now (a query sent after this call began); the
    /// remembered credentials are forgotten when access changed since.
    async fn observe(&self) -> Result<crate::store::ClusterVersion> {
        let version = self.watch.observe(&*self.inner).await?;
        let seen = self
            .access_seen
            .fetch_max(version.access_changed_at, Ordering::AcqRel);
        if seen < version.access_changed_at {
            self.access.changed();
        }
        Ok(version)
    }

    /// Reads the fleet into memory in a task of its own, if nobody is.
    fn load_in_background(&self) {
        if self.loading.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        tokio::spawn(async move {
            let writer = cache.writer.clone().lock_owned().await;
            if cache.known().is_none()
                && !cache.closed.load(Ordering::Acquire)
                && let Err(err) = cache.load(&writer).await
                && !cache.closed.load(Ordering::Acquire)
            {
                tracing::warn!(error = %err, "the fleet could not be read into memory");
            }
            cache.loading.store(false, Ordering::Release);
        });
    }

    /// Reads the whole fleet into the slot; the caller holds the writer's turn.
    async fn load(&self, _writer: &OwnedMutexGuard<()>) -> Result<()> {
        let state = FleetState::load(self.inner.changes_since(0).await?);
        *self.slot() = Some(state);
        Ok(())
    }

    /// The state, taken out of the slot for a write (read from the store when
    /// none is kept); the caller holds the writer's turn and puts it back.
    async fn take_state(&self) -> Result<FleetState> {
        if let Some(state) = self.slot().take() {
            return Ok(state);
        }
        Ok(FleetState::load(self.inner.changes_since(0).await?))
    }

    fn put_state(&self, state: FleetState) {
        *self.slot() = Some(state);
    }

    /// Group commit's wait: a queued write waits until `answer` comes, from
    /// whoever commits the queue. Whenever the writer's turn comes to this caller
    /// first, it commits one batch of what is queued (with `commit`, in a task of
    /// its own, so that a caller that goes away cannot cut it short), and waits
    /// again: a caller is never held up by batches after the one that answered it.
    async fn answered_or_commit<T, F>(
        &self,
        mut answer: oneshot::Receiver<T>,
        commit: impl Fn(OwnedMutexGuard<()>) -> F,
    ) -> Option<T>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        loop {
            tokio::select! {
                biased;
                done = &mut answer => return done.ok(),
                writer = self.writer.clone().lock_owned() => {
                    tokio::spawn(commit(writer));
                }
            }
        }
    }
}
