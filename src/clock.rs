//! Whether this computer's clock can be trusted: codes are only as right as
//! the clock, and a request's countdown depends on it too. The background
//! part learns each server's clock (a push session's hello, privacyIDEA's
//! HTTP `Date`) and whether the system synchronises with a time server
//! (systemd-timedated's `NTPSynchronized`); this module turns that into a
//! warning. It never changes the clock.

use std::collections::BTreeMap;

/// How far the clock may be off before the user is warned, in seconds. A
/// TOTP code lives 30 s and servers usually accept the one before and after,
/// so 10 s is still harmless, and 1 s of measuring error stays well inside.
pub const TOLERANCE: i64 = 10;

/// Reads the time: how the domain takes the clock as a parameter where one
/// instant is not enough (a connection that lives for hours, a poll that
/// measures the server's clock once its answer is in). The fronts pass
/// `jiff::Timestamp::now`; tests pass a fixed time.
pub type Now = fn() -> jiff::Timestamp;

/// What is known about the clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clock {
    /// Each server's clock minus ours, in seconds, by the server's name.
    offsets: BTreeMap<String, i64>,
    /// Whether the system says it is synchronised with a time server.
    pub synchronized: Option<bool>,
}

impl Clock {
    /// What `server` says now.
    pub fn observe(&mut self, server: &str, offset: i64) {
        self.offsets.insert(server.to_owned(), offset);
    }

    /// Forgets a server (its account was removed).
    pub fn forget(&mut self, server: &str) {
        self.offsets.remove(server);
    }

    /// The server whose clock differs most from ours, and by how much.
    pub fn worst(&self) -> Option<(&str, i64)> {
        self.offsets.iter().max_by_key(|(_, offset)| offset.unsigned_abs()).map(|(server, offset)| (server.as_str(), *offset))
    }

    /// The warning to show, when the clock is off by more than [`TOLERANCE`].
    pub fn warning(&self) -> Option<String> {
        let (server, offset) = self.worst().filter(|(_, offset)| offset.unsigned_abs() > TOLERANCE.unsigned_abs())?;
        // The server's clock is ahead of ours: ours is behind.
        let direction = if offset > 0 { "behind" } else { "ahead of" };
        let sync = match self.synchronized {
            Some(false) => " It is not synchronised with a time server.",
            _ => "",
        };
        Some(format!(
            "This computer's clock is {} {direction} {server}'s.{sync} Codes may be refused and requests may seem to expire early or late. Turn on automatic time (your desktop's Date & Time settings, or `timedatectl set-ntp true`).",
            span(offset.unsigned_abs()),
        ))
    }

    /// One line for the settings page.
    pub fn summary(&self) -> String {
        let sync = match self.synchronized {
            Some(true) => "synchronised with a time server",
            Some(false) => "not synchronised with a time server",
            None => "synchronisation not known (no time service answered)",
        };
        match self.worst() {
            // Offsets are whole seconds on both sides: 1 s is measuring error.
            Some((server, offset)) if offset.unsigned_abs() <= 1 => format!("Clock: {sync}; within 1 s of {server}'s"),
            Some((server, offset)) => {
                format!("Clock: {sync}; {} {} {server}'s", span(offset.unsigned_abs()), if offset > 0 { "behind" } else { "ahead of" })
            }
            None => format!("Clock: {sync}"),
        }
    }
}

/// "42 s", "3 min 5 s", "2 h 0 min".
fn span(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_within_tolerance_says_nothing() {
        let mut clock = Clock::default();
        assert_eq!(clock.warning(), None);
        clock.observe("Contoso", 10);
        clock.observe("Fabrikam", -9);
        assert_eq!(clock.warning(), None);
        assert_eq!(clock.summary(), "Clock: synchronisation not known (no time service answered); 10 s behind Contoso's");
        clock.forget("Contoso");
        clock.observe("Fabrikam", 1);
        clock.synchronized = Some(true);
        assert_eq!(clock.summary(), "Clock: synchronised with a time server; within 1 s of Fabrikam's");
    }

    #[test]
    fn the_worst_server_is_named_with_the_direction_and_the_fix() {
        let mut clock = Clock { synchronized: Some(false), ..Clock::default() };
        clock.observe("Contoso", 3);
        clock.observe("Fabrikam", -185);
        let warning = clock.warning().unwrap();
        assert!(warning.starts_with("This computer's clock is 3 min 5 s ahead of Fabrikam's. It is not synchronised"), "{warning}");
        assert!(warning.contains("timedatectl set-ntp true"), "{warning}");
        clock.observe("Fabrikam", 7300);
        assert!(clock.warning().unwrap().starts_with("This computer's clock is 2 h 1 min behind Fabrikam's."));
        clock.forget("Fabrikam");
        assert_eq!(clock.warning(), None);
    }
}
