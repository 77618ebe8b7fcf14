//! QR scanning benchmark on the corpus in tests/corpus (run tests/bench/scan,
//! which also runs zxing-cpp and zbarimg and prints the side-by-side table).
//!
//! Prints one JSON object per image, in the shape tests/bench/scan-table.py
//! reads: decoder, file, payloads, load_ms (file to grey pixels) and
//! decode_ms (grey pixels to payloads), and the stages that ran. Each is the
//! fastest of --rounds runs.
//!
//! `--stages Threshold,Inverted` runs only those stages, in that order, under
//! the decoder name "countersign[Threshold,Inverted]"; `--each` runs every
//! stage on its own, to see what each one adds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use countersign::scan::{self, STAGES, Stage};

fn main() {
    let mut corpus = PathBuf::from("tests/corpus");
    let mut rounds = 3;
    let mut plans: Vec<(String, Vec<Stage>)> = vec![("countersign".into(), STAGES.to_vec())];
    let mut budget = scan::cascade::BUDGET;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--corpus" => corpus = args.next().expect("--corpus DIR").into(),
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N"),
            "--budget-ms" => budget = Duration::from_millis(args.next().and_then(|n| n.parse().ok()).expect("--budget-ms N")),
            "--stages" => {
                let list = args.next().expect("--stages A,B");
                plans = vec![(format!("countersign[{list}]"), list.split(',').map(stage).collect())];
            }
            "--each" => plans = STAGES.iter().map(|s| (format!("{s:?}"), vec![*s])).collect(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(corpus.join("expected.json")).expect("expected.json")).expect("JSON");
    for name in expected.keys() {
        let path = corpus.join(name);
        for (decoder, stages) in &plans {
            let mut best: Option<(f64, f64, Vec<String>, Vec<String>)> = None;
            for _ in 0..rounds {
                let start = Instant::now();
                let image = scan::load_file(&path).expect("corpus image loads");
                let loaded = Instant::now();
                let found = scan::cascade::run(&image, stages, budget);
                let done = Instant::now();
                let stages: Vec<String> = found.stages.iter().map(|s| format!("{s:?}")).collect();
                let sample = (ms(loaded - start), ms(done - loaded), found.payloads, stages);
                if best.as_ref().is_none_or(|b| sample.0 + sample.1 < b.0 + b.1) {
                    best = Some(sample);
                }
            }
            let (load_ms, decode_ms, payloads, stages) = best.expect("at least one round");
            println!(
                "{}",
                serde_json::json!({"decoder": decoder, "file": name, "payloads": payloads, "load_ms": load_ms, "decode_ms": decode_ms, "stages": stages})
            );
        }
    }
}

fn stage(name: &str) -> Stage {
    *STAGES.iter().find(|s| format!("{s:?}").eq_ignore_ascii_case(name)).unwrap_or_else(|| panic!("no stage {name}"))
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}
