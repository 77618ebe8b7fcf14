//! `/metrics`: what an operator graphs and alerts on, per instance, in the
//! Prometheus text format (OpenMetrics), through the `prometheus-client`
//! crate:
//! - `countersign_connected_devices`: devices with a push session open here;
//! - `countersign_signins_total{outcome}`: sign-ins created here, and
//!   answers recorded here (approved, denied, reported);
//! - `countersign_delivery_seconds`: from a sign-in's creation (on any
//!   instance) to its challenge being written to a device's socket here;
//! - `countersign_database_errors_total`: queries and notifications that failed.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::push::Status;

type Labels = Vec<(&'static str, &'static str)>;

/// Counted wherever a database error surfaces, with or without the state at hand.
static DATABASE_ERRORS: std::sync::LazyLock<Counter> = std::sync::LazyLock::new(Counter::default);

pub fn database_error() {
    DATABASE_ERRORS.inc();
}

pub struct Metrics {
    registry: Registry,
    connected: Gauge,
    signins: Family<Labels, Counter>,
    delivery: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("countersign");
        let connected = Gauge::default();
        let signins = Family::<Labels, Counter>::default();
        // 1 ms to about 16 s.
        let delivery = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let database_errors = DATABASE_ERRORS.clone();
        registry.register("connected_devices", "Devices with a push session open on this instance", connected.clone());
        registry.register("signins", "Sign-ins created, and answers recorded, on this instance", signins.clone());
        registry.register("delivery_seconds", "From a sign-in's creation to its challenge written to a device here", delivery.clone());
        registry.register("database_errors", "Database queries and notifications that failed", database_errors.clone());
        Metrics { registry, connected, signins, delivery }
    }
}

impl Metrics {
    pub fn created(&self) {
        self.signins.get_or_create(&vec![("outcome", "created")]).inc();
    }

    /// An answer recorded here.
    pub fn answered(&self, status: &Status) {
        let outcome = match status {
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Reported => "reported",
            _ => return,
        };
        self.signins.get_or_create(&vec![("outcome", outcome)]).inc();
    }

    pub fn delivered(&self, seconds: f64) {
        self.delivery.observe(seconds.max(0.0));
    }

    pub fn database_error(&self) {
        database_error();
    }

    /// The text `/metrics` answers, with `connected` devices now.
    pub fn render(&self, connected: usize) -> String {
        self.connected.set(i64::try_from(connected).unwrap_or(i64::MAX));
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_has_each_metric_with_what_was_counted() {
        let metrics = Metrics::default();
        metrics.created();
        metrics.created();
        metrics.answered(&Status::Approved);
        metrics.answered(&Status::Pending);
        metrics.delivered(0.003);
        metrics.database_error();
        let text = metrics.render(7);
        for line in [
            "countersign_connected_devices 7",
            "countersign_signins_total{outcome=\"created\"} 2",
            "countersign_signins_total{outcome=\"approved\"} 1",
            "countersign_delivery_seconds_count 1",
            "countersign_delivery_seconds_bucket{le=\"0.004\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
        }
        assert!(!text.contains("pending"), "only answers are counted");
        assert!(text.contains("countersign_database_errors_total "), "{text}");
    }
}
