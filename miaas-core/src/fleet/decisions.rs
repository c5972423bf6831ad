//! Group commit for decisions: changes queued while the cache's writer is busy run
//! one after another in a single transaction, each over the snapshot the ones
//! before it left, and share one commit. Each is answered only after that commit,
//! so acknowledged still means durable.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::store::{Decision, SharedChange, Snapshot};
use crate::{Error, Result};

/// Most changes one transaction runs.
const MAX_BATCH: usize = 256;

pub(crate) type Answer = Result<Decision>;

/// A change waiting for a transaction, with where its answer goes.
pub(crate) struct SharedJob {
    change: SharedChange,
    reply: oneshot::Sender<Answer>,
}

impl SharedJob {
    pub(crate) fn new(change: SharedChange) -> (Self, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        (Self { change, reply }, answer)
    }
}

/// Changes waiting for a transaction.
#[derive(Default)]
pub(crate) struct SharedQueue {
    waiting: Mutex<Vec<SharedJob>>,
}

impl std::fmt::Debug for SharedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedQueue")
    }
}

impl SharedQueue {
    pub(crate) fn push(&self, job: SharedJob) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push(job);
        }
    }

    pub(crate) fn take(&self) -> Vec<SharedJob> {
        let Ok(mut waiting) = self.waiting.lock() else {
            return Vec::new();
        };
        let at = waiting.len().min(MAX_BATCH);
        let rest = waiting.split_off(at);
        std::mem::replace(&mut *waiting, rest)
    }
}

impl SharedJob {
    /// Runs the change over `snapshot`.
    pub(crate) fn decide(&self, snapshot: &Snapshot) -> Answer {
        (self.change)(snapshot)
    }
}

/// Answers each job of a batch: its own answer when the batch committed, the
/// batch's failure otherwise (jobs not reached included).
pub(crate) fn answer_all(batch: Vec<SharedJob>, mut answers: Vec<Answer>, outcome: &Result<()>) {
    while answers.len() < batch.len() {
        answers.push(Err(Error::Unavailable("not run".into())));
    }
    for (job, answer) in batch.into_iter().zip(answers) {
        let answer = match outcome {
            Ok(()) => answer,
            Err(err) => Err(Error::Unavailable(format!("not committed: {err}"))),
        };
        let _ = job.reply.send(answer);
    }
}
