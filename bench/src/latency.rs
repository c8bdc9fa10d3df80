//! Latency histograms (hdrhistogram, nanoseconds, 3 significant digits) and their summaries.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A histogram of durations from 100 ns to 100 s.
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(100, 100_000_000_000, 3).expect("valid bounds"))
    }
}

/// Percentiles in microseconds.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record(d.as_nanos().clamp(100, u64::MAX as u128) as u64);
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.0.add(&other.0).expect("same bounds");
    }

    pub fn summary(&self) -> Summary {
        let us = |ns: u64| ns as f64 / 1e3;
        Summary {
            count: self.0.len(),
            mean_us: self.0.mean() / 1e3,
            p50_us: us(self.0.value_at_quantile(0.5)),
            p99_us: us(self.0.value_at_quantile(0.99)),
            p999_us: us(self.0.value_at_quantile(0.999)),
            max_us: us(self.0.max()),
        }
    }

    /// (latency in µs, fraction of calls at or below it), for a CDF plot: the quantile
    /// iterator's points, thinned to at most ~200.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let points: Vec<(f64, f64)> =
            self.0.iter_quantiles(4).map(|v| (v.value_iterated_to() as f64 / 1e3, v.quantile_iterated_to())).collect();
        let step = points.len().div_ceil(200).max(1);
        let mut thinned: Vec<(f64, f64)> = points.iter().step_by(step).copied().collect();
        if let Some(last) = points.last() {
            thinned.push(*last);
        }
        thinned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_cdf() {
        let mut latencies = Latencies::default();
        for us in 1..=1000 {
            latencies.record(Duration::from_micros(us));
        }
        let s = latencies.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
        let cdf = latencies.cdf();
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(cdf.len() <= 202 && cdf.last().unwrap().1 == 1.0);
    }
}
