//! Herald's metrics registry and its Prometheus text rendering.
//!
//! Updates are a relaxed atomic add (the in-flight table takes a short lock), so the hot
//! path stays cheap; [`Metrics::render`] reads everything on scrape. The queue depth
//! comes from the store at scrape time and is passed in by the caller. No label carries a
//! secret or a payload; the in-flight gauge is labelled by endpoint id (not a secret),
//! capped at [`MAX_ENDPOINT_LABELS`] series.

#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

/// Most endpoints listed in `herald_in_flight_requests` (the busiest ones).
pub const MAX_ENDPOINT_LABELS: usize = 100;

/// Upper bounds (seconds) of the delivery latency buckets: milliseconds for a healthy
/// endpoint up to hours for deliveries that needed retries.
const LATENCY_BUCKETS: [f64; 16] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 1800.0, 7200.0, 36000.0];

/// What an attempt led to, as the `outcome` label of `herald_attempts_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx: the delivery is done.
    Delivered,
    /// A failure with a retry scheduled.
    Retry,
    /// A failure that ended the delivery.
    Failed,
    /// A failure that disabled the endpoint (410, or failing for too long).
    EndpointDisabled,
}

impl AttemptOutcome {
    const ALL: [Self; 4] = [Self::Delivered, Self::Retry, Self::Failed, Self::EndpointDisabled];

    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::EndpointDisabled => "endpoint_disabled",
        }
    }
}

/// Deliveries waiting and being sent, read from the store when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueGauge {
    pub pending: u64,
    pub sending: u64,
}

/// One node's metrics. Share it as `Arc<Metrics>`.
#[derive(Debug, Default)]
pub struct Metrics {
    messages_accepted: AtomicU64,
    attempts: [AtomicU64; 4],
    /// Per bucket (not cumulative), plus one for `+Inf`.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    in_flight: Mutex<HashMap<String, u64>>,
}

impl Metrics {
    /// A registry with every value at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts `n` messages accepted (committed) by the API.
    pub fn messages_accepted(&self, n: u64) {
        self.messages_accepted.fetch_add(n, Relaxed);
    }

    /// Counts one recorded attempt.
    pub fn attempt(&self, outcome: AttemptOutcome) {
        self.attempts[outcome as usize].fetch_add(1, Relaxed);
    }

    /// Observes the time from a message's creation to its delivery to one endpoint.
    pub fn delivered_after(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS.iter().position(|le| secs <= *le).unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[bucket].fetch_add(1, Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Relaxed);
    }

    /// Marks a request to `endpoint` as in flight until the guard is dropped.
    pub fn request_started(self: &Arc<Self>, endpoint: &str) -> InFlight {
        *self.table().entry(endpoint.to_owned()).or_default() += 1;
        InFlight { metrics: self.clone(), endpoint: endpoint.to_owned() }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Every update is a single step, so a panic elsewhere leaves the table usable.
        self.in_flight.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self, queue: Option<QueueGauge>) -> String {
        let mut out = String::with_capacity(4096);
        header(&mut out, "herald_messages_accepted_total", "counter", "Messages accepted (committed) by the API.");
        line(&mut out, "herald_messages_accepted_total", "", self.messages_accepted.load(Relaxed));

        header(&mut out, "herald_attempts_total", "counter", "Delivery attempts recorded, by outcome.");
        for outcome in AttemptOutcome::ALL {
            let labels = format!("{{outcome=\"{}\"}}", outcome.label());
            line(&mut out, "herald_attempts_total", &labels, self.attempts[outcome as usize].load(Relaxed));
        }

        let name = "herald_delivery_latency_seconds";
        header(&mut out, name, "histogram", "Time from a message's creation to its delivery to an endpoint.");
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().map(ToString::to_string).chain(["+Inf".to_owned()]).enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            line(&mut out, &format!("{name}_bucket"), &format!("{{le=\"{le}\"}}"), cumulative);
        }
        let sum = self.latency_sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        line(&mut out, &format!("{name}_count"), "", cumulative);

        if let Some(queue) = queue {
            header(&mut out, "herald_queue_depth", "gauge", "Deliveries waiting (pending) and being sent (sending).");
            line(&mut out, "herald_queue_depth", "{state=\"pending\"}", queue.pending);
            line(&mut out, "herald_queue_depth", "{state=\"sending\"}", queue.sending);
        }

        header(&mut out, "herald_in_flight_requests", "gauge", "Requests being sent, by endpoint (the busiest 100).");
        let mut busy: Vec<(String, u64)> = self.table().iter().map(|(k, v)| (k.clone(), *v)).collect();
        busy.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (endpoint, n) in busy.into_iter().take(MAX_ENDPOINT_LABELS) {
            line(&mut out, "herald_in_flight_requests", &format!("{{endpoint=\"{}\"}}", escape(&endpoint)), n);
        }
        out
    }
}

/// A request in flight; dropping it ends it.
#[derive(Debug)]
pub struct InFlight {
    metrics: Arc<Metrics>,
    endpoint: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut table = self.metrics.table();
        if let Some(n) = table.get_mut(&self.endpoint) {
            *n -= 1;
            if *n == 0 {
                // Idle endpoints leave the table, so it only holds those with requests.
                table.remove(&self.endpoint);
            }
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "{name}{labels} {value}");
}

/// Escapes a label value (backslash, double quote, newline) per the text format.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_and_histogram_render_in_text_format() {
        let m = Metrics::new();
        m.messages_accepted(2);
        m.attempt(AttemptOutcome::Delivered);
        m.attempt(AttemptOutcome::Retry);
        m.delivered_after(Duration::from_millis(3));
        m.delivered_after(Duration::from_secs(20));
        let text = m.render(Some(QueueGauge { pending: 4, sending: 1 }));
        assert_eq!(value(&text, "herald_messages_accepted_total"), Some(2.0));
        assert_eq!(value(&text, "herald_attempts_total{outcome=\"retry\"}"), Some(1.0));
        assert_eq!(value(&text, "herald_attempts_total{outcome=\"failed\"}"), Some(0.0));
        assert_eq!(value(&text, "herald_delivery_latency_seconds_bucket{le=\"0.005\"}"), Some(1.0));
        assert_eq!(value(&text, "herald_delivery_latency_seconds_bucket{le=\"10\"}"), Some(1.0));
        assert_eq!(value(&text, "herald_delivery_latency_seconds_bucket{le=\"+Inf\"}"), Some(2.0));
        assert_eq!(value(&text, "herald_delivery_latency_seconds_count"), Some(2.0));
        assert_eq!(value(&text, "herald_delivery_latency_seconds_sum"), Some(20.003));
        assert_eq!(value(&text, "herald_queue_depth{state=\"pending\"}"), Some(4.0));
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = l.rsplit_once(' ').unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn in_flight_is_counted_per_endpoint_until_dropped() {
        let m = Metrics::new();
        let a = m.request_started("ep_a");
        let b = m.request_started("ep_a");
        let text = m.render(None);
        assert_eq!(value(&text, "herald_in_flight_requests{endpoint=\"ep_a\"}"), Some(2.0));
        assert!(!text.contains("herald_queue_depth{"));
        drop((a, b));
        assert!(!m.render(None).contains("ep_a"));
    }

    #[test]
    fn endpoint_labels_are_capped_and_escaped() {
        let m = Metrics::new();
        let held: Vec<_> = (0..150).map(|i| m.request_started(&format!("ep_{i}"))).collect();
        let text = m.render(None);
        assert_eq!(text.lines().filter(|l| l.starts_with("herald_in_flight_requests{")).count(), 100);
        drop(held);
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
