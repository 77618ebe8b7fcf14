//! Keeping a long-lived connection going (feature `client`): the backoff
//! between tries, saying when the next one is, and stopping once no one
//! listens. Every connection goes through here: Countersign's WebSocket
//! ([`crate::push::client::watch`]) and privacyIDEA's polling
//! ([`crate::privacyidea::client::watch`], [`crate::privacyidea::client::Poller::next`]).

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

/// The longest wait between two tries.
pub const MAX: Duration = Duration::from_secs(60);

/// How widely the first try after a success is spread: within a second
/// either side of the backoff's first wait.
pub const SPREAD: Duration = Duration::from_secs(2);

/// Backoff between tries: about `first`, then doubling to [`MAX`], back to
/// `first` after a success. Every wait is drawn at random, so that the
/// devices of a server instance that died do not all come back in the same
/// millisecond: the first within [`SPREAD`] around `first` (0 to 2 s for a
/// WebSocket's 1 s), the later ones between three quarters of their step
/// and all of it (1.5 to 2 s, 3 to 4 s, ... 45 to 60 s), so that devices
/// that keep failing together drift apart instead of staying in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    /// The step of the next wait; `None` when it is the first.
    next: Option<Duration>,
}

impl Backoff {
    /// Waits about `first` (at least 1 s, so never a busy loop on average)
    /// after the first failure. A `first` over [`MAX`] is kept for that one
    /// wait only.
    pub fn new(first: Duration) -> Self {
        Backoff { first: first.max(Duration::from_secs(1)), next: None }
    }

    /// After a success: the next failure waits about `first` again.
    pub fn reset(&mut self) {
        self.next = None;
    }

    /// The wait before the next try, drawn at random; the one after it is
    /// drawn from twice the step, up to [`MAX`].
    pub fn step(&mut self) -> Duration {
        self.step_with(random())
    }

    /// [`Backoff::step`] with the random draw given: 0 is the shortest wait
    /// of the range, `u64::MAX` the longest.
    fn step_with(&mut self, random: u64) -> Duration {
        let (low, high) = match self.next {
            None => {
                let half = SPREAD / 2;
                (self.first.saturating_sub(half), self.first.saturating_add(half))
            }
            Some(step) => (step - step / 4, step),
        };
        let step = self.next.unwrap_or(self.first);
        self.next = Some(step.saturating_mul(2).min(MAX));
        // The draw as a fraction of the range, to the millisecond.
        let span = (high - low).as_millis();
        let offset = span.saturating_mul(u128::from(random)) >> 64;
        low + Duration::from_millis(u64::try_from(offset).unwrap_or(0))
    }

    /// Says why the connection is down and when it is tried again (the
    /// update `down` makes of the wait), then waits that long; false when
    /// no one listens any more (stop then), which it notices at once, not
    /// at the end of the wait.
    pub async fn wait<T>(&mut self, updates: &mpsc::Sender<T>, down: impl FnOnce(Duration) -> T) -> bool {
        let wait = self.step();
        if updates.send(down(wait)).await.is_err() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = updates.closed() => false,
        }
    }

    /// For a caller with no one to tell but the person at the terminal:
    /// says on standard error why the try failed and when the next one is
    /// ("countersign: WHY; retrying in 1.3 s"), then waits that long.
    pub async fn pause(&mut self, why: impl Display) {
        let wait = self.step();
        eprintln!("countersign: {}", notice(why, wait));
        tokio::time::sleep(wait).await;
    }
}

/// Why a try failed and when the next one is: "WHY; retrying in 1.3 s".
pub fn notice(why: impl Display, wait: Duration) -> String {
    format!("{why}; retrying in {}", seconds(wait))
}

/// A wait for people: "0.4 s", "1.3 s" under ten seconds, then whole
/// seconds ("45 s").
pub fn seconds(wait: Duration) -> String {
    if wait < Duration::from_secs(10) {
        format!("{:.1} s", wait.as_secs_f64())
    } else {
        format!("{} s", (wait + Duration::from_millis(500)).as_secs())
    }
}

/// A random `u64` from the operating system; without one (it does not
/// fail on the platforms we build for) every wait is the middle of its
/// range, as it would be on average.
fn random() -> u64 {
    getrandom::u64().unwrap_or(u64::MAX / 2)
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

    const SECOND: Duration = Duration::from_secs(1);

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// The waits of `backoff`'s next `n` steps, every draw `random`.
    fn waits(backoff: &mut Backoff, n: usize, random: u64) -> Vec<Duration> {
        (0..n).map(|_| backoff.step_with(random)).collect()
    }

    #[test]
    fn the_first_retry_is_spread_over_two_seconds_then_the_wait_doubles_to_a_minute() {
        // The shortest draws, the middle ones, the longest: 1 s doubling to a
        // minute, the first within a second of 1 s, the later ones between
        // three quarters of their step and all of it.
        let shortest = [0, 1500, 3000, 6000, 12_000, 24_000, 45_000, 45_000].map(ms);
        let middle = [1000, 1750, 3500, 7000, 14_000, 28_000, 52_500, 52_500].map(ms);
        let longest = [1999, 1999, 3999, 7999, 15_999, 31_999, 59_999, 59_999].map(ms);
        for (random, expected) in [(0, shortest), (1 << 63, middle), (u64::MAX, longest)] {
            assert_eq!(waits(&mut Backoff::new(SECOND), 8, random), expected, "draw {random:#x}");
        }
        // After a success it starts over, spread again.
        let mut backoff = Backoff::new(SECOND);
        waits(&mut backoff, 5, 0);
        backoff.reset();
        assert_eq!(backoff.step_with(u64::MAX), ms(1999));
        assert_eq!(backoff.step_with(0), ms(1500));
    }

    #[test]
    fn the_draws_are_random_and_stay_in_their_ranges() {
        let mut first = Vec::new();
        for _ in 0..64 {
            let mut backoff = Backoff::new(SECOND);
            first.push(backoff.step());
            for step in [2, 4, 8, 16, 32, 60, 60].map(Duration::from_secs) {
                let wait = backoff.step();
                assert!(wait >= step - step / 4 && wait < step, "{wait:?} for a step of {step:?}");
            }
        }
        assert!(first.iter().all(|wait| *wait < 2 * SECOND), "{first:?}");
        // 64 draws of 2,000 possible waits: not all the same.
        assert!(first.iter().any(|wait| *wait != first[0]), "{first:?}");
    }

    #[test]
    fn a_longer_first_wait_is_spread_around_it_and_never_a_busy_loop() {
        // privacyIDEA's polling starts from its interval.
        assert_eq!(waits(&mut Backoff::new(3 * SECOND), 6, 0), [2000, 4500, 9000, 18_000, 36_000, 45_000].map(ms));
        assert_eq!(waits(&mut Backoff::new(3 * SECOND), 6, u64::MAX), [3999, 5999, 11_999, 23_999, 47_999, 59_999].map(ms));
        // Never under a second's step, on average; a long first wait is kept once.
        assert_eq!(waits(&mut Backoff::new(Duration::ZERO), 2, u64::MAX), [ms(1999), ms(1999)]);
        assert_eq!(waits(&mut Backoff::new(120 * SECOND), 2, 0), [ms(119_000), ms(45_000)]);
        assert!(Backoff::new(Duration::MAX).step_with(u64::MAX) >= Duration::MAX - SECOND, "no overflow");
    }

    #[test]
    fn waits_read_in_tenths_then_whole_seconds() {
        assert_eq!(notice("the connection was closed", ms(1300)), "the connection was closed; retrying in 1.3 s");
        assert_eq!(seconds(ms(0)), "0.0 s");
        assert_eq!(seconds(ms(1349)), "1.3 s");
        assert_eq!(seconds(ms(9949)), "9.9 s");
        assert_eq!(seconds(ms(10_000)), "10 s");
        assert_eq!(seconds(ms(44_500)), "45 s");
        assert_eq!(seconds(ms(60_000)), "60 s");
    }

    /// The bound only turns a hang into a failure: every case ends at once.
    const HANG: Duration = Duration::from_secs(30);

    #[tokio::test]
    async fn the_wait_says_how_long_and_stops_when_no_one_listens() {
        // No one listening before it starts: it stops without waiting.
        let (updates, receiver) = mpsc::channel::<Duration>(4);
        drop(receiver);
        assert!(!tokio::time::timeout(HANG, Backoff::new(60 * SECOND).wait(&updates, |wait| wait)).await.unwrap());
        // The listener goes during the minute's wait: it stops then.
        let (updates, mut receiver) = mpsc::channel::<Duration>(4);
        let listener = tokio::spawn(async move { receiver.recv().await });
        let mut backoff = Backoff::new(60 * SECOND);
        assert!(!tokio::time::timeout(HANG, backoff.wait(&updates, |wait| wait)).await.unwrap());
        let said = listener.await.unwrap().expect("the notice said when the next try is");
        assert!(said >= 59 * SECOND && said < 61 * SECOND, "{said:?}");
        assert_eq!(backoff.step_with(u64::MAX), ms(59_999), "the wait still counted: the next is a doubled step");
    }

    #[tokio::test]
    async fn a_spawned_task_stops_when_its_stream_is_dropped() {
        use futures_util::StreamExt;
        let (stopped, said) = tokio::sync::oneshot::channel();
        let mut stream = Box::pin(spawn(|updates: mpsc::Sender<u32>| async move {
            let mut backoff = Backoff::new(60 * SECOND);
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
