//! `GET /metrics`: Prometheus text for the routes, persists, the embedding batcher and the index.
//!
//! Every counter here is a relaxed atomic: each is read for reporting only and guards no other
//! memory, so a scrape may see one counter a request ahead of another.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::Shared;
use super::error::ApiResult;

/// Latency buckets, in seconds.
pub(super) const SECONDS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Batch-size buckets, in texts (the default `--batch-max` is 32).
pub(super) const TEXTS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// A Prometheus histogram: counts per bucket (cumulated when printed), a sum and a count.
pub(super) struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    /// The sum in millionths of the unit, so that it can be one integer atomic.
    sum_millionths: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_millionths: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, value: f64) {
        if let Some(at) = self.bounds.iter().position(|&b| value <= b) {
            self.buckets[at].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_millionths.fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn observe_duration(&self, took: Duration) {
        self.observe(took.as_secs_f64());
    }

    /// `labels` is empty or ends with a comma (`route="search",`): the bucket lines add `le`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            out.push_str(&format!("{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}\n"));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{{labels}le=\"+Inf\"}} {count}\n"));
        let sum = self.sum_millionths.load(Ordering::Relaxed) as f64 / 1e6;
        let plain = labels.trim_end_matches(',');
        out.push_str(&format!("{name}_sum{{{plain}}} {sum}\n{name}_count{{{plain}}} {count}\n"));
    }
}

/// The routes, as their latency and errors are labelled.
#[derive(Clone, Copy)]
pub(super) enum Route {
    AddDocument,
    GetDocument,
    DeleteDocument,
    Search,
    Persist,
    Stats,
    Healthz,
    Embeddings,
    Models,
}

const ROUTES: [&str; 9] = [
    "add_document",
    "get_document",
    "delete_document",
    "search",
    "persist",
    "stats",
    "healthz",
    "embeddings",
    "models",
];

pub(super) struct Metrics {
    latency: [Histogram; ROUTES.len()],
    errors: [AtomicU64; ROUTES.len()],
    pub(super) persist: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            latency: std::array::from_fn(|_| Histogram::new(&SECONDS)),
            errors: Default::default(),
            persist: Histogram::new(&SECONDS),
        }
    }
}

impl Metrics {
    pub(super) fn observe(&self, route: Route, took: Duration, failed: bool) {
        self.latency[route as usize].observe_duration(took);
        if failed {
            self.errors[route as usize].fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(super) async fn metrics(State(app): State<Shared>) -> ApiResult {
    let stats = app.timed(Route::Stats, app.blocking(|app| Ok(app.index.stats()))).await?;
    let mut out = String::new();
    out.push_str("# TYPE vecindex_request_seconds histogram\n");
    for (route, histogram) in ROUTES.iter().zip(&app.metrics.latency) {
        histogram.render(&mut out, "vecindex_request_seconds", &format!("route=\"{route}\","));
    }
    out.push_str("# TYPE vecindex_request_errors_total counter\n");
    for (route, errors) in ROUTES.iter().zip(&app.metrics.errors) {
        out.push_str(&format!(
            "vecindex_request_errors_total{{route=\"{route}\"}} {}\n",
            errors.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# TYPE vecindex_persist_seconds histogram\n");
    app.metrics.persist.render(&mut out, "vecindex_persist_seconds", "");

    let batches = app.batcher.stats();
    out.push_str("# HELP vecindex_embed_batch_texts Texts per embedder call made by the batcher.\n");
    out.push_str("# TYPE vecindex_embed_batch_texts histogram\n");
    batches.texts.render(&mut out, "vecindex_embed_batch_texts", "");
    out.push_str("# TYPE vecindex_embed_batch_seconds histogram\n");
    batches.seconds.render(&mut out, "vecindex_embed_batch_seconds", "");
    out.push_str(&format!(
        "# HELP vecindex_embed_queue_texts Texts waiting for the embedder.\n\
         # TYPE vecindex_embed_queue_texts gauge\nvecindex_embed_queue_texts {}\n\
         # TYPE vecindex_embed_queue_limit gauge\nvecindex_embed_queue_limit {}\n\
         # HELP vecindex_embed_rejected_total Requests refused with 503 because the queue was full.\n\
         # TYPE vecindex_embed_rejected_total counter\nvecindex_embed_rejected_total {}\n\
         # TYPE vecindex_embed_failed_batches_total counter\nvecindex_embed_failed_batches_total {}\n",
        app.batcher.queued(),
        app.batcher.queue_max(),
        batches.rejected.load(Ordering::Relaxed),
        batches.failed.load(Ordering::Relaxed),
    ));

    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for g in &stats.segments {
        *kinds.entry(g.label()).or_default() += 1;
    }
    out.push_str("# TYPE vecindex_segments gauge\n");
    for (kind, n) in kinds {
        out.push_str(&format!("vecindex_segments{{kind=\"{kind}\"}} {n}\n"));
    }
    out.push_str(&format!(
        "# TYPE vecindex_chunks gauge\nvecindex_chunks {}\n# TYPE vecindex_documents gauge\nvecindex_documents {}\n",
        stats.chunks, stats.documents
    ));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
