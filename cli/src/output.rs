//! What `query`, `stats` and `verify` print. Each builds one report, then prints it either as
//! text or (`--json`) as one compact line of JSON on stdout: the two come from the same fields,
//! so they say the same thing. The JSON field names are an interface (scripts parse them): add
//! fields, do not rename them.

use std::path::Path;

use serde::Serialize;
use utoipa::ToSchema;
use vecindex::{Metadata, OpenReport, SearchHit};

/// Prints `report` as text, or as one line of JSON.
pub fn print<R: Serialize + Text>(report: &R, json: bool) -> Result<(), String> {
    if json {
        let line = serde_json::to_string(report).map_err(|e| format!("cannot write JSON: {e}"))?;
        println!("{line}");
    } else {
        report.print_text();
    }
    Ok(())
}

/// The human form of a report.
pub trait Text {
    fn print_text(&self);
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// One line of a chunk's text, at most `width` characters.
fn snippet(text: &str, width: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(width) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line,
    }
}

/// `vecindex query`.
#[derive(Serialize)]
pub struct Query {
    pub index: String,
    pub query: String,
    pub k: usize,
    /// Best first.
    pub hits: Vec<Hit>,
}

#[derive(Serialize)]
pub struct Hit {
    /// From 1.
    pub rank: usize,
    pub score: f32,
    pub chunk_id: String,
    pub doc_id: String,
    /// The chunk's heading path ("" if none).
    pub heading: String,
    /// The chunk's whole text (the text form shows its start); `None` if it was removed
    /// between the search and the read.
    pub text: Option<String>,
    pub metadata: Metadata,
}

impl Query {
    /// `hits` (best first) with the text of their chunks from `chunk_text`.
    pub fn new(
        index: &Path,
        query: &str,
        k: usize,
        hits: Vec<SearchHit>,
        chunk_text: impl Fn(&str) -> Option<String>,
    ) -> Query {
        let hits = hits
            .into_iter()
            .enumerate()
            .map(|(rank, hit)| Hit {
                rank: rank + 1,
                score: hit.score,
                heading: hit
                    .metadata
                    .get(crate::ingest::META_HEADING)
                    .and_then(vecindex::Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                text: chunk_text(&hit.chunk_id),
                chunk_id: hit.chunk_id,
                doc_id: hit.doc_id,
                metadata: hit.metadata,
            })
            .collect();
        Query { index: path(index), query: query.to_owned(), k, hits }
    }
}

impl Text for Query {
    fn print_text(&self) {
        for hit in &self.hits {
            let text = hit.text.as_deref().map(|t| snippet(t, 160)).unwrap_or_default();
            println!("{:>2}. {:.3}  {}  [{}]", hit.rank, hit.score, hit.doc_id, hit.heading);
            println!("      {text}");
        }
        if self.hits.is_empty() {
            println!("no hits (the index is empty)");
        }
    }
}

/// `vecindex stats`: the server's `GET /stats` answer, and the index's path.
#[derive(Serialize)]
pub struct Stats {
    pub index: String,
    #[serde(flatten)]
    pub summary: IndexSummary,
}

/// What the index holds (also `GET /stats`).
#[derive(Serialize, ToSchema)]
pub struct IndexSummary {
    pub documents: usize,
    pub chunks: usize,
    pub dim: usize,
    /// `Cosine`, `InnerProduct` or `L2`.
    pub metric: String,
    pub next_seq: u64,
    /// Epochs published since the index was opened in this process (not a snapshot's
    /// generation: a replica's is in `GET /readyz`, a persist's in its report).
    pub generation: u64,
    pub vocabulary_terms: usize,
    pub segments: Vec<SegmentSummary>,
}

/// One head or segment of the index.
#[derive(Serialize, ToSchema)]
pub struct SegmentSummary {
    pub id: u64,
    /// "head", "frozen", or a sealed segment's kind ("exact", or its FAISS factory string).
    pub kind: String,
    pub rows: usize,
    pub live_rows: usize,
    pub bytes: usize,
    /// Whether its rows are read in place from a mapped file.
    pub mapped: bool,
}

impl IndexSummary {
    pub fn new(s: &vecindex::Stats) -> IndexSummary {
        let segment = |g: &vecindex::SegmentStats| SegmentSummary {
            id: g.id,
            kind: g.label(),
            rows: g.rows,
            live_rows: g.live_rows,
            bytes: g.bytes,
            mapped: g.mapped,
        };
        IndexSummary {
            documents: s.documents,
            chunks: s.chunks,
            dim: s.dim,
            metric: format!("{:?}", s.metric),
            next_seq: s.next_seq,
            generation: s.generation,
            vocabulary_terms: s.vocabulary_terms,
            segments: s.segments.iter().map(segment).collect(),
        }
    }
}

impl Stats {
    pub fn new(index: &Path, s: &vecindex::Stats) -> Stats {
        Stats { index: path(index), summary: IndexSummary::new(s) }
    }
}

impl Text for Stats {
    fn print_text(&self) {
        let s = &self.summary;
        println!("{}: {} documents, {} chunks, dimension {}, {}", self.index, s.documents, s.chunks, s.dim, s.metric);
        println!("next seq {}, {} vocabulary terms", s.next_seq, s.vocabulary_terms);
        for g in &s.segments {
            println!(
                "  segment {:>4}: {:<10} {:>8} rows {:>8} live {:>12} bytes{}",
                g.id,
                g.kind,
                g.rows,
                g.live_rows,
                g.bytes,
                if g.mapped { "  (mapped)" } else { "" }
            );
        }
    }
}

/// `vecindex verify`'s verdict; its exit code follows from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 2: a file is damaged or the id maps are inconsistent.
    Damaged,
    /// Exit 3: no persist ever committed there.
    NoSnapshot,
    /// Exit 1: not an index directory.
    NotAnIndex,
    /// Exit 1: it could not be read.
    Error,
}

/// `vecindex verify`.
#[derive(Serialize)]
pub struct Verify {
    pub index: String,
    pub status: Status,
    pub ok: bool,
    /// Why it could not be opened at all (then `report` is `None`).
    pub error: Option<String>,
    pub report: Option<Checked>,
}

/// What a read-only open of the index checked and found.
#[derive(Serialize)]
pub struct Checked {
    pub manifest: String,
    pub generation: u64,
    pub seq: u64,
    pub segments: usize,
    pub chunks: usize,
    /// Bytes of rows files read and checksummed.
    pub bytes_checked: u64,
    pub log: Log,
    /// Why `MANIFEST` is unusable (the previous snapshot would be used).
    pub fell_back: Option<String>,
    pub healed: Vec<Healed>,
    pub quarantined: Vec<Quarantined>,
    pub lost_documents: Vec<LostDocument>,
    pub lost_rows_unknown: usize,
    pub duplicate_rows: usize,
    /// Id-map entries that point at no row.
    pub stale_mappings: usize,
}

/// The write-ahead log.
#[derive(Serialize)]
pub struct Log {
    pub segments: usize,
    /// Operations after the snapshot.
    pub replayed: usize,
    /// Bytes a crash cut mid-write (never acknowledged).
    pub torn_bytes: u64,
    pub damage: Option<LogDamage>,
}

#[derive(Serialize)]
pub struct LogDamage {
    pub file: String,
    pub offset: u64,
    pub reason: String,
    pub records_not_replayed: usize,
    /// The lowest and highest seq among them.
    pub seqs_not_replayed: Option<(u64, u64)>,
}

#[derive(Serialize)]
pub struct Healed {
    pub file: String,
    pub reason: String,
    pub action: String,
}

#[derive(Serialize)]
pub struct Quarantined {
    pub file: String,
    pub reason: String,
    pub rows: u64,
}

#[derive(Serialize)]
pub struct LostDocument {
    pub doc_id: String,
    pub chunks_lost: usize,
    pub chunks_kept: usize,
}

impl Verify {
    /// The open failed: `status` says how.
    pub fn failed(index: &Path, status: Status, error: &vecindex::Error) -> Verify {
        Verify { index: path(index), status, ok: false, error: Some(error.to_string()), report: None }
    }

    /// The open succeeded; `stale` id-map entries were found.
    pub fn checked(index: &Path, r: &OpenReport, stale: usize) -> Verify {
        let ok = r.is_clean() && stale == 0;
        let damage = r.log.damage.as_ref().map(|d| LogDamage {
            file: path(&d.file),
            offset: d.offset,
            reason: d.reason.clone(),
            records_not_replayed: d.records_not_replayed,
            seqs_not_replayed: d.seqs_not_replayed,
        });
        let report = Checked {
            manifest: r.manifest.clone(),
            generation: r.generation,
            seq: r.seq,
            segments: r.segments,
            chunks: r.chunks,
            bytes_checked: r.bytes_mapped,
            log: Log { segments: r.log.segments, replayed: r.log.replayed, torn_bytes: r.log.torn_bytes, damage },
            fell_back: r.fell_back.clone(),
            healed: r
                .healed
                .iter()
                .map(|h| Healed { file: path(&h.file), reason: h.reason.clone(), action: h.action.clone() })
                .collect(),
            quarantined: r
                .quarantined
                .iter()
                .map(|q| Quarantined { file: path(&q.file), reason: q.reason.clone(), rows: q.rows })
                .collect(),
            lost_documents: r
                .lost_documents
                .iter()
                .map(|d| LostDocument {
                    doc_id: d.doc_id.clone(),
                    chunks_lost: d.chunks_lost,
                    chunks_kept: d.chunks_kept,
                })
                .collect(),
            lost_rows_unknown: r.lost_rows_unknown,
            duplicate_rows: r.duplicate_rows,
            stale_mappings: stale,
        };
        let status = if ok { Status::Ok } else { Status::Damaged };
        Verify { index: path(index), status, ok, error: None, report: Some(report) }
    }
}

impl Text for Verify {
    fn print_text(&self) {
        let Some(r) = &self.report else {
            match self.status {
                Status::NoSnapshot => {
                    println!("NO SNAPSHOT: {} holds no committed snapshot (a first persist never finished)", self.index)
                }
                Status::Damaged => println!("DAMAGED: {}", self.error.as_deref().unwrap_or_default()),
                // The error goes to stderr, as every command's does.
                Status::Ok | Status::NotAnIndex | Status::Error => {}
            }
            return;
        };
        println!(
            "{}: manifest {} (generation {}, seq {}), {} segments, {} chunks, {:.1} MB checked",
            self.index,
            r.manifest,
            r.generation,
            r.seq,
            r.segments,
            r.chunks,
            r.bytes_checked as f64 / 1e6
        );
        if r.log.segments > 0 {
            println!(
                "write-ahead log: {} segments, {} operations after the snapshot{}",
                r.log.segments,
                r.log.replayed,
                match r.log.torn_bytes {
                    0 => String::new(),
                    torn => format!(", {torn} bytes a crash cut mid-write (never acknowledged)"),
                }
            );
        }
        if let Some(d) = &r.log.damage {
            let seqs = d.seqs_not_replayed.map_or(String::new(), |(lo, hi)| format!(", seqs {lo} to {hi}"));
            println!(
                "DAMAGED: {} at byte {}: {}; replay stops there: {} operations after it{seqs}",
                d.file, d.offset, d.reason, d.records_not_replayed
            );
        }
        if let Some(reason) = &r.fell_back {
            println!("DAMAGED: MANIFEST unusable, the previous snapshot would be used: {reason}");
        }
        for h in &r.healed {
            println!("DAMAGED (recoverable): {}: {} ({})", h.file, h.reason, h.action);
        }
        for q in &r.quarantined {
            println!("DAMAGED: {}: {} ({} rows)", q.file, q.reason, q.rows);
        }
        for d in &r.lost_documents {
            println!(
                "  document {} would lose {} of {} chunks",
                d.doc_id,
                d.chunks_lost,
                d.chunks_lost + d.chunks_kept
            );
        }
        if r.stale_mappings > 0 {
            println!("INCONSISTENT: {} stale id-map entries", r.stale_mappings);
        }
        println!("{}", if self.ok { "OK" } else { "NOT OK" });
    }
}

/// `vecindex push`.
#[cfg(feature = "object-store")]
#[derive(Serialize)]
pub struct Pushed {
    pub url: String,
    pub generation: u64,
    pub seq: u64,
    pub chunks: usize,
    pub files_written: usize,
    pub files_reused: usize,
    pub bytes_written: u64,
    pub bytes_total: u64,
    pub seconds: f64,
}

#[cfg(feature = "object-store")]
impl Pushed {
    pub fn new(url: &str, r: &vecindex::PersistReport) -> Pushed {
        Pushed {
            url: url.to_owned(),
            generation: r.generation,
            seq: r.seq,
            chunks: r.rows,
            files_written: r.files_written,
            files_reused: r.files_reused,
            bytes_written: r.bytes_written,
            bytes_total: r.bytes_total,
            seconds: r.duration.as_secs_f64(),
        }
    }
}

#[cfg(feature = "object-store")]
impl Text for Pushed {
    fn print_text(&self) {
        println!(
            "pushed generation {} ({} chunks) to {}: {} files written ({} bytes), {} already there, in {:.2} s",
            self.generation,
            self.chunks,
            self.url,
            self.files_written,
            self.bytes_written,
            self.files_reused,
            self.seconds
        );
    }
}
