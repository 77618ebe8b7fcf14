//! Replays the fuzz corpus (tests/fuzz/corpus/TARGET/*) through the fuzz
//! targets' own bodies on stable, so CI proves none of those inputs panics
//! without nightly or libFuzzer. The fuzzing itself is tests/fuzz/run.

#[path = "fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Every input of `target`'s corpus, each on its own so a panic names it.
fn replay(target: &str) {
    let (_, body) = targets::TARGETS.iter().find(|(name, _)| *name == target).expect("a target of that name");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let files = inputs(&dir);
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in files {
        let data = std::fs::read(&file).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(std::string::ToString::to_string))
                .unwrap_or_default();
            panic!("{target}: {} panics: {message}", file.display());
        }
    }
}

/// Each target has a corpus and a test here (a new target needs both).
#[test]
fn every_target_has_a_corpus() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus");
    for (name, _) in targets::TARGETS {
        assert!(corpus.join(name).is_dir(), "no corpus for {name}");
    }
    assert_eq!(targets::TARGETS.len(), 9, "a target was added or removed: update the tests below");
}

#[test]
fn uri() {
    replay("uri");
}

#[test]
fn migration() {
    replay("migration");
}

#[test]
fn transfer() {
    replay("transfer");
}

#[test]
fn vault() {
    replay("vault");
}

#[test]
fn push() {
    replay("push");
}

#[test]
fn privacyidea_link() {
    replay("privacyidea_link");
}

#[test]
fn privacyidea_challenge() {
    replay("privacyidea_challenge");
}

#[test]
fn scan_image() {
    replay("scan_image");
}

#[test]
fn scan_pixels() {
    replay("scan_pixels");
}
