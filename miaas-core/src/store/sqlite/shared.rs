//! Group commit on SQLite: the writer's holder runs the queued changes (see
//! [`crate::store::shared`]) over the kept snapshot.

use std::future::Future;

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::SqliteStore;
use super::cache::CachedSnapshot;
use crate::Result;
use crate::store::shared::{Answer, SharedJob, answer_all};

impl SqliteStore {
    /// Group commit's wait: a change waits in its queue until `answer` comes, from
    /// whoever commits the queue. If the writer's turn comes first, this caller
    /// commits (with `commit`, in a task of its own, so that a caller that goes away
    /// cannot cut it short) what is queued by then, its own change included. A
    /// change answered by another's commit returns at once, without queueing for
    /// the turn behind the commits still to come.
    pub(super) async fn answered_or_commit<T, F>(
        &self,
        mut answer: oneshot::Receiver<T>,
        commit: impl FnOnce(OwnedMutexGuard<()>) -> F,
    ) -> Option<T>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        tokio::select! {
            biased;
            done = &mut answer => return done.ok(),
            turn = self.turn.clone().lock_owned() => {
                let _ = tokio::spawn(commit(turn)).await;
            }
        }
        answer.await.ok()
    }

    /// Runs the queued changes (holding the writer through `cache`) until none is
    /// left; each batch is one transaction.
    pub(super) async fn run_shared(&self, _turn: OwnedMutexGuard<()>) {
        loop {
            let batch = self.shared.take();
            if batch.is_empty() {
                return;
            }
            let (answers, outcome) = self.run_batch(&batch).await;
            answer_all(batch, answers, &outcome);
        }
    }

    /// One transaction for `batch`: the answer of each change, and whether the
    /// commit succeeded (on failure the snapshot is dropped: it is read afresh).
    async fn run_batch(&self, batch: &[SharedJob]) -> (Vec<Answer>, Result<()>) {
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let outcome: Result<CachedSnapshot> = async {
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            let mut cached = self.fresh_snapshot(&mut tx, self.kept.take()).await?;
            for job in batch {
                match job.decide(&cached.snapshot) {
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
            // the snapshot was what is committed when the write lock was taken,
            // and nothing else commits while it is held
            cached.wal = self.commit_own(tx).await?.header_after();
            Ok(cached)
        }
        .await;
        match outcome {
            Ok(cached) => {
                self.kept.put(cached);
                (answers, Ok(()))
            }
            Err(err) => (answers, Err(err)),
        }
    }
}
