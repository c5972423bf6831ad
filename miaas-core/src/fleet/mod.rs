//! The fleet state: the nodes, deployments and node tokens in memory, with the
//! placement ledger that follows them, owned by the service (as Nomad's server owns
//! its state store). How it works, in one page:
//!
//! - **One published state.** [`FleetState`] is immutable once published; it is
//!   made of persistent collections, so a copy costs a few reference counts.
//!   Readers take the last published state (one `Arc` clone) and never read SQL.
//! - **One version.** A state holds every write up to the database's cluster
//!   version (each committed write adds one, and each row carries the version that
//!   wrote it); a local publication count tells apart states that heartbeats and
//!   this process's own writes made in between ([`FleetState::views_version`]).
//! - **Writes.** Every write takes the writer's turn (one async mutex), commits to
//!   the [`Store`], then publishes: the latest state is copied, the committed
//!   change laid over it, and the copy swapped in. A decision works on a copy of
//!   the latest state, commits its writes under the cluster version lock, and is
//!   published only once that commit succeeded; a failed commit publishes nothing
//!   (and on an unknown outcome the state is read afresh, or marked stale and read
//!   before anything else when it cannot be). Every write is committed and
//!   published in a task of its own, so a caller that goes away cannot leave a
//!   committed write unpublished. Decisions and registrations that arrive while
//!   the writer is busy queue and share the next transaction (group commit): each
//!   decides over the writes of the ones before it, each is answered after the
//!   shared commit, and one whose caller left before it was decided is not made.
//!   The store answers each write's version, so this process's own writes move the
//!   state's version when nothing else came in between.
//! - **Heartbeats** wait to be laid over the published state by the next read or
//!   write (all that came since, over one copy, under the short publication lock,
//!   not the writer's turn) and to be written to the database in batches
//!   ([`Fleet::flush_heartbeats`]); a node coming back online is written at once.
//! - **Other writers.** A server on its own SQLite file is the only writer: its
//!   state is always current. On a shared database (PostgreSQL replicas, the CLI's
//!   local mode) a read first learns the cluster version (one query answers every
//!   read that arrived before it was sent) and, when it moved, the writer reads the
//!   rows written since and publishes them before the read is answered: a token
//!   revoked on one replica is refused by the very next request on every other.
//!   Decisions read the same change feed under the cluster's write lock.
//! - **Credentials** (users, API tokens, cluster secrets) are remembered once read
//!   and forgotten on any change of access, here or (seen through the version) on
//!   another replica.

mod access;
mod access_memo;
mod commit;
mod heartbeats;
mod registrations;
mod rounds;
mod snapshot;
mod state;
#[cfg(test)]
mod tests;
mod watch;

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use crate::Result;
use crate::clock::Clock;
use crate::store::Store;

pub(crate) use rounds::Rounds;
pub use snapshot::{ReservationChange, Snapshot};
pub use state::FleetState;

/// The fleet state and the writes that change it. Cheap to clone: clones share
/// everything.
#[derive(Clone)]
pub struct Fleet(Arc<Parts>);

impl std::ops::Deref for Fleet {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What every clone of a [`Fleet`] shares.
pub struct Parts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Whether other processes may write the database.
    shared: bool,
    /// How long a node stays online after it was last seen (seconds).
    timeout: f64,
    /// The last published state.
    published: RwLock<Arc<FleetState>>,
    /// Set once the state was read from the database.
    loaded: tokio::sync::OnceCell<()>,
    /// Set when a write's outcome is unknown and the state could not be read
    /// again: it is read before anything else is answered or written.
    stale: std::sync::atomic::AtomicBool,
    /// The writer's turn: every write holds it, so the database and the published
    /// state change in step.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Decisions waiting to share the next transaction.
    decisions: commit::Queue<commit::QueuedDecision>,
    /// Registrations waiting to share the next commit.
    registrations: commit::Queue<registrations::QueuedRegistration>,
    /// Heartbeats not laid over the state or not written yet.
    heartbeats: heartbeats::PendingHeartbeats,
    /// Users, API tokens and cluster secrets as last read.
    access: access::RememberedAccess,
    /// The cluster version as the latest reads saw it.
    watch: watch::VersionWatch,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// The fleet of `store`, read from it on first use. `shared`: other processes
    /// may write the database (every read then checks the version first).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, shared: bool, timeout: f64) -> Self {
        Self(Arc::new(Parts {
            store,
            clock,
            shared,
            timeout,
            published: RwLock::default(),
            loaded: tokio::sync::OnceCell::new(),
            stale: std::sync::atomic::AtomicBool::new(false),
            writer: Arc::default(),
            decisions: commit::Queue::default(),
            registrations: commit::Queue::default(),
            heartbeats: heartbeats::PendingHeartbeats::default(),
            access: access::RememberedAccess::default(),
            watch: watch::VersionWatch::default(),
        }))
    }

    /// The state holding every write committed and every heartbeat answered
    /// before this call (on a shared database: after learning the cluster version
    /// and catching up with it).
    pub async fn state(&self) -> Result<Arc<FleetState>> {
        self.catch_up_for_read().await?;
        Ok(self.latest())
    }

    /// As [`Self::state`], without laying the heartbeats not laid yet: for a
    /// heartbeat's own checks, which must not cost a copy of the state each.
    async fn state_as_published(&self) -> Result<Arc<FleetState>> {
        self.catch_up_for_read().await?;
        Ok(self.published_state())
    }

    /// Reads the fleet when it was not read yet or a write left it stale, and on
    /// a shared database catches up with the cluster version.
    async fn catch_up_for_read(&self) -> Result<()> {
        self.load().await?;
        if self.stale.load(Ordering::Acquire) {
            let _writer = self.writer.lock().await;
            self.reload_if_stale().await?;
        }
        if self.shared {
            let observed = self.observe().await?;
            if self.published_state().version() < observed.version {
                let _writer = self.writer.lock().await;
                self.catch_up(observed.version).await?;
            }
        }
        Ok(())
    }

    /// The last published state, with the heartbeats not laid yet laid over it.
    fn latest(&self) -> Arc<FleetState> {
        if self.heartbeats.any_unlaid() {
            self.publish(|_| {});
        }
        self.published_state()
    }

    /// The last published state, as it is.
    fn published_state(&self) -> Arc<FleetState> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Publishes the latest state with the heartbeats not laid yet and `change`
    /// laid over it.
    fn publish(&self, change: impl FnOnce(&mut FleetState)) {
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = FleetState::clone(&published);
        let now = self.clock.now();
        if self.heartbeats.any_unlaid() {
            self.heartbeats.lay_unlaid(&mut next, now);
        }
        change(&mut next);
        next.expire(now);
        next.published();
        *published = Arc::new(next);
    }

    /// Reads the whole fleet, once.
    async fn load(&self) -> Result<()> {
        self.loaded
            .get_or_try_init(|| async {
                let _writer = self.writer.lock().await;
                self.reload().await
            })
            .await
            .map(|_| ())
    }

    /// Reads the whole fleet afresh and publishes it; the caller holds the writer's
    /// turn. Heartbeats laid over the state meanwhile (written or not) are kept.
    async fn reload(&self) -> Result<()> {
        let everything = self.store.changes_since(0).await?;
        let now = self.clock.now();
        let mut state = FleetState::load(everything, now, self.timeout);
        let mut published = self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.keep_newer_heartbeats(&published, now);
        self.heartbeats.lay_unlaid(&mut state, now);
        self.heartbeats.lay_unwritten(&mut state, now);
        state.published_after(&published);
        *published = Arc::new(state);
        self.stale.store(false, Ordering::Release);
        Ok(())
    }

    /// Reads the fleet afresh when a write left it stale; the caller holds the
    /// writer's turn.
    async fn reload_if_stale(&self) -> Result<()> {
        if self.stale.load(Ordering::Acquire) {
            self.reload().await?;
        }
        Ok(())
    }

    /// Publishes what others wrote since the latest state's version, when it is
    /// below `version`; the caller holds the writer's turn.
    async fn catch_up(&self, version: u64) -> Result<()> {
        let known = self.published_state().version();
        if known >= version {
            return Ok(());
        }
        let changes = self.store.changes_since(known).await?;
        let now = self.clock.now();
        self.publish(|state| state.apply_changes(&changes, now));
        Ok(())
    }

    /// The cluster version as of now (a query sent after this call began); the
    /// remembered credentials are forgotten when access changed since.
    async fn observe(&self) -> Result<crate::store::ClusterVersion> {
        let version = self.watch.observe(&*self.store).await?;
        self.access.saw(version.access_changed_at);
        Ok(version)
    }

    /// Whether other processes may write the database.
    pub fn shared(&self) -> bool {
        self.shared
    }
}
