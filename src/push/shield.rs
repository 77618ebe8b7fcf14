//! The push-fatigue shield, on the client side: an attacker who knows a
//! password sends prompt after prompt hoping for a tired "Approve". More
//! than `limit` challenges within `window` seconds flags the later ones, and
//! the prompt says so.

use std::collections::VecDeque;

/// Counts recent challenges for one account.
#[derive(Debug, Clone)]
pub struct Shield {
    limit: usize,
    window: i64,
    seen: VecDeque<i64>,
}

impl Default for Shield {
    /// More than 3 challenges within 5 minutes.
    fn default() -> Self {
        Shield::new(3, 5 * 60)
    }
}

impl Shield {
    pub fn new(limit: usize, window_seconds: i64) -> Self {
        Shield { limit, window: window_seconds, seen: VecDeque::new() }
    }

    /// Records a challenge created at `at` (Unix seconds); true when it is
    /// one too many and should be flagged.
    pub fn observe(&mut self, at: i64) -> bool {
        while self.seen.front().is_some_and(|&first| first <= at - self.window) {
            self.seen.pop_front();
        }
        self.seen.push_back(at);
        self.seen.len() > self.limit
    }

    /// A sentence for a flagged prompt.
    pub fn warning(&self) -> String {
        format!(
            "{} sign-in requests in the last {} minutes. If you are not signing in yourself again and again, someone else may have your password: deny, and report it with \"It wasn't me\".",
            self.seen.len(),
            self.window / 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fourth_within_five_minutes_is_flagged_and_the_window_slides() {
        let mut shield = Shield::default();
        assert!(!shield.observe(1000));
        assert!(!shield.observe(1060));
        assert!(!shield.observe(1120));
        assert!(shield.observe(1180), "a fourth within 5 minutes");
        assert!(shield.warning().starts_with("4 sign-in requests in the last 5 minutes"));
        // 5 minutes after the first ones they no longer count.
        assert!(!shield.observe(1500));
    }
}
