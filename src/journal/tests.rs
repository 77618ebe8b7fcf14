//! The journal at fixed times: round trips, every-byte tampering, removed and
//! reordered lines, concurrent writers, bounds.

use super::*;

fn record(n: i64, event: Event) -> Record {
    Record {
        at: 1_796_290_000 + n,
        request: format!("si_{n:04}"),
        account: "Contoso (alice)".into(),
        app: "Contoso VPN".into(),
        user: "alice".into(),
        ip: "203.0.113.7".into(),
        location: "Zurich, Switzerland".into(),
        event,
        detail: String::new(),
    }
}

fn journal_with(records: usize) -> (tempfile::TempDir, PathBuf, SecretKey) {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault.cvault");
    let key = SecretKey::from_bytes([3; 32]);
    create(&vault, &key.public()).unwrap();
    for n in 0..records {
        append(&vault, &record(n as i64, if n % 2 == 0 { Event::Received } else { Event::Approved })).unwrap();
    }
    (dir, vault, key)
}

#[test]
fn records_come_back_in_order_and_the_chain_holds() {
    let (_dir, vault, key) = journal_with(5);
    let history = read(&vault, &key).unwrap();
    assert_eq!(history.broken, None);
    assert_eq!(history.records.len(), 5);
    assert_eq!(history.records[3], record(3, Event::Approved));
    // Creating it again with the same key keeps it; another key is refused.
    create(&vault, &key.public()).unwrap();
    assert_eq!(read(&vault, &key).unwrap().records.len(), 5);
    assert!(matches!(create(&vault, &SecretKey::from_bytes([4; 32]).public()), Err(Error::OtherKey { .. })));
    assert!(matches!(read(&vault, &SecretKey::from_bytes([4; 32])), Err(Error::OtherKey { .. })));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(path(&vault)).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn no_journal_is_an_empty_history() {
    let dir = tempfile::tempdir().unwrap();
    let vault = dir.path().join("vault.cvault");
    assert_eq!(read(&vault, &SecretKey::from_bytes([3; 32])).unwrap(), History::default());
    assert!(append(&vault, &record(0, Event::Received)).is_err(), "appending needs a journal");
}

#[test]
fn every_changed_byte_is_reported() {
    let (_dir, vault, key) = journal_with(3);
    let original = std::fs::read(path(&vault)).unwrap();
    let header_end = original.iter().position(|b| *b == b'\n').unwrap();
    for at in 0..original.len() {
        let mut changed = original.clone();
        // A byte that keeps the file UTF-8 and the line structure where it can.
        changed[at] = match changed[at] {
            b'\n' => b' ',
            b'0'..=b'8' => changed[at] + 1,
            b'9' => b'0',
            b'a'..=b'y' | b'A'..=b'Y' => changed[at] + 1,
            b'z' | b'Z' => b'a',
            _ => b'x',
        };
        std::fs::write(path(&vault), &changed).unwrap();
        match read(&vault, &key) {
            Ok(history) => assert!(history.broken.is_some() || history.records.len() != 3, "byte {at} changed and nothing was reported"),
            Err(error) => assert!(at <= header_end, "byte {at}: {error}"),
        }
    }
}

#[test]
fn removed_reordered_and_cut_lines_are_reported() {
    let (_dir, vault, key) = journal_with(4);
    let original = std::fs::read_to_string(path(&vault)).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let write = |lines: &[&str]| std::fs::write(path(&vault), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    write(&[lines[0], lines[1], lines[3], lines[4]]);
    assert_eq!(read(&vault, &key).unwrap().broken.map(|b| b.line), Some(2), "a removed record");
    write(&[lines[0], lines[2], lines[1], lines[3], lines[4]]);
    assert_eq!(read(&vault, &key).unwrap().broken.map(|b| b.line), Some(1), "reordered records");
    write(&[lines[0], lines[2], lines[3], lines[4]]);
    assert!(read(&vault, &key).unwrap().broken.is_some(), "the first record removed");
    // A last line cut short by a crash: reported, and later appends still chain.
    std::fs::write(path(&vault), &original[..original.len() - 20]).unwrap();
    append(&vault, &record(9, Event::Denied)).unwrap();
    let history = read(&vault, &key).unwrap();
    assert_eq!(history.broken.map(|b| b.line), Some(4));
    assert_eq!(history.records.last(), Some(&record(9, Event::Denied)));
}

#[test]
fn long_fields_are_cut_and_nothing_is_in_the_clear() {
    let (_dir, vault, key) = journal_with(0);
    let mut long = record(1, Event::Denied);
    long.app = "A".repeat(10_000);
    long.detail = "é".repeat(1_000);
    append(&vault, &long).unwrap();
    let history = read(&vault, &key).unwrap();
    assert_eq!(history.records[0].app.chars().count(), FIELD_LIMIT);
    assert_eq!(history.records[0].detail.chars().count(), FIELD_LIMIT);
    let text = std::fs::read_to_string(path(&vault)).unwrap();
    assert!(!text.contains("Contoso") && !text.contains("alice") && !text.contains("AAAA"), "{text}");
}

#[test]
fn writers_at_the_same_moment_keep_the_chain() {
    let (_dir, vault, key) = journal_with(0);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let vault = vault.clone();
            std::thread::spawn(move || {
                for n in 0..10 {
                    append(&vault, &record(w * 100 + n, Event::Received)).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let history = read(&vault, &key).unwrap();
    assert_eq!(history.broken, None);
    assert_eq!(history.records.len(), 40);
}

#[test]
fn debug_never_shows_the_secret_key() {
    let key = SecretKey::from_bytes([3; 32]);
    let shown = format!("{key:?}");
    assert!(!shown.contains(&base64::encode([3u8; 32])), "{shown}");
}

#[test]
fn renumbering_the_records_after_a_removed_one_is_reported() {
    let (_dir, vault, key) = journal_with(4);
    let text = std::fs::read_to_string(path(&vault)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Record 2 goes; the lines after it get the numbers and links a reader
    // expects, as someone who cannot open the boxes would rewrite them.
    lines.remove(2);
    for at in 2..lines.len() {
        let mut line: Line = serde_json::from_str(&lines[at]).unwrap();
        line.n = at as u64;
        line.prev = digest(lines[at - 1].as_bytes());
        lines[at] = serde_json::to_string(&line).unwrap();
    }
    std::fs::write(path(&vault), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let history = read(&vault, &key).unwrap();
    assert_eq!(
        history.broken.as_ref().map(|b| (b.line, b.reason.as_str())),
        Some((2, "its number or link was changed: records were removed, added or reordered"))
    );
    assert_eq!(history.records.len(), 3, "the records that stay are still shown");
}
