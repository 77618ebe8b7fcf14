//! Crash safety and concurrent writers, with real processes: `countersign add`
//! killed at random moments, and two processes adding at the same time.

#![cfg(feature = "cli")]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Sandbox, names};

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let seed = std::env::var("COUNTERSIGN_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1);
        eprintln!("COUNTERSIGN_TEST_SEED={seed}");
        Random(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound.max(1)
    }
}

fn add_uri(name: &str) -> String {
    format!("otpauth://totp/Kill:{name}?secret=JBSWY3DPEHPK3PXP")
}

#[test]
fn killing_add_at_random_moments_never_loses_a_reported_add() {
    let sandbox = Sandbox::new();
    sandbox.init();
    let mut random = Random::seeded();

    // How long one add takes here, so that kills land across its whole run.
    let started = Instant::now();
    sandbox.ok(&["add", "--uri", &add_uri("warmup")]);
    let typical = started.elapsed().as_micros() as u64;
    let mut reported = BTreeSet::from(["warmup".to_owned()]);
    let (mut completed, mut killed) = (0, 0);

    for round in 0..200 {
        let name = format!("acct{round}");
        let mut child = sandbox.command().args(["add", "--uri", &add_uri(&name)]).stdout(std::process::Stdio::piped()).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(random.below(typical * 3 / 2)));
        // SIGKILL: no destructor, no flush, exactly like a power cut for the process.
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        if output.status.success() {
            assert!(String::from_utf8_lossy(&output.stdout).starts_with("Added"));
            reported.insert(name);
            completed += 1;
        } else {
            killed += 1;
        }
        // After every kill the vault opens and holds every add that reported success.
        let present: BTreeSet<String> = names(&sandbox).into_iter().collect();
        let missing: Vec<_> = reported.difference(&present).collect();
        assert!(missing.is_empty(), "round {round}: reported adds missing: {missing:?}");
    }
    eprintln!("{completed} adds completed, {killed} killed mid-way");
    assert!(killed > 0, "no add was interrupted, so the test proved nothing");
}

#[test]
fn two_processes_adding_fifty_each_lose_nothing() {
    let sandbox = Sandbox::new();
    sandbox.init();
    std::thread::scope(|scope| {
        for writer in ["a", "b"] {
            let sandbox = &sandbox;
            scope.spawn(move || {
                for i in 0..50 {
                    sandbox.ok(&["add", "--uri", &add_uri(&format!("{writer}{i}"))]);
                }
            });
        }
    });
    let present: BTreeSet<String> = names(&sandbox).into_iter().collect();
    let expected: BTreeSet<String> = ["a", "b"].iter().flat_map(|w| (0..50).map(move |i| format!("{w}{i}"))).collect();
    assert_eq!(present, expected);
}
