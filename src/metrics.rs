//! Request counters and latency histograms, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_MICROS: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000,
];

#[derive(Default)]
struct LatencyHistogram {
    buckets: [u64; BUCKETS_MICROS.len()],
    count: u64,
    sum_micros: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latencies: Mutex<BTreeMap<String, LatencyHistogram>>,
}

impl Metrics {
    /// `route` is the matched pattern (`/v1/users/{id}`), never the raw path, to bound cardinality.
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut latencies) = self.latencies.lock() {
            let histogram = latencies.entry(route.to_string()).or_default();
            for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS_MICROS) {
                if micros <= bound {
                    *bucket += 1;
                }
            }
            histogram.count += 1;
            histogram.sum_micros = histogram.sum_micros.saturating_add(micros);
        }
    }

    /// The Prometheus exposition, with the pool gauges passed in by the caller.
    pub fn render(&self, pool_connections: u32, pool_idle: u32, backend: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP hashgate_build_info Build and storage backend.");
        let _ = writeln!(out, "# TYPE hashgate_build_info gauge");
        let _ = writeln!(
            out,
            "hashgate_build_info{{version=\"{}\",backend=\"{backend}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            out,
            "# HELP hashgate_db_pool_connections Open database connections."
        );
        let _ = writeln!(out, "# TYPE hashgate_db_pool_connections gauge");
        let _ = writeln!(out, "hashgate_db_pool_connections {pool_connections}");
        let _ = writeln!(
            out,
            "# HELP hashgate_db_pool_idle_connections Idle database connections."
        );
        let _ = writeln!(out, "# TYPE hashgate_db_pool_idle_connections gauge");
        let _ = writeln!(out, "hashgate_db_pool_idle_connections {pool_idle}");

        let _ = writeln!(
            out,
            "# HELP http_requests_total HTTP requests by method, route and status."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds HTTP request latency by route."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
        if let Ok(latencies) = self.latencies.lock() {
            for (route, histogram) in latencies.iter() {
                let route = escape(route);
                for (count, bound) in histogram.buckets.iter().zip(BUCKETS_MICROS) {
                    let _ = writeln!(
                        out,
                        "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{}\"}} {count}",
                        seconds(bound)
                    );
                }
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    histogram.count
                );
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    seconds(histogram.sum_micros)
                );
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    histogram.count
                );
            }
        }
        out
    }
}

/// `count` per second over `elapsed`, in whole units (throughput reports; no floating point).
pub fn per_second(count: u64, elapsed: Duration) -> u64 {
    let micros = elapsed.as_micros().max(1);
    u64::try_from(u128::from(count) * 1_000_000 / micros).unwrap_or(u64::MAX)
}

/// A duration as seconds with one decimal, e.g. `50.2`.
pub fn seconds_text(elapsed: Duration) -> String {
    let tenths = elapsed.as_millis() / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A duration as milliseconds with two decimals, e.g. `1.74`.
pub fn millis_text(elapsed: Duration) -> String {
    let hundredths = elapsed.as_micros() / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Microseconds as a decimal number of seconds, without floating point.
fn seconds(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_and_durations_are_formatted_without_floats() {
        assert_eq!(per_second(1_000_000, Duration::from_millis(50_200)), 19_920);
        assert_eq!(per_second(5, Duration::ZERO), 5_000_000);
        assert_eq!(seconds_text(Duration::from_millis(50_249)), "50.2");
        assert_eq!(millis_text(Duration::from_micros(1_744)), "1.74");
        assert_eq!(millis_text(Duration::from_micros(80)), "0.08");
    }

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("GET", "/healthz", 200, Duration::from_micros(800));
        metrics.record("GET", "/healthz", 200, Duration::from_millis(30));
        let text = metrics.render(2, 1, "sqlite");
        assert!(text
            .contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"));
        assert!(text
            .contains("http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.001\"} 1"));
        assert!(
            text.contains("http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.05\"} 2")
        );
        assert!(text.contains("http_request_duration_seconds_sum{route=\"/healthz\"} 0.0308"));
        assert!(text.contains("hashgate_db_pool_connections 2"));
    }
}
