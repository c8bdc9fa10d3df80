//! `GET /metrics`: Prometheus metrics (OpenMetrics text, with HELP, TYPE and UNIT lines) from
//! the `prometheus-client` registry: every request by method, route and status; the embedding
//! batcher; persists; and the index's internals, read from `VectorIndex::stats` at each scrape.
//!
//! The request metrics are recorded by `layers::track`, once per answered request, so refusals
//! (401, 413, 400) count like successes. The index's gauges are set from one `Stats` at scrape
//! time: a scrape sees one point in time of the index, never a mix of two.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use vecindex::{SegmentKind, SegmentState, Stats};

use super::Shared;
use super::batcher::BatchStats;
use super::error::{ApiError, ApiResult};

/// Latency buckets, in seconds.
const SECONDS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
/// Batch-size buckets, in texts (the default `--batch-max` is 32).
const TEXTS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

pub(super) fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS.iter().copied())
}

pub(super) fn texts_histogram() -> Histogram {
    Histogram::new(TEXTS.iter().copied())
}

/// The labels of a request: its method, its route as declared (`/documents/{*id}`, not the
/// path asked for, so that ids do not become series), and the status it got.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) method: String,
    pub(super) route: String,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The index's gauges, set at each scrape.
#[derive(Default)]
struct IndexGauges {
    chunks: Gauge,
    documents: Gauge,
    segments: Family<KindLabels, Gauge>,
    head_rows: Gauge,
    pending_builds: Gauge,
    unindexed_rows: Gauge,
    memory_bytes: Gauge,
    mapped_bytes: Gauge,
    disk_bytes: Gauge,
    generation: Gauge,
    unpersisted_operations: Gauge,
    last_persist_timestamp: FloatGauge,
    last_persist_seconds: FloatGauge,
    persists: Counter,
    persist_failures: Counter,
    replica_generation: Gauge,
    replica_lag_generations: Gauge,
    replica_lag_seconds: FloatGauge,
    push_generation: Gauge,
    pushes: Counter,
    push_failures: Counter,
}

pub(super) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    /// Search filters refused as malformed (each is also a 400 in `requests`).
    pub(super) filter_errors: Counter,
    queue_texts: Gauge,
    queue_limit: Gauge,
    index: IndexGauges,
}

impl Metrics {
    /// The registry, with the batcher's own metrics registered beside the server's.
    pub(super) fn new(batches: &BatchStats) -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("vecindex"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(seconds_histogram),
            filter_errors: Counter::default(),
            queue_texts: Gauge::default(),
            queue_limit: Gauge::default(),
            index: IndexGauges::default(),
        };
        let r = &mut metrics.registry;
        r.register("http_requests", "Requests answered, by method, route and status", metrics.requests.clone());
        r.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer",
            Unit::Seconds,
            metrics.request_seconds.clone(),
        );
        r.register("filter_errors", "Search filters refused as malformed", metrics.filter_errors.clone());

        r.register("embed_batch_texts", "Texts per embedder call made by the batcher", batches.texts.clone());
        r.register_with_unit(
            "embed_batch_duration",
            "Duration of each embedder call",
            Unit::Seconds,
            batches.seconds.clone(),
        );
        r.register("embed_queue_texts", "Texts waiting for the embedder", metrics.queue_texts.clone());
        r.register("embed_queue_limit", "Texts the embedding queue admits (--queue-max)", metrics.queue_limit.clone());
        r.register(
            "embed_rejected",
            "Requests refused with 503 because the embedding queue was full",
            batches.rejected.clone(),
        );
        r.register(
            "embed_failed_batches",
            "Embedder calls that failed (each fails its whole batch)",
            batches.failed.clone(),
        );

        let g = &metrics.index;
        r.register("chunks", "Live chunks in the index", g.chunks.clone());
        r.register("documents", "Documents in the index", g.documents.clone());
        r.register("segments", "Heads and segments, by state or index kind", g.segments.clone());
        r.register("head_rows", "Rows in the head and in full heads not sealed yet", g.head_rows.clone());
        r.register("pending_builds", "Sealed segments waiting for their FAISS index", g.pending_builds.clone());
        r.register(
            "unindexed_rows",
            "Rows no FAISS index or graph covers yet, so that every search scans them",
            g.unindexed_rows.clone(),
        );
        r.register_with_unit("memory", "Heap bytes of rows and FAISS indexes", Unit::Bytes, g.memory_bytes.clone());
        r.register_with_unit(
            "mapped",
            "Bytes of rows read in place from mapped files",
            Unit::Bytes,
            g.mapped_bytes.clone(),
        );
        r.register_with_unit("disk", "Bytes of the index directory, log included", Unit::Bytes, g.disk_bytes.clone());
        r.register("epoch_generation", "Epochs published since the index was opened", g.generation.clone());
        r.register(
            "unpersisted_operations",
            "Acknowledged operations not in a snapshot yet: in the write-ahead log only (the log's lag)",
            g.unpersisted_operations.clone(),
        );
        r.register_with_unit(
            "last_persist_timestamp",
            "When the last persist committed, in Unix time (0: none since start)",
            Unit::Seconds,
            g.last_persist_timestamp.clone(),
        );
        r.register_with_unit(
            "last_persist_duration",
            "How long the last committed persist took",
            Unit::Seconds,
            g.last_persist_seconds.clone(),
        );
        r.register("persists", "Persists committed since the index was opened", g.persists.clone());
        r.register("persist_failures", "Persists that failed since the index was opened", g.persist_failures.clone());
        r.register(
            "push_generation",
            "The generation a writer last pushed to object storage with --push-to (0: none)",
            g.push_generation.clone(),
        );
        r.register("pushes", "Pushes to object storage committed since start (--push-to)", g.pushes.clone());
        r.register("push_failures", "Pushes to object storage that failed since start", g.push_failures.clone());
        r.register(
            "replica_generation",
            "The generation a replica serves (0 on a writer)",
            g.replica_generation.clone(),
        );
        r.register(
            "replica_lag_generations",
            "Generations between the one a replica serves and the newest it has seen",
            g.replica_lag_generations.clone(),
        );
        r.register_with_unit(
            "replica_lag",
            "How long a replica has served a generation older than the newest it has seen",
            Unit::Seconds,
            g.replica_lag_seconds.clone(),
        );
        metrics
    }

    #[cfg(feature = "object-store")]
    fn set_push(&self, status: &super::push::PushStatus) {
        let g = &self.index;
        g.push_generation.set(i64::try_from(status.generation).unwrap_or(i64::MAX));
        g.pushes.inc_by(status.pushes.saturating_sub(g.pushes.get()));
        g.push_failures.inc_by(status.failures.saturating_sub(g.push_failures.get()));
    }

    #[cfg(feature = "object-store")]
    fn set_replica(&self, status: &vecindex::ReplicaStatus) {
        let g = &self.index;
        g.replica_generation.set(i64::try_from(status.generation).unwrap_or(i64::MAX));
        g.replica_lag_generations.set(i64::try_from(status.lag_generations()).unwrap_or(i64::MAX));
        g.replica_lag_seconds.set(status.behind_for.as_secs_f64());
    }

    pub(super) fn observe_request(&self, labels: RequestLabels, took: Duration) {
        self.request_seconds.get_or_create(&labels).observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Sets the index's gauges from `stats`.
    fn set_index(&self, stats: &Stats, segment_index: &vecindex::SegmentIndex, disk_bytes: u64) {
        let g = &self.index;
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        g.chunks.set(as_i64(stats.chunks));
        g.documents.set(as_i64(stats.documents));
        g.segments.clear();
        for segment in &stats.segments {
            g.segments.get_or_create(&KindLabels { kind: segment.label() }).inc();
        }
        let backlog = Backlog::of(stats, segment_index);
        g.head_rows.set(as_i64(backlog.head_rows));
        g.pending_builds.set(as_i64(backlog.pending_builds));
        g.unindexed_rows.set(as_i64(backlog.unindexed_rows));
        let (mapped, memory): (Vec<_>, Vec<_>) = stats.segments.iter().partition(|s| s.mapped);
        let graph_bytes = stats.graph.as_ref().map_or(0, |graph| graph.bytes);
        g.memory_bytes.set(as_i64(memory.iter().map(|s| s.bytes).sum::<usize>() + graph_bytes));
        g.mapped_bytes.set(as_i64(mapped.iter().map(|s| s.bytes).sum()));
        g.disk_bytes.set(i64::try_from(disk_bytes).unwrap_or(i64::MAX));
        g.generation.set(i64::try_from(stats.generation).unwrap_or(i64::MAX));
        let persists = &stats.persists;
        let unpersisted = persists.snapshot_seq.map_or(0, |seq| stats.next_seq.saturating_sub(seq));
        g.unpersisted_operations.set(i64::try_from(unpersisted).unwrap_or(i64::MAX));
        if let Some(last) = &persists.last {
            let at = last.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            g.last_persist_timestamp.set(at.as_secs_f64());
            g.last_persist_seconds.set(last.duration.as_secs_f64());
        }
        // Counters only go up: add what happened since the last scrape.
        g.persists.inc_by(persists.succeeded.saturating_sub(g.persists.get()));
        g.persist_failures.inc_by(persists.failed.saturating_sub(g.persist_failures.get()));
    }
}

/// What the background worker has not reached yet.
#[derive(Debug, Default, PartialEq)]
struct Backlog {
    head_rows: usize,
    pending_builds: usize,
    unindexed_rows: usize,
}

impl Backlog {
    fn of(stats: &Stats, segment_index: &vecindex::SegmentIndex) -> Self {
        let wants_index = segment_index.kind != SegmentKind::Exact;
        let mut backlog = Backlog::default();
        for segment in &stats.segments {
            match (segment.state, segment.graph_rows) {
                (_, Some(in_graph)) => backlog.unindexed_rows += segment.rows.saturating_sub(in_graph),
                (SegmentState::Sealed, None) if segment.kind == SegmentKind::Exact => {
                    if wants_index && segment.rows >= segment_index.min_rows {
                        backlog.pending_builds += 1;
                    }
                    backlog.unindexed_rows += segment.rows;
                }
                (SegmentState::Sealed, None) => {}
                (_, None) => backlog.unindexed_rows += segment.rows,
            }
            if segment.state != SegmentState::Sealed {
                backlog.head_rows += segment.rows;
            }
        }
        backlog
    }
}

/// Bytes of the files in `dir` and its subdirectories (the log's, quarantine's).
fn directory_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => directory_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Prometheus metrics, in OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
))]
pub(super) async fn metrics(State(app): State<Shared>) -> ApiResult {
    let text = app
        .blocking(|app| {
            let index = app.index();
            let stats = index.stats();
            let disk = directory_bytes(&app.index_path);
            let metrics = &app.metrics;
            metrics.set_index(&stats, &index.config().segment_index, disk);
            #[cfg(feature = "object-store")]
            if let Some((status, _)) = app.source.replica_status() {
                metrics.set_replica(&status);
            }
            #[cfg(feature = "object-store")]
            if let Some(pusher) = &app.pusher {
                metrics.set_push(&pusher.status());
            }
            metrics.queue_texts.set(i64::try_from(app.batcher.queued()).unwrap_or(i64::MAX));
            metrics.queue_limit.set(i64::try_from(app.batcher.queue_max()).unwrap_or(i64::MAX));
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &metrics.registry)
                .map_err(|e| ApiError(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}")))?;
            Ok(text)
        })
        .await?;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_counts_heads_unbuilt_segments_and_rows_outside_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = vecindex::IndexConfig::new(4);
        config.background = false; // nothing is sealed or put in the graph behind the test's back
        let index = vecindex::VectorIndex::create(dir.path(), config.clone()).unwrap();
        for i in 0..10 {
            let chunk = vecindex::Chunk::new(format!("c{i}"), "d", vec![1.0, i as f32, 0.0, 0.5]);
            index.add_chunk(chunk).unwrap();
        }
        let backlog = Backlog::of(&index.stats(), &config.segment_index);
        assert_eq!(backlog, Backlog { head_rows: 10, pending_builds: 0, unindexed_rows: 10 });
    }
}
