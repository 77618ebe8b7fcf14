//! The QR corpus (tests/corpus, rebuilt by tests/corpus/make): every image
//! must give exactly its expected payloads: all of them, and nothing else.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use countersign::scan::{self, STAGES};

/// Images no decoder measured reads (zxing-cpp 3.1.1 and zbarimg 0.23.92
/// miss it too, see tests/bench/scan); they must give no payload at all.
const KNOWN_MISSES: &[&str] = &["blurred/01.png"];

#[test]
fn every_corpus_image_gives_exactly_its_payloads() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected.len(), 96);
    let mut failures = Vec::new();
    for (name, payloads) in &expected {
        let image = scan::load_file(&corpus.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // No time budget that a slow debug build could run into: the result
        // must not depend on the machine's speed.
        let found = scan::cascade::run(&image, &STAGES, Duration::from_secs(3600));
        assert!(!found.timed_out);
        let found: BTreeSet<&str> = found.payloads.iter().map(String::as_str).collect();
        let mut want: BTreeSet<&str> = payloads.as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
        if KNOWN_MISSES.contains(&name.as_str()) {
            want.clear();
        }
        if found != want {
            failures.push(format!("{name}: expected {want:?}, found {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_time_budget_stops_the_search() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let image = scan::load_file(&corpus.join("none/00.png")).unwrap();
    let found = scan::cascade::run(&image, &STAGES, Duration::ZERO);
    assert!(found.timed_out && found.stages.is_empty() && found.payloads.is_empty());
    let found = scan::cascade::run(&image, &STAGES, Duration::from_secs(3600));
    assert!(!found.timed_out && found.stages.len() > 5 && found.payloads.is_empty(), "{found:?}");
}
