//! The event log: every change becomes an [`Event`], stored with a cursor that
//! grows in commit order on every replica, and followed by any number of readers.
//!
//! Writers hand events to [`EventLog::emit`] and go on: one writer task stores
//! what has gathered in one transaction per turn (a burst of deploys costs a few
//! commits, not one each). Readers follow a window of the newest events kept in
//! memory, which one task per process fills from the store: after each local
//! write, and every [`SHARED_POLL`] on a database other replicas write too. A
//! thousand followers cost one query, not a thousand.

mod derive;
pub mod origin;
mod window;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::Result;
use crate::model::{Event, EventBounds, EventFilter, NewEvent};
use crate::store::Store;

pub(crate) use derive::deployment_events;
pub use origin::Origin;
use window::Window;

/// How often a process looks for other replicas' events.
const SHARED_POLL: Duration = Duration::from_millis(250);
/// How many events one read returns at most.
const READ_BATCH: usize = 1_000;
/// Events waiting to be stored beyond which the oldest are dropped (the store has
/// been failing for a long while).
const MAX_PENDING: usize = 100_000;

/// The event log of one process.
pub struct EventLog {
    store: Arc<dyn Store>,
    pending: Mutex<Vec<NewEvent>>,
    /// Held while a batch is being stored, so that a flush waits for it.
    writing: tokio::sync::Mutex<()>,
    wake_writer: Arc<Notify>,
    writer: std::sync::Once,
    window: Arc<Window>,
    wake_tail: Arc<Notify>,
    tail: std::sync::Once,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

/// An event as followers get it: with its JSON, written once for all of them.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    /// Its JSON.
    pub json: String,
}

impl Published {
    fn new(event: Event) -> Arc<Self> {
        let json = serde_json::to_string(&event).unwrap_or_default();
        Arc::new(Self { event, json })
    }
}

/// Why following cannot start at a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone {
    /// The oldest cursor still kept minus one: follow from here (and accept the gap).
    pub oldest: u64,
}

impl EventLog {
    /// The log of `store`.
    pub fn new(store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            store,
            pending: Mutex::default(),
            writing: tokio::sync::Mutex::new(()),
            wake_writer: Arc::default(),
            writer: std::sync::Once::new(),
            window: Arc::default(),
            wake_tail: Arc::default(),
            tail: std::sync::Once::new(),
        })
    }

    /// Records `events` (stored shortly, in this order, after those emitted before).
    pub fn emit(self: &Arc<Self>, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.extend(events);
            if pending.len() > MAX_PENDING {
                let excess = pending.len() - MAX_PENDING;
                pending.drain(..excess);
                tracing::warn!(
                    dropped = excess,
                    "events could not be stored; the oldest were dropped"
                );
            }
        }
        self.writer.call_once(|| {
            let log = Arc::downgrade(self);
            let wake = self.wake_writer.clone();
            tokio::spawn(async move {
                loop {
                    wake.notified().await;
                    let Some(log) = log.upgrade() else { return };
                    while log.store_pending().await.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
        });
        self.wake_writer.notify_one();
    }

    /// Stores what is pending; on failure it stays pending.
    async fn store_pending(&self) -> Result<()> {
        let _writing = self.writing.lock().await;
        loop {
            let batch = match self.pending.lock() {
                Ok(mut pending) => std::mem::take(&mut *pending),
                Err(_) => return Ok(()),
            };
            if batch.is_empty() {
                return Ok(());
            }
            if let Err(err) = self.store.streams().append_events(&batch).await {
                tracing::warn!(error = %err, events = batch.len(), "storing events failed; retrying");
                if let Ok(mut pending) = self.pending.lock() {
                    let newer = std::mem::replace(&mut *pending, batch);
                    pending.extend(newer);
                }
                return Err(err);
            }
            self.wake_tail.notify_one();
        }
    }

    /// Stores what is pending now (at shutdown, and in local mode before exit).
    pub async fn flush(&self) -> Result<()> {
        self.store_pending().await
    }

    /// The ends of the log.
    pub async fn bounds(&self) -> Result<EventBounds> {
        self.store.streams().event_bounds().await
    }

    /// A reader of the events after `after` (`None`: after the newest now) that
    /// `filter` admits; [`Gone`] when events after `after` were already removed.
    pub async fn follow(
        self: &Arc<Self>,
        after: Option<u64>,
        filter: EventFilter,
    ) -> Result<std::result::Result<Follower, Gone>> {
        self.open(after, filter, |bounds| bounds.latest).await
    }

    /// As [`Self::follow`], for reading pages: without `after`, from the oldest
    /// event kept.
    pub async fn pages(
        self: &Arc<Self>,
        after: Option<u64>,
        filter: EventFilter,
    ) -> Result<std::result::Result<Follower, Gone>> {
        self.open(after, filter, |bounds| bounds.pruned_through)
            .await
    }

    async fn open(
        self: &Arc<Self>,
        after: Option<u64>,
        filter: EventFilter,
        start: impl FnOnce(EventBounds) -> u64,
    ) -> Result<std::result::Result<Follower, Gone>> {
        self.start_tail();
        let bounds = self.bounds().await?;
        let after = match after {
            Some(after) if after < bounds.pruned_through => {
                return Ok(Err(Gone {
                    oldest: bounds.pruned_through,
                }));
            }
            Some(after) => after,
            None => start(bounds),
        };
        Ok(Ok(Follower {
            log: self.clone(),
            changed: self.window.subscribe(),
            after,
            filter,
        }))
    }

    /// Up to `limit` events after `after`: from the window when it reaches back
    /// that far, from the store otherwise.
    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Published>>> {
        if let Some(events) = self.window.after(after, limit) {
            return Ok(events);
        }
        let events = self.store.streams().events_after(after, limit).await?;
        Ok(events.into_iter().map(Published::new).collect())
    }

    /// Starts the task that fills the window (once per process).
    fn start_tail(self: &Arc<Self>) {
        self.tail.call_once(|| {
            let log = Arc::downgrade(self);
            let wake = self.wake_tail.clone();
            let shared = !self.store.exclusive();
            tokio::spawn(async move {
                let mut known = None;
                loop {
                    let Some(log) = log.upgrade() else { return };
                    match log.fill_window(&mut known).await {
                        Ok(true) => continue,
                        Ok(false) => {}
                        Err(err) => {
                            tracing::debug!(error = %err, "reading events failed; retrying")
                        }
                    }
                    drop(log);
                    if shared {
                        let _ = tokio::time::timeout(SHARED_POLL, wake.notified()).await;
                    } else {
                        wake.notified().await;
                    }
                }
            });
        });
    }

    /// Reads what was stored after the window's end into it; whether more may be
    /// waiting.
    async fn fill_window(&self, known: &mut Option<u64>) -> Result<bool> {
        let from = match *known {
            Some(from) => from,
            None => {
                let latest = self.bounds().await?.latest;
                self.window.start_at(latest);
                *known = Some(latest);
                latest
            }
        };
        let events = self.store.streams().events_after(from, READ_BATCH).await?;
        let full = events.len() == READ_BATCH;
        if let Some(last) = events.last() {
            *known = Some(last.cursor);
            self.window
                .push(events.into_iter().map(Published::new).collect());
        }
        Ok(full)
    }

    /// Removes events beyond the newest `keep` and older than `max_age`.
    pub async fn prune(&self, keep: u64, before: f64) -> Result<u64> {
        self.store.streams().prune_events(keep, before).await
    }
}

/// One reader of the log.
pub struct Follower {
    log: Arc<EventLog>,
    changed: watch::Receiver<u64>,
    after: u64,
    filter: EventFilter,
}

impl Follower {
    /// The cursor of the last event read (or the one it began after).
    pub fn cursor(&self) -> u64 {
        self.after
    }

    /// The next events the filter admits, waiting for them when there are none.
    pub async fn next_batch(&mut self) -> Result<Vec<Arc<Published>>> {
        loop {
            let batch = self.read().await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            if self.changed.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The events the filter admits after the cursor, now (perhaps none).
    pub async fn read(&mut self) -> Result<Vec<Arc<Published>>> {
        loop {
            self.changed.borrow_and_update();
            let events = self.log.read_after(self.after, READ_BATCH).await?;
            let Some(last) = events.last() else {
                return Ok(Vec::new());
            };
            self.after = last.event.cursor;
            let admitted: Vec<Arc<Published>> = events
                .into_iter()
                .filter(|e| self.filter.admits(&e.event))
                .collect();
            if !admitted.is_empty() {
                return Ok(admitted);
            }
        }
    }
}
