//! Group commit for decisions: changes queued while the writer is busy run one
//! after another in a single transaction, each over the snapshot the ones before it
//! left, and share one commit (one sync to disk). Each is answered only after that
//! commit, so acknowledged still means durable.

use std::sync::Mutex;

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::SqliteStore;
use super::cache::CachedSnapshot;
use crate::model::Deployment;
use crate::store::SharedChange;
use crate::{Error, Result};

/// Most changes one transaction runs.
const MAX_BATCH: usize = 256;

type Answer = Result<Vec<Deployment>>;

/// A change waiting for a transaction, with where its answer goes.
pub(super) struct SharedJob {
    change: SharedChange,
    reply: oneshot::Sender<Answer>,
}

impl SharedJob {
    pub(super) fn new(change: SharedChange) -> (Self, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        (Self { change, reply }, answer)
    }
}

/// Changes waiting for a transaction.
#[derive(Default)]
pub(super) struct SharedQueue {
    waiting: Mutex<Vec<SharedJob>>,
}

impl std::fmt::Debug for SharedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedQueue")
    }
}

impl SharedQueue {
    pub(super) fn push(&self, job: SharedJob) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push(job);
        }
    }

    fn take(&self) -> Vec<SharedJob> {
        let Ok(mut waiting) = self.waiting.lock() else {
            return Vec::new();
        };
        let at = waiting.len().min(MAX_BATCH);
        let rest = waiting.split_off(at);
        std::mem::replace(&mut *waiting, rest)
    }
}

impl SqliteStore {
    /// Runs the queued changes (holding the writer through `cache`) until none is
    /// left; each batch is one transaction.
    pub(super) async fn run_shared(&self, mut cache: OwnedMutexGuard<Option<CachedSnapshot>>) {
        loop {
            let batch = self.shared.take();
            if batch.is_empty() {
                return;
            }
            let (answers, outcome) = self.run_batch(&mut cache, &batch).await;
            for (job, answer) in batch.into_iter().zip(answers) {
                let answer = match &outcome {
                    Ok(()) => answer,
                    Err(err) => Err(Error::Unavailable(format!("not committed: {err}"))),
                };
                let _ = job.reply.send(answer);
            }
        }
    }

    /// One transaction for `batch`: the answer of each change, and whether the
    /// commit succeeded (on failure the cache is dropped: it is read afresh).
    async fn run_batch(
        &self,
        cache: &mut Option<CachedSnapshot>,
        batch: &[SharedJob],
    ) -> (Vec<Answer>, Result<()>) {
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let outcome: Result<CachedSnapshot> = async {
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let mut cached = self.fresh_snapshot(&mut tx, cache.take()).await?;
            for job in batch {
                match (job.change)(&cached.snapshot) {
                    Ok(writes) => {
                        for deployment in &writes {
                            self.write_deployment(&mut tx, deployment).await?;
                        }
                        // the next change decides over this one's result
                        cached.apply(&writes);
                        answers.push(Ok(writes));
                    }
                    Err(err) => answers.push(Err(err)),
                }
            }
            tx.commit().await?;
            Ok(cached)
        }
        .await;
        // changes not reached get the batch's error
        while answers.len() < batch.len() {
            answers.push(Err(Error::Unavailable("not run".into())));
        }
        match outcome {
            Ok(cached) => {
                *cache = Some(cached);
                (answers, Ok(()))
            }
            Err(err) => (answers, Err(err)),
        }
    }
}
