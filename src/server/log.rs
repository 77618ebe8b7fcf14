//! The server's log, on standard error (which systemd's journal keeps):
//! `countersign-server: MESSAGE` lines, or with `json_logs` one JSON object
//! per line, `{"ts_ms":…,"level":"info|warn|error","message":"…"}`, for a
//! log shipper. Callers never put a token, code, password or secret in a
//! message.

use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// Writes JSON lines from now on (set once, at start).
pub fn use_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

pub fn info(message: &str) {
    write("info", message);
}

pub fn warn(message: &str) {
    write("warn", message);
}

pub fn error(message: &str) {
    write("error", message);
}

fn write(level: &str, message: &str) {
    eprintln!("{}", line(JSON.load(Ordering::Relaxed), level, message, super::now_millis()));
}

fn line(json: bool, level: &str, message: &str, ts_ms: i64) -> String {
    if json {
        serde_json::json!({ "ts_ms": ts_ms, "level": level, "message": message }).to_string()
    } else {
        format!("countersign-server: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_line_is_one_object_whatever_the_message_holds() {
        let text = line(true, "warn", "refused \"x\"\nsecond line", 1_700_000_000_123);
        assert!(!text.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["level"], "warn");
        assert_eq!(value["message"], "refused \"x\"\nsecond line");
        assert_eq!(value["ts_ms"], 1_700_000_000_123_i64);
        assert_eq!(line(false, "info", "listening", 0), "countersign-server: listening");
    }
}
