//! Keeping a long-lived connection going (feature `client`): the backoff
//! between tries, saying when the next one is, and stopping once no one
//! listens. Every connection goes through here: Countersign's WebSocket
//! ([`crate::push::client::watch`]) and privacyIDEA's polling
//! ([`crate::privacyidea::client::watch`], [`crate::privacyidea::client::Poller::next`]).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

/// The longest wait between two tries, in seconds.
pub const MAX_SECONDS: u64 = 60;

/// Backoff between tries: from `first` seconds, doubling to
/// [`MAX_SECONDS`], back to `first` after a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: u64,
    next: u64,
}

impl Backoff {
    /// Waits `first` seconds (at least 1) after the first failure. A
    /// `first` over [`MAX_SECONDS`] is kept for that one wait only.
    pub fn new(first: u64) -> Self {
        let first = first.max(1);
        Backoff { first, next: first }
    }

    /// After a success: the next failure waits `first` seconds again.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// The wait before the next try, in seconds; the one after it is twice
    /// as long, up to [`MAX_SECONDS`].
    pub fn step(&mut self) -> u64 {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(MAX_SECONDS);
        wait
    }

    /// Says why the connection is down and when it is tried again (the
    /// update `down` makes of the wait, in seconds), then waits that long;
    /// false when no one listens any more (stop then), which it notices at
    /// once, not at the end of the wait.
    pub async fn wait<T>(&mut self, updates: &mpsc::Sender<T>, down: impl FnOnce(u64) -> T) -> bool {
        let wait = self.step();
        if updates.send(down(wait)).await.is_err() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(wait)) => true,
            () = updates.closed() => false,
        }
    }

    /// For a caller with no one to tell but the person at the terminal:
    /// says on standard error why the try failed and when the next one is
    /// ("countersign: WHY; retrying in N s"), then waits that long.
    pub async fn pause(&mut self, why: impl Display) {
        let wait = self.step();
        eprintln!("countersign: {why}; retrying in {wait} s");
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// Runs a connection's `task` on the caller's tokio runtime, handing it the
/// sender of its updates; returns them as a stream that ends with the task.
/// Once the stream is dropped the task's next send, or its
/// [`Backoff::wait`], fails: it should return then.
pub fn spawn<T, F>(task: impl FnOnce(mpsc::Sender<T>) -> F) -> impl futures_util::Stream<Item = T> + Send + 'static
where
    T: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let (updates, receiver) = mpsc::channel::<T>(64);
    tokio::spawn(task(updates));
    futures_util::stream::unfold(receiver, |mut receiver| async move { receiver.recv().await.map(|update| (update, receiver)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_to_a_minute_and_starts_over_after_a_success() {
        let mut backoff = Backoff::new(1);
        let waits: Vec<u64> = (0..8).map(|_| backoff.step()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.step(), 1);
        // privacyIDEA's polling starts from its interval.
        let mut backoff = Backoff::new(3);
        assert_eq!((0..6).map(|_| backoff.step()).collect::<Vec<_>>(), [3, 6, 12, 24, 48, 60]);
        // Never a busy loop; a long first wait is kept once.
        assert_eq!(Backoff::new(0).step(), 1);
        let mut backoff = Backoff::new(120);
        assert_eq!((backoff.step(), backoff.step()), (120, 60));
    }

    /// The bound only turns a hang into a failure: every case ends at once.
    const HANG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn the_wait_says_how_long_and_stops_when_no_one_listens() {
        // No one listening before it starts: it stops without waiting.
        let (updates, receiver) = mpsc::channel::<u64>(4);
        drop(receiver);
        assert!(!tokio::time::timeout(HANG, Backoff::new(60).wait(&updates, |wait| wait)).await.unwrap());
        // The listener goes during the minute's wait: it stops then.
        let (updates, mut receiver) = mpsc::channel::<u64>(4);
        let listener = tokio::spawn(async move { receiver.recv().await });
        let mut backoff = Backoff::new(60);
        assert!(!tokio::time::timeout(HANG, backoff.wait(&updates, |wait| wait)).await.unwrap());
        assert_eq!(listener.await.unwrap(), Some(60), "the notice said when the next try is");
        assert_eq!(backoff.step(), 60, "the wait still counted");
    }

    #[tokio::test]
    async fn a_spawned_task_stops_when_its_stream_is_dropped() {
        use futures_util::StreamExt;
        let (stopped, said) = tokio::sync::oneshot::channel();
        let mut stream = Box::pin(spawn(|updates: mpsc::Sender<u32>| async move {
            let mut backoff = Backoff::new(60);
            let mut tries = 0;
            loop {
                tries += 1;
                if updates.send(tries).await.is_err() || !backoff.wait(&updates, |_| 0).await {
                    let _ = stopped.send(tries);
                    return;
                }
            }
        }));
        assert_eq!(stream.next().await, Some(1));
        assert_eq!(stream.next().await, Some(0), "the notice of the first wait");
        drop(stream);
        assert_eq!(tokio::time::timeout(HANG, said).await.unwrap(), Ok(1), "stopped during the first wait");
    }
}
