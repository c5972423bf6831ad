//! Decisions, and group commit: changes that arrive while the writer is busy wait
//! in a queue, and whoever gets the writer next runs a batch of them in one
//! transaction, each over the state the ones before it left, with one commit.
//! Each is answered only after that commit, so acknowledged still means durable.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{OwnedMutexGuard, oneshot};

use super::{Fleet, FleetState};
use crate::model::Deployment;
use crate::store::FleetChanges;
use crate::{Error, Result};

/// Most changes one transaction runs.
const MAX_BATCH: usize = 256;

/// A change: what to write, decided over a state.
type Change<'a> = dyn FnMut(&FleetState) -> Result<Vec<Deployment>> + Send + 'a;

/// A change waiting for a transaction, with where its answer goes.
pub(super) struct QueuedDecision {
    change: Box<Change<'static>>,
    reply: oneshot::Sender<Result<Vec<Deployment>>>,
}

/// Work waiting for the writer.
pub(super) struct Queue<T> {
    waiting: Mutex<Vec<T>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(Vec::new()),
        }
    }
}

impl<T> Queue<T> {
    pub(super) fn push(&self, item: T) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(item);
    }

    /// How many wait.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// The oldest [`MAX_BATCH`] waiting at most.
    pub(super) fn take(&self) -> Vec<T> {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = waiting.len().min(MAX_BATCH);
        let rest = waiting.split_off(at);
        std::mem::replace(&mut *waiting, rest)
    }
}

impl Fleet {
    /// Decides and commits one change: `change` returns what to write and its own
    /// result, which comes back once the writes are committed and published. An
    /// error from `change` writes nothing. It may share a transaction with
    /// concurrent decisions (so `change` owns what it uses), and it is committed in
    /// a task of its own: a caller that goes away cannot cut a commit short.
    pub async fn decide<T: Send + 'static>(
        &self,
        mut change: impl FnMut(&FleetState) -> Result<(Vec<Deployment>, T)> + Send + 'static,
    ) -> Result<(Vec<Deployment>, T)> {
        self.load().await?;
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let mut outcome_tx = Some(outcome_tx);
        let change = Box::new(move |state: &FleetState| {
            let (writes, outcome) = change(state)?;
            if let Some(tx) = outcome_tx.take() {
                let _ = tx.send(outcome);
            }
            Ok(writes)
        });
        let (reply, answer) = oneshot::channel();
        self.decisions.push(QueuedDecision { change, reply });
        let writes = self
            .answered_or_commit(answer, |writer| {
                let fleet = self.clone();
                async move { fleet.commit_decisions(writer).await }
            })
            .await
            .ok_or_else(|| Error::Unavailable("the change was dropped".into()))??;
        let outcome = outcome_rx
            .await
            .map_err(|_| Error::Unavailable("the change was not run".into()))?;
        Ok((writes, outcome))
    }

    /// Runs one batch of the queued decisions. The caller holds the writer's turn.
    async fn commit_decisions(&self, _writer: OwnedMutexGuard<()>) {
        let mut batch = self.decisions.take();
        // a caller gone before its change was decided: it is not made
        batch.retain(|decision| !decision.reply.is_closed());
        if batch.is_empty() {
            return;
        }
        let (mut changes, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|d| (d.change, d.reply)).unzip();
        let mut jobs: Vec<&mut Change<'static>> = changes.iter_mut().map(|c| &mut **c).collect();
        let answers = self.run_batch(&mut jobs).await;
        let mut answers = match answers {
            Ok(answers) => answers.into_iter().map(Some).collect(),
            Err(err) => {
                let failed = format!("not committed: {err}");
                (0..replies.len())
                    .map(|_| Some(Err(Error::Unavailable(failed.clone()))))
                    .collect::<Vec<_>>()
            }
        };
        for (i, reply) in replies.into_iter().enumerate() {
            let answer = answers.get_mut(i).and_then(Option::take);
            let _ = reply.send(answer.unwrap_or_else(not_run));
        }
    }

    /// One transaction for `jobs`: each decides over the state the ones before it
    /// left (with what other writers committed since the latest state laid over
    /// it first); their writes are committed together and then published. The
    /// caller holds the writer's turn. A job's error undoes only its own change.
    async fn run_batch(
        &self,
        jobs: &mut [&mut Change<'_>],
    ) -> Result<Vec<Result<Vec<Deployment>>>> {
        self.reload_if_stale().await?;
        let now = self.clock.now();
        let mut working = FleetState::clone(&self.latest());
        working.expire(now);
        let known = self.shared.then_some(working.version());
        let mut answers = Vec::with_capacity(jobs.len());
        let mut others: Option<FleetChanges> = None;
        let mut decider = |changes: FleetChanges| -> Result<Vec<Deployment>> {
            working.apply_changes(&changes, now);
            others = Some(changes);
            let mut writes = Vec::new();
            for job in jobs.iter_mut() {
                let answer = job(&working);
                if let Ok(written) = &answer {
                    // the next change decides over this one's result
                    working.apply_writes(written);
                    writes.extend(written.iter().cloned());
                }
                answers.push(answer);
            }
            Ok(writes)
        };
        match self.store.decide(known, &mut decider).await {
            Ok(decided) => {
                self.publish(|state| {
                    if let Some(changes) = &others {
                        state.apply_changes(changes, now);
                    }
                    for written in answers.iter().flatten() {
                        state.apply_writes(written);
                    }
                    state.committed(decided.version.version);
                });
                Ok(answers)
            }
            Err(err) => self.written(Err(err)).await,
        }
    }

    /// Group commit's wait: a queued write waits until `answer` comes, from
    /// whoever commits the queue. Whenever the writer's turn comes to this caller
    /// first, it commits one batch of what is queued (with `commit`, in a task of
    /// its own, so that a caller that goes away cannot cut it short), and waits
    /// again: a caller is never held up by batches after the one that answered it.
    pub(super) async fn answered_or_commit<T, F>(
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

fn not_run<T>() -> Result<T> {
    Err(Error::Unavailable("not run".into()))
}
