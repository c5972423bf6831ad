//! Work that many callers need done *after* they asked, done once for all of them
//! (single flight): a caller waits for a round that began after it arrived, and
//! runs one itself if none did. Reading the cluster version for a burst of reads,
//! or reconciling for a burst of registrations, then costs one round, not one per
//! caller.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Mutex;

/// Rounds of one kind of work, with the last one's answer.
#[derive(Debug, Default)]
pub(crate) struct Rounds<T> {
    /// Counts the rounds begun.
    begun: AtomicU64,
    /// The number of the last round that completed, and its answer.
    last: Mutex<(u64, Option<T>)>,
}

impl<T: Clone> Rounds<T> {
    /// The answer of a round of `work` that began after this call did: one that
    /// another caller ran, or one run now. A failed round answers only its caller.
    pub(crate) async fn after_now<F, Fut, E>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let needed = self.begun.load(Ordering::Acquire) + 1;
        let mut last = self.last.lock().await;
        if last.0 >= needed
            && let Some(answer) = &last.1
        {
            return Ok(answer.clone());
        }
        let round = self.begun.fetch_add(1, Ordering::AcqRel) + 1;
        let answer = work().await?;
        *last = (round, Some(answer.clone()));
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn callers_that_arrive_during_a_round_share_the_next_one() {
        let rounds = Arc::new(Rounds::<usize>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        // the first round is held open while eight more callers arrive
        let first = {
            let (rounds, runs, gate) = (rounds.clone(), runs.clone(), gate.clone());
            tokio::spawn(async move {
                rounds
                    .after_now(|| async move {
                        gate.notified().await;
                        Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
            })
        };
        tokio::task::yield_now().await;
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let (rounds, runs) = (rounds.clone(), runs.clone());
                tokio::spawn(async move {
                    rounds
                        .after_now(|| async move {
                            Ok::<_, ()>(runs.fetch_add(1, Ordering::SeqCst) + 1)
                        })
                        .await
                })
            })
            .collect();
        tokio::task::yield_now().await;
        gate.notify_one();
        assert_eq!(first.await.expect("join"), Ok(1));
        for caller in waiting {
            assert_eq!(
                caller.await.expect("join"),
                Ok(2),
                "none is answered by round 1"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "eight callers, one round");
    }
}
