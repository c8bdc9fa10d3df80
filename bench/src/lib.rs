//! The pieces the benchmarks share: the designs under test behind one small trait, the old
//! design (raw FAISS behind a mutex), datasets, latency histograms and the report.
//!
//! Everything here serves `benches/core.rs` (criterion) and the `vecindex-bench` harness; the
//! numbers in `docs/benchmarks.md` come from `scripts/bench-report`, which runs both.

pub mod corpus;
pub mod data;
pub mod design;
pub mod designs;
pub mod disk;
pub mod duplicates;
pub mod durability;
pub mod embedders;
pub mod filtered;
pub mod growth;
pub mod latency;
pub mod live;
pub mod old_design;
pub mod recall;
#[cfg(feature = "object-store")]
pub mod remote;
pub mod report;
pub mod scaling;
pub mod seed;
pub mod writers;

#[path = "../../cli/src/chunker.rs"]
#[allow(dead_code)]
pub mod chunker;

/// Milliseconds of a duration, for printing.
pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `values` (0 for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
