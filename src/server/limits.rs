//! Rate limits and the audit log, all in memory and all bounded:
//! - [`Window`]: at most N events per key in any sliding 60 s (activation
//!   attempts per client address, demo pushes per user and per address), so
//!   no burst fits across a minute boundary;
//! - [`Backoff`]: wrong TOTP codes per (user, caller). After 3 in a row the
//!   caller waits 1 s, then 2, 4 … up to 5 minutes before its next try is
//!   even checked; another caller (the real user) is not slowed;
//! - [`Audit`]: refusals (401, 429, failed activations and signatures) are
//!   logged, at most 10 lines per kind a minute, then one line that counts
//!   the rest, so one client cannot flood the log. Lines never hold tokens
//!   or codes.
//!
//! Times are milliseconds of a monotonic clock ([`millis`]), passed in so
//! that tests can move them.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Keys kept at most; past that the oldest-looking half is dropped (an
/// attacker with many addresses then loses history, not the server memory).
const MAX_KEYS: usize = 100_000;

/// Milliseconds since the first call: monotonic, unlike Unix time.
pub fn millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// At most `limit` events per key in any `window_ms`.
pub struct Window<K> {
    limit: usize,
    window_ms: u64,
    events: Mutex<HashMap<K, VecDeque<u64>>>,
}

impl<K: Eq + Hash + Clone> Window<K> {
    pub fn new(limit: u32, window_ms: u64) -> Self {
        Window { limit: limit as usize, window_ms, events: Mutex::new(HashMap::new()) }
    }

    /// Counts an event for `key` at `now`; false (and not counted) when the
    /// key already had `limit` in the last window.
    pub fn allow(&self, key: &K, now: u64) -> bool {
        let Ok(mut events) = self.events.lock() else { return false };
        if events.len() >= MAX_KEYS {
            events.retain(|_, times| times.back().is_some_and(|last| last + self.window_ms > now));
            if events.len() >= MAX_KEYS {
                let drop: Vec<K> = events.keys().take(MAX_KEYS / 2).cloned().collect();
                for key in drop {
                    events.remove(&key);
                }
            }
        }
        let times = events.entry(key.clone()).or_default();
        // Not `time <= since`: in a process's first window `since`
        // saturates at 0, and the very first event (at 0) fell out at once.
        while times.front().is_some_and(|time| time + self.window_ms <= now) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// Milliseconds to wait after `failures` wrong tries in a row: nothing for
/// the first two, then 1 s doubling to 5 minutes.
pub fn backoff_wait(failures: u32) -> u64 {
    if failures < FREE_FAILURES { 0 } else { 1000u64.checked_shl(failures - FREE_FAILURES).unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS) }
}

/// Exponential backoff per key after repeated failures.
pub struct Backoff<K> {
    state: Mutex<HashMap<K, (u32, u64)>>,
}

impl<K> Default for Backoff<K> {
    fn default() -> Self {
        Backoff { state: Mutex::new(HashMap::new()) }
    }
}

/// Failures in a row that cost nothing: a typo or two.
const FREE_FAILURES: u32 = 3;
const MAX_WAIT_MS: u64 = 5 * 60 * 1000;

impl<K: Eq + Hash + Clone> Backoff<K> {
    /// Milliseconds `key` must still wait before its next try is checked.
    pub fn wait(&self, key: &K, now: u64) -> u64 {
        let Ok(state) = self.state.lock() else { return MAX_WAIT_MS };
        state.get(key).map_or(0, |(_, until)| until.saturating_sub(now))
    }

    pub fn failed(&self, key: &K, now: u64) {
        let Ok(mut state) = self.state.lock() else { return };
        if state.len() >= MAX_KEYS {
            state.retain(|_, (_, until)| *until + MAX_WAIT_MS > now);
            if state.len() >= MAX_KEYS {
                state.clear();
            }
        }
        let (failures, until) = state.entry(key.clone()).or_insert((0, 0));
        *failures += 1;
        if *failures >= FREE_FAILURES {
            *until = now + backoff_wait(*failures);
        }
    }

    pub fn succeeded(&self, key: &K) {
        if let Ok(mut state) = self.state.lock() {
            state.remove(key);
        }
    }
}

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A request without a valid bearer token.
    Unauthorized,
    /// A rate limit or backoff refused a request.
    RateLimited,
    /// An activation with a wrong, used, revoked or expired code.
    Activation,
    /// A device session or answer whose signature did not verify.
    Signature,
    /// A wrong TOTP code.
    Totp,
    /// A wrong app password.
    AppPassword,
    /// A RADIUS datagram dropped: unknown sender, malformed, or without a
    /// right Message-Authenticator.
    Radius,
}

/// Log lines per kind per minute before the rest are only counted.
const LINES_PER_MINUTE: u32 = 10;

#[derive(Default)]
pub struct Audit {
    /// Per kind: (the minute, lines written in it, lines held back).
    minutes: Mutex<HashMap<Refusal, (u64, u32, u64)>>,
}

impl Audit {
    /// Logs a refusal (to standard error, which systemd's journal keeps).
    /// `detail` must hold no token or code.
    pub fn refused(&self, kind: Refusal, peer: IpAddr, detail: &str) {
        if let Some(line) = self.line(kind, peer, detail, millis()) {
            super::log::warn(&line);
        }
    }

    /// The line to write at `now`, if any, with a count of those held back.
    pub fn line(&self, kind: Refusal, peer: IpAddr, detail: &str, now: u64) -> Option<String> {
        let Ok(mut minutes) = self.minutes.lock() else { return None };
        let minute = now / 60_000;
        let (at, written, held) = minutes.entry(kind).or_insert((minute, 0, 0));
        let mut before = String::new();
        if *at != minute {
            if *held > 0 {
                before = format!(" ({held} more {kind:?} refusals were not logged in the minute before)");
            }
            (*at, *written, *held) = (minute, 0, 0);
        }
        if *written >= LINES_PER_MINUTE {
            *held += 1;
            return None;
        }
        *written += 1;
        let detail: String = crate::push::printable(detail).chars().take(200).collect();
        Some(format!("refused {kind:?} from {peer}: {detail}{before}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_slides_so_no_burst_fits_across_a_minute_boundary() {
        let window = Window::new(10, 60_000);
        // Ten at 59.9 s, ten more at 60.1 s: the old fixed minute let all 20 through.
        for _ in 0..10 {
            assert!(window.allow(&"a", 59_900));
        }
        assert!(!window.allow(&"a", 60_100));
        assert!(window.allow(&"b", 60_100), "another key has its own window");
        assert!(!window.allow(&"a", 119_899), "still inside the minute of the ten");
        for _ in 0..10 {
            assert!(window.allow(&"a", 119_901), "a minute after them, all ten are free again");
        }
        assert!(!window.allow(&"a", 119_902));
    }

    /// In a process's first minute too: `millis()` starts at 0 there.
    #[test]
    fn an_event_at_the_first_millisecond_counts() {
        let window = Window::new(3, 60_000);
        for now in [0, 1, 2] {
            assert!(window.allow(&"a", now));
        }
        assert!(!window.allow(&"a", 3), "the event at 0 still counts");
        assert!(window.allow(&"a", 60_000), "and is gone a minute later");
    }

    #[test]
    fn backoff_slows_one_caller_and_not_another() {
        let backoff = Backoff::default();
        let (attacker, user) = (("carol", "203.0.113.9"), ("carol", "198.51.100.4"));
        for _ in 0..3 {
            assert_eq!(backoff.wait(&attacker, 0), 0);
            backoff.failed(&attacker, 0);
        }
        assert_eq!(backoff.wait(&attacker, 0), 1000);
        backoff.failed(&attacker, 1000);
        assert_eq!(backoff.wait(&attacker, 1000), 2000);
        for _ in 0..20 {
            backoff.failed(&attacker, 1000);
        }
        assert_eq!(backoff.wait(&attacker, 1000), MAX_WAIT_MS, "capped at 5 minutes");
        assert_eq!(backoff.wait(&user, 1000), 0, "the real user is not slowed");
        backoff.succeeded(&attacker);
        assert_eq!(backoff.wait(&attacker, 1000), 0);
    }

    #[test]
    fn the_audit_log_writes_ten_lines_a_minute_per_kind_then_counts() {
        let audit = Audit::default();
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        let lines: Vec<_> = (0..50).filter_map(|_| audit.line(Refusal::Signature, peer, "bad envelope\x1b[2J", 1000)).collect();
        assert_eq!(lines.len(), 10);
        assert!(!lines[0].contains('\x1b'), "control characters are not written: {}", lines[0]);
        assert!(audit.line(Refusal::Unauthorized, peer, "POST /api/signins", 1000).is_some(), "each kind has its own budget");
        let next = audit.line(Refusal::Signature, peer, "bad envelope", 61_000).unwrap();
        assert!(next.contains("40 more Signature refusals"), "{next}");
    }
}
