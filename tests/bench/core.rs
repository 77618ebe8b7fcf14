//! Core benchmarks, printed as a table: code generation, vault open through
//! the keyring slot, password unlock and save, privacyIDEA key and signature. Run `tests/bench/run`, which
//! builds in release and provides a private Secret Service.
//!
//! This measures; it asserts nothing about speed. The targets are
//! printed beside the figures for the reader.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use countersign::account::{Account, Algorithm, Method};
use countersign::otp;
use countersign::privacyidea::DeviceKey;
use countersign::secret::{Password, Secret};
use countersign::vault::{Kdf, Keyring, Locked, Protection, Vault};

struct Row {
    what: String,
    runs: usize,
    median: Duration,
    p95: Duration,
    target: &'static str,
}

fn measure(what: impl Into<String>, runs: usize, target: &'static str, mut once: impl FnMut()) -> Row {
    once(); // warm-up: caches, lazy statics, the first keyring round trip
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            once();
            start.elapsed()
        })
        .collect();
    times.sort();
    let p95 = times[((runs * 95).div_ceil(100)).saturating_sub(1).min(runs - 1)];
    Row { what: what.into(), runs, median: times[runs / 2], p95, target }
}

fn accounts(count: usize) -> Vec<Account> {
    (0..count)
        .map(|i| {
            let mut secret = vec![0u8; 20];
            for (j, byte) in secret.iter_mut().enumerate() {
                *byte = (i * 31 + j * 7) as u8;
            }
            let mut account = Account::totp("Bench", &format!("user{i}@example.com"), Secret::from_bytes(secret));
            account.algorithm = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512][i % 3];
            account.method = if i % 10 == 9 { Method::Hotp { counter: i as u64 } } else { Method::Totp { period: 30 } };
            account
        })
        .collect()
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 30 };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut rows = Vec::new();

    let many = accounts(10_000);
    rows.push(measure("codes for 10,000 accounts (1/3 each SHA-1/256/512)", runs * 3, "< 10 ms", || {
        for account in &many {
            black_box(otp::code(account, black_box(now)));
        }
    }));

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.cvault");
    let keyring_note;
    let connect = Instant::now();
    let keyring = match Keyring::system() {
        Ok(keyring) => {
            keyring_note = format!("Secret Service (connect: {:.1} ms, once per process)", connect.elapsed().as_secs_f64() * 1e3);
            keyring
        }
        Err(error) => {
            keyring_note = format!("keyring-core's in-memory mock store, because {error}");
            keyring_core::set_default_store(keyring_core::mock::Store::new().expect("mock store"));
            Keyring::with_current_store()
        }
    };
    let password = Password::new("benchmark password".into());
    let mut vault =
        Vault::create(&path, Protection { password: Some((password.clone(), Kdf::default())), keyring: Some(&keyring) }).expect("create");
    vault.add(accounts(1_000), now).expect("add 1,000 accounts");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    rows.push(measure("open a 1,000-account vault via the keyring slot", runs, "< 50 ms", || {
        let vault = Locked::read(&path).and_then(|l| l.unlock_with_keyring(&keyring)).expect("keyring unlock");
        assert_eq!(vault.entries().len(), 1_000);
    }));
    rows.push(measure("  of which: read + check the file (no keyring)", runs, "", || {
        black_box(Locked::read(&path).expect("read"));
    }));
    let default_kdf = Kdf::default();
    rows.push(measure(
        format!("password unlock, Argon2id {} MiB x {} passes", default_kdf.memory_kib / 1024, default_kdf.passes),
        if quick { 2 } else { 7 },
        "reported",
        || {
            black_box(Locked::read(&path).and_then(|l| l.unlock_with_password(&password)).expect("password unlock"));
        },
    ));
    rows.push(measure("save a 1,000-account vault (lock, re-read, fsync, rename)", runs, "", || {
        vault.update(now, |_| Ok(())).expect("save");
    }));

    // How long a password change holds the vault (the window's background
    // work waits this long for it; the UI thread no longer does).
    for keep in [5, 20] {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("held.cvault");
        let mut vault =
            Vault::create(&path, Protection { password: Some((password.clone(), Kdf::default())), keyring: None }).expect("create");
        vault.set_backups(Some(countersign::backup::Policy { dir: dir.path().join("backups"), keep }));
        vault.add(accounts(100), now).expect("add");
        for i in 0..keep {
            vault.update(now + i as u64, |_| Ok(())).expect("save, taking a backup");
        }
        let mut second = now + keep as u64;
        rows.push(measure(
            format!("password change, {keep} backups re-keyed (vault lock held)"),
            if quick { 1 } else { 3 },
            "reported",
            || {
                second += 1;
                vault.set_password(Some((password.clone(), Kdf::default())), None, second).expect("change the password");
            },
        ));
    }

    // privacyIDEA PUSH: the enrollment's key, and the work of one poll.
    rows.push(measure("privacyIDEA: make an RSA-4096 key (enrollment)", if quick { 2 } else { 10 }, "reported", || {
        black_box(DeviceKey::generate().expect("RSA key"));
    }));
    let key = DeviceKey::generate().expect("RSA key");
    rows.push(measure("privacyIDEA: sign a poll (RSA-4096, ring)", runs, "reported", || {
        black_box(key.sign(black_box("PIPU0001|2026-12-03T12:00:00Z")).expect("sign"));
    }));

    println!("Countersign core benchmark ({} build)", if cfg!(debug_assertions) { "DEBUG" } else { "release" });
    println!("keyring: {keyring_note}");
    println!("vault file with 1,000 accounts: {} KiB\n", size / 1024);
    println!("| {:<58} | {:>5} | {:>10} | {:>10} | {:<8} |", "what", "runs", "median", "p95", "target");
    println!("|{:-<60}|{:-<7}|{:-<12}|{:-<12}|{:-<10}|", "", "", "", "", "");
    for row in rows {
        println!(
            "| {:<58} | {:>5} | {:>7.2} ms | {:>7.2} ms | {:<8} |",
            row.what,
            row.runs,
            row.median.as_secs_f64() * 1e3,
            row.p95.as_secs_f64() * 1e3,
            row.target
        );
    }
}
