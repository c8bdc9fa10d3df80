//! `docs/benchmarks.md` and its plots, from the results the harness, criterion and the peers
//! script wrote. Every number in the report is read from those files; nothing is typed in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{disk, duplicates, growth, recall, seed, writers};

type Error = Box<dyn std::error::Error>;

/// How the numbers are taken; the same for every run of the script.
const METHOD: &str = "\
## Method

- The designs: `VectorIndex` (this crate), `MutexIndex` (the same library behind one lock held for
  every call, persist included: the design the seed settled on) and `FaissMutex` (the old design
  itself: a FAISS flat index and hash maps behind one mutex, persist writing FAISS's file and the
  maps under it). Same vectors, same calls, through one small trait (`bench/src/design.rs`).
- Latencies are taken per call with `Instant` around the call alone (ids and vectors are made
  before) and kept in HdrHistogram (3 significant digits). A call over 1 ms is checked against the
  thread's involuntary context switches (`getrusage(RUSAGE_THREAD)`), to tell a stall of the index
  from the writer waiting for a core: the machine has 2 cores and the index's sealer and builder
  threads, the persister and the writer share them.
- Search throughput is single queries, one at a time, on one thread (a server's case), k = 10;
  recall@10 is against exact inner-product search over the same vectors (ground truth from
  numpy, `scripts/bench/dataset.py`). FAISS builds (vecindex's segments and the peers) use every core.
- Criterion benchmarks use exact segments, so they compare the concurrency designs rather than
  index types; the recall benchmark uses vecindex's defaults (HNSW32 segments, efConstruction 80).
- Persist numbers are on this machine's disk (ext4 on a virtio disk); `dd` writes the same number
  of bytes (incompressible, from a file in the page cache) with `conv=fsync` right before, as the
  reference. Cold opens evict the files from the page
  cache with `posix_fadvise(DONTNEED)` after an fsync.
";

/// Persist bandwidth as a share of dd's, from the fastest run of each: a run that copies into
/// memory the virtual machine has not touched lately is several times slower, for dd as for a
/// persist, and which runs do varies from one invocation to the next; the fastest runs are the
/// ones it spared. (Older result files without ranges: the medians.)
fn bandwidth_share(d: &disk::Outcome) -> f64 {
    if d.persist_range.min_ms > 0.0 && d.dd_range.min_ms > 0.0 {
        d.dd_range.min_ms / d.persist_range.min_ms
    } else {
        d.dd_ms / d.persist_ms
    }
}

/// The writer of criterion's `search_with_writer`, per design.
#[derive(serde::Deserialize)]
struct SearchWriter {
    design: String,
    adds: u64,
    seconds: f64,
    rows_before: usize,
    rows_after: usize,
}

/// What python/bench/threads.py writes.
#[derive(serde::Deserialize)]
struct PythonThreads {
    dataset: String,
    rows: usize,
    dim: usize,
    k: usize,
    search_every: usize,
    results: Vec<PythonRun>,
}

/// One design's run in [`PythonThreads`].
#[derive(serde::Deserialize)]
struct PythonRun {
    design: String,
    seconds: f64,
    preload: usize,
    writers: usize,
    adds: u64,
    searches: u64,
    persists: u64,
    ops_per_s: f64,
    add_p50_us: f64,
    add_p99_us: f64,
    add_max_ms: f64,
    search_p50_us: f64,
    search_max_ms: f64,
    persist_p50_ms: f64,
}

fn read<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display()).into()),
    }
}

/// Files in `dir` named `prefix*.json`, sorted.
fn matching(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    out.sort();
    out
}

/// Criterion's mean estimate (ns) of `group/id` under `criterion_dir`.
fn criterion_mean_ns(criterion_dir: &Path, group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir.join(group).join(id).join("new/estimates.json");
    let value: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    value["mean"]["point_estimate"].as_f64()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {memory:.0} GiB")
}

/// One line of the targets table.
struct Target {
    what: &'static str,
    goal: String,
    measured: String,
    met: Option<bool>,
    /// Why it can miss: printed under the table when it did (no numbers: those are above).
    why: String,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "not measured",
    }
}

/// The first point of a sweep at or above `recall`, as (recall, QPS).
fn at_recall(points: &[(f64, f64)], recall: f64) -> Option<(f64, f64)> {
    points.iter().copied().filter(|p| p.0 >= recall).fold(None, |best: Option<(f64, f64)>, p| match best {
        Some(b) if b.1 >= p.1 => Some(b),
        _ => Some(p),
    })
}

/// One row of the matched-recall table.
struct System {
    name: String,
    simd: String,
    build_s: f64,
    size_mib: f64,
    points: Vec<(f64, f64)>,
}

/// A (recall, QPS) curve of one system on one dataset.
struct Curve {
    label: String,
    points: Vec<(f64, f64)>,
}

fn peer_curves(peers: &Value) -> Vec<Curve> {
    let mut curves = Vec::new();
    for result in peers["results"].as_array().into_iter().flatten() {
        let simd = result["simd"].as_str().map(|s| format!(" ({s})")).unwrap_or_default();
        let label = format!(
            "{} {}{}",
            result["library"].as_str().unwrap_or("?"),
            result["index"].as_str().unwrap_or("?"),
            simd
        );
        let points = result["sweep"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["recall_at_10"].as_f64()?, p["single_qps"].as_f64()?)))
            .collect();
        curves.push(Curve { label, points });
    }
    curves
}

fn own_curves(outcome: &recall::Outcome) -> Vec<Curve> {
    outcome
        .configs
        .iter()
        .map(|c| Curve {
            label: format!("{} {}", c.system, c.index),
            points: c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect(),
        })
        .collect()
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws the series' labels in a box at `position`.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>, position: SeriesLabelPosition) -> Result<(), Error>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart.configure_series_labels().position(position).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

/// A legend entry: a short line in the series' color.
fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
}

/// Writer latency against "nines" (x = -log10(1 - quantile)), log latency.
fn plot_cdf(runs: &[writers::Run], path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_us = runs.iter().map(|r| r.latency.max_us).fold(10.0, f64::max) * 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption("add_chunk latency, with and without a persist loop", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..4.2f64, (0.1f64..max_us).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("quantile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "0".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => String::new(),
        })
        .x_labels(5)
        .draw()?;
    for (i, run) in runs.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> =
            run.cdf.iter().filter(|p| p.1 < 0.99995).map(|&(us, q)| (-(1.0 - q).log10(), us.max(0.1))).collect();
        let label = format!("{} {}", run.design, if run.persist { "with persist" } else { "without persist" });
        let style = if run.persist { color.stroke_width(2) } else { color.stroke_width(1) };
        chart.draw_series(LineSeries::new(points, style))?.label(label).legend(swatch(color));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// QPS (log) against recall@10 for every system on one dataset.
fn plot_recall(curves: &[Curve], title: &str, path: &Path) -> Result<(), Error> {
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let all: Vec<(f64, f64)> = curves.iter().flat_map(|c| c.points.iter().copied()).collect();
    let min_recall = all.iter().map(|p| p.0).fold(1.0, f64::min).min(0.8) - 0.02;
    let max_qps = all.iter().map(|p| p.1).fold(1.0, f64::max) * 2.0;
    let min_qps = all.iter().map(|p| p.1).fold(f64::MAX, f64::min).max(0.1) / 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(min_recall..1.005f64, (min_qps..max_qps).log_scale())?;
    chart.configure_mesh().x_desc("recall@10").y_desc("queries per second, one at a time, 1 thread").draw()?;
    for (i, curve) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let width = if curve.label.starts_with("vecindex") { 3 } else { 1 };
        chart
            .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(width)))?
            .label(curve.label.clone())
            .legend(swatch(color));
        chart.draw_series(curve.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    root.present()?;
    Ok(())
}

/// Writes the report to `to` and its plots beside it (in `<stem>/`), from the results in `out`
/// and criterion's estimates in `criterion_dir`.
pub fn write(out: &Path, to: &Path, criterion_dir: &Path) -> Result<(), Error> {
    let plots_dir = to.with_extension("");
    std::fs::create_dir_all(&plots_dir)?;
    let plots_rel = plots_dir.file_name().and_then(|n| n.to_str()).unwrap_or("benchmarks").to_owned();
    let mut md = String::new();
    let mut targets = Vec::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(
        md,
        "Generated by `scripts/bench-report` from the files it ran the benchmarks into; every number below is one"
    )?;
    writeln!(md, "those benchmarks printed. Do not edit by hand: rerun the script.\n")?;
    writeln!(md, "- Machine: {}", machine())?;
    writeln!(
        md,
        "- FAISS: the `faiss` crate's static build at its default (generic, `-march=x86-64`) SIMD level; the peers' faiss-cpu"
    )?;
    writeln!(
        md,
        "  from PyPI is measured at each SIMD level it dispatches to on this CPU (`FAISS_SIMD_LEVEL`; NONE is its generic code), to show what that difference is worth."
    )?;
    writeln!(md, "- Raw results: `{}` (JSON, criterion's estimates under `criterion/`).\n", out.display())?;
    writeln!(md, "{METHOD}")?;

    // Criterion.
    writeln!(md, "## Throughput (criterion, `cargo bench -p vecindex-bench --bench core`)\n")?;
    writeln!(md, "Mean time per iteration as criterion estimated it, converted to operations per second.\n")?;
    writeln!(md, "| benchmark | VectorIndex | MutexIndex | FaissMutex (old design) | raw |")?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    let per_second =
        |group: &str, id: &str, ops: f64| criterion_mean_ns(criterion_dir, group, id).map(|ns| ops / (ns / 1e9));
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}/s"));
    for (threads, ops) in [(1, 4000.0), (2, 8000.0), (4, 16000.0)] {
        let id = |design: &str| format!("{design}/{threads} writers");
        writeln!(
            md,
            "| add_chunk, {threads} writer(s) | {} | {} | {} | {} |",
            fmt(per_second("add_chunk", &id("VectorIndex"), ops)),
            fmt(per_second("add_chunk", &id("MutexIndex"), ops)),
            fmt(per_second("add_chunk", &id("FaissMutex"), ops)),
            fmt(per_second("add_chunk", &id("RawAppend"), ops)),
        )?;
    }
    writeln!(
        md,
        "| ingest, add_document of 50-chunk documents | {} | {} | {} | {} |",
        fmt(per_second("ingest", "VectorIndex", 4000.0)),
        fmt(per_second("ingest", "MutexIndex", 4000.0)),
        fmt(per_second("ingest", "FaissMutex", 4000.0)),
        fmt(per_second("ingest", "RawAppend", 4000.0)),
    )?;
    writeln!(
        md,
        "| ingest floor with each vector moved in, not copied (RawMove) | | | | {} |",
        fmt(per_second("ingest", "RawMove", 4000.0)),
    )?;
    for (group, what) in [("search_idle", "search, no writers"), ("search_with_writer", "search, one writer adding")] {
        writeln!(
            md,
            "| {what} | {} | {} | {} | |",
            fmt(per_second(group, "VectorIndex", 1.0)),
            fmt(per_second(group, "MutexIndex", 1.0)),
            fmt(per_second(group, "FaissMutex", 1.0))
        )?;
    }
    let head_search = per_second("search_head", "in the head", 1.0);
    let sealed_search = per_second("search_head", "sealed", 1.0);
    writeln!(md, "| search, 8 000 rows in its head | {} | | | |", fmt(head_search))?;
    writeln!(md, "| search, 8 000 rows sealed by force_merge | {} | | | |", fmt(sealed_search))?;
    // What the writer of search_with_writer managed meanwhile (bench/benches/core.rs writes it).
    let search_writers: Vec<SearchWriter> =
        read(&criterion_dir.join("search_with_writer").join("writer.json"))?.unwrap_or_default();
    if !search_writers.is_empty() {
        let cell = |design: &str| {
            search_writers.iter().find(|w| w.design == design).map_or("-".into(), |w| {
                format!("{:.0}/s ({} rows at the end)", w.adds as f64 / w.seconds, w.rows_after)
            })
        };
        writeln!(
            md,
            "| the writer's adds meanwhile (rows: {} before) | {} | {} | {} | |",
            search_writers[0].rows_before,
            cell("VectorIndex"),
            cell("MutexIndex"),
            cell("FaissMutex")
        )?;
    }
    let persist_mb = |design: &str| criterion_mean_ns(criterion_dir, "persist_full", design).map(|ns| ns / 1e6);
    writeln!(
        md,
        "| full persist of 20 000 x 384 (ms) | {} | {} | {} | |\n",
        persist_mb("VectorIndex").map_or("-".into(), |v| format!("{v:.1}")),
        persist_mb("MutexIndex").map_or("-".into(), |v| format!("{v:.1}")),
        persist_mb("FaissMutex").map_or("-".into(), |v| format!("{v:.1}"))
    )?;
    if let Some(ours) = search_writers.iter().find(|w| w.design == "VectorIndex") {
        let growth = |w: &SearchWriter| (w.rows_after as f64 / w.rows_before as f64 - 1.0) * 100.0;
        let others: Vec<String> = search_writers
            .iter()
            .filter(|w| w.design != "VectorIndex")
            .map(|w| format!("{}'s {:.0}/s (+{:.0}%)", w.design, w.adds as f64 / w.seconds, growth(w)))
            .collect();
        writeln!(
            md,
            "Search with a writer: the writer tries to add a chunk every 500 µs for as long as criterion measures that design. VectorIndex's writer never waits for the searches, so it added {:.0}/s and the index every search scans grew by {:.0}% during the measurement; against {}: a writer behind a lock that searches take back to back gets in far less often, so those indexes stayed smaller and their searches did not slow down. Compare search QPS across designs only together with this row.\n",
            ours.adds as f64 / ours.seconds,
            growth(ours),
            others.join(" and ")
        )?;
    }
    if let Some((head, sealed)) = head_search.zip(sealed_search) {
        writeln!(
            md,
            "Search over rows in the head: every query scans the head's rows exactly, one row at a time (each row its own allocation, checked for visibility before it is scored), where a sealed segment's rows are one contiguous array scored in blocks. On the same 8 000 rows the head answered {head:.0} queries/s and the sealed segment {sealed:.0}/s ({:+.0}%).\n",
            (sealed / head - 1.0) * 100.0
        )?;
    }
    let ingest = per_second("ingest", "VectorIndex", 4000.0).zip(per_second("ingest", "RawAppend", 4000.0));
    targets.push(Target {
        what: "ingest (add_document, 50 chunks each) against raw unsynchronized append",
        goal: ">= 0.8x".into(),
        measured: ingest.map_or("-".into(), |(v, r)| format!("{:.2}x ({v:.0}/s vs {r:.0}/s)", v / r)),
        met: ingest.map(|(v, r)| v / r >= 0.8),
        why: format!(
            "The raw floor copies each vector into one growing array, as a flat index stores them, and how long that takes varies between runs (from 0.92 to 1.87 ms for these 4000 chunks in criterion runs on this machine: the array grows by reallocating megabytes, into memory the allocator has or has not handed out before); the RawMove row, which moves each vector in whole as vecindex's head does, is the steadier floor, at {}. Against either, vecindex does more per chunk than an append: it validates the vector and normalizes it (cosine), claims the chunk id and the document in the sharded id maps (SipHash, a shard lock each), allocates the row's shared metadata, takes a sequence number and publishes the row; its sealer thread copies full heads into sealed segments on the same two cores.",
            fmt(per_second("ingest", "RawMove", 4000.0))
        ),
    });

    // Writers.
    if let Some(runs) = read::<Vec<writers::Run>>(&out.join("writers.json"))? {
        let first = &runs[0];
        writeln!(md, "## Writer latency during persist (`vecindex-bench writers`)\n")?;
        writeln!(
            md,
            "{} writer(s) adding single 384-d chunks at {:.0}/s each for {} s after a preload of {} rows; \"with persist\": one more thread persists in a loop. Latency of each `add_chunk` call, in µs.\n",
            first.writers, first.rate_per_writer, first.seconds, first.preload
        )?;
        writeln!(
            md,
            "| design | persist | adds | p50 | p99 | p99.9 | max | calls > 1 ms (preempted) | persists (p50 ms) |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in &runs {
            let l = &r.latency;
            writeln!(
                md,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} ({}) | {} |",
                r.design,
                if r.persist { "yes" } else { "no" },
                r.adds,
                l.p50_us,
                l.p99_us,
                l.p999_us,
                l.max_us,
                r.slow_calls,
                r.slow_calls_preempted,
                r.persist_latency.as_ref().map_or("-".into(), |p| format!("{} ({:.1})", r.persists, p.p50_us / 1e3))
            )?;
        }
        plot_cdf(&runs, &plots_dir.join("writer-latency.svg"))?;
        writeln!(md, "\n![writer latency]({plots_rel}/writer-latency.svg)\n")?;
        let get = |design: &str, persist: bool| {
            runs.iter().find(|r| r.design == design && r.persist == persist).map(|r| &r.latency)
        };
        let (with, without, mutex) = (get("VectorIndex", true), get("VectorIndex", false), get("MutexIndex", true));
        targets.push(Target {
            what: "VectorIndex writer p99.9 with persist against without",
            goal: "<= 1.5x".into(),
            measured: with.zip(without).map_or("-".into(), |(w, o)| {
                format!("{:.2}x ({:.1} vs {:.1} µs)", w.p999_us / o.p999_us, w.p999_us, o.p999_us)
            }),
            met: with.zip(without).map(|(w, o)| w.p999_us <= 1.5 * o.p999_us),
            why: "The persister is one more busy thread on a 2-core machine that also runs the index's sealer: the writer-latency table's column of calls over 1 ms says how many of the slow calls were the writer waiting for a core.".into(),
        });
        targets.push(Target {
            what: "writer p99.9 with persist, MutexIndex against VectorIndex",
            goal: ">= 100x".into(),
            measured: with.zip(mutex).map_or("-".into(), |(w, m)| {
                format!("{:.0}x ({:.1} vs {:.1} µs)", m.p999_us / w.p999_us, m.p999_us, w.p999_us)
            }),
            met: with.zip(mutex).map(|(w, m)| m.p999_us >= 100.0 * w.p999_us),
            why: "MutexIndex holds its lock for a whole persist; with a small index on a fast disk its persists, and so its writers' waits, are short.".into(),
        });
        targets.push(Target {
            what: "longest VectorIndex writer stall during persist",
            goal: "< 1 ms".into(),
            measured: with.map_or("-".into(), |w| format!("{:.3} ms", w.max_us / 1e3)),
            met: with.map(|w| w.max_us < 1000.0),
            why: {
                let run = runs.iter().find(|r| r.design == "VectorIndex" && r.persist);
                let counted = run.map_or(String::new(), |r| {
                    format!(
                        "In this run {} of the writer's {} calls took over 1 ms, and {} of those were preempted (the thread's involuntary context switches rose during the call). ",
                        r.slow_calls, r.adds, r.slow_calls_preempted
                    )
                });
                format!(
                    "{counted}A writer that loses its core to the persister, the sealer or the builder for a scheduler slice stalls for that long whatever the index does: on 2 cores, with those three threads busy, a slice of a few ms now and then is the scheduler's, and only a machine with a core to spare for each (or a writer pinned to its own) would take it away. The slow calls that were not preempted were timed by phase in an earlier round, which found a shard of the chunk-id map doubling its hash table on the writer whose insert filled it; the sealer now grows shards that are about to fill off the write path (`grow_ahead` in src/sync.rs). A burst of adds faster than the sealer polls (the growth benchmark adds back to back) can still grow a shard on the writer; a hash map that resizes incrementally would remove those."
                )
            },
        });
    }

    // Seed.
    let seeds: Vec<seed::Outcome> =
        matching(out, "seed-").iter().filter_map(|p| read::<Vec<seed::Outcome>>(p).ok().flatten()).flatten().collect();
    if !seeds.is_empty() {
        writeln!(md, "## The seed's benchmark (`vecindex-bench seed`)\n")?;
        writeln!(
            md,
            "Documents of about 50 KB cut from the python3.11-doc sources, chunked as `vecindex ingest` does, embedded per document, added chunk by chunk with `add_chunk` while a persist runs concurrently after every N documents; then a final persist, and a strict reopen that must find every chunk. The seed's Python system: 32.1 s total, 48.2 ms mean add_chunk (embedding included), 120 ms persist, 3 crashes in 100 runs.\n"
        )?;
        writeln!(
            md,
            "| design | embedder | docs | persist every | chunks | runs | failed | total (median) | add_chunk mean / p99 (µs) | embedding per chunk (µs) | persist p50 / max (ms) |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for s in &seeds {
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {:.2} s | {:.1} / {:.1} | {:.0} | {:.1} / {:.1} |",
                s.design,
                s.embedder,
                s.docs,
                s.persist_every,
                s.chunks_per_run,
                s.runs,
                s.failures,
                s.total_s_median,
                s.add_chunk.mean_us,
                s.add_chunk.p99_us,
                s.embed_us_per_chunk,
                s.persist.p50_us / 1e3,
                s.persist.max_us / 1e3
            )?;
        }
        writeln!(md)?;
    }

    // Recall.
    for path in matching(out, "recall-") {
        let Some(outcome) = read::<recall::Outcome>(&path)? else { continue };
        let name = outcome.dataset.name.clone();
        let peers: Option<Value> = read(&out.join(format!("peers-{name}.json")))?;
        writeln!(
            md,
            "## Search on {name} ({} x {}, {} queries, k = 10)\n",
            outcome.dataset.n, outcome.dataset.dim, outcome.dataset.queries
        )?;
        writeln!(
            md,
            "Queries one at a time on one thread; recall@10 against exact inner-product search. vecindex: `vecindex-bench recall`; peers: `scripts/peers`.\n"
        )?;
        // One table, every system, QPS at matched recall.
        let mut systems: Vec<System> = outcome
            .configs
            .iter()
            .map(|c| System {
                name: format!("{} {}", c.system, c.index),
                simd: if c.system.starts_with("faiss") || c.index != "exact" {
                    "generic (static build)"
                } else {
                    "AVX2 (runtime)"
                }
                .into(),
                build_s: c.build_s,
                size_mib: c.memory_mb,
                points: c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect(),
            })
            .collect();
        if let Some(peers) = &peers {
            for result in peers["results"].as_array().into_iter().flatten() {
                systems.push(System {
                    name: format!(
                        "{} {}",
                        result["library"].as_str().unwrap_or("?"),
                        result["index"].as_str().unwrap_or("?")
                    ),
                    simd: result["simd"].as_str().unwrap_or("-").into(),
                    build_s: result["build_s"].as_f64().unwrap_or(f64::NAN),
                    size_mib: result["index_mb"].as_f64().unwrap_or(f64::NAN),
                    points: result["sweep"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| Some((p["recall_at_10"].as_f64()?, p["single_qps"].as_f64()?)))
                        .collect(),
                });
            }
            writeln!(
                md,
                "Peers: {} (`scripts/peers`, Python, queries one at a time from a loop).\n",
                peers["versions"]
            )?;
        }
        writeln!(
            md,
            "QPS at matched recall: the fastest setting of each system that reaches the recall (its recall in brackets).\n"
        )?;
        writeln!(
            md,
            "| system | SIMD | build (s) | size (MiB) | recall >= 0.90 | recall >= 0.95 | recall >= 0.99 | best recall |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|")?;
        for system in &systems {
            let cell = |recall: f64| {
                at_recall(&system.points, recall).map_or("-".to_owned(), |(r, q)| format!("{q:.0} ({r:.3})"))
            };
            writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {:.4} |",
                system.name,
                system.simd,
                system.build_s,
                system.size_mib,
                cell(0.90),
                cell(0.95),
                cell(0.99),
                system.points.iter().map(|p| p.0).fold(0.0, f64::max)
            )?;
        }
        writeln!(
            md,
            "\nvecindex at every setting (`vecindex-bench recall`; segments: sealed segments after maintenance):\n"
        )?;
        writeln!(
            md,
            "| system | index | build (s) | size (MiB) | segments + rows in heads | ef | recall@10 | QPS | mean µs | p99 µs |"
        )?;
        writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for c in &outcome.configs {
            for p in &c.sweep {
                writeln!(
                    md,
                    "| {} | {} | {:.1} | {:.1} | {} + {} | {} | {:.4} | {:.0} | {:.1} | {:.1} |",
                    c.system,
                    c.index,
                    c.build_s,
                    c.memory_mb,
                    c.segments,
                    c.head_rows,
                    p.ef_search.map_or("-".into(), |e| e.to_string()),
                    p.recall_at_10,
                    p.qps,
                    p.mean_latency_us,
                    p.p99_latency_us
                )?;
            }
        }
        let mut curves = own_curves(&outcome);
        if let Some(peers) = &peers {
            curves.extend(peer_curves(peers));
        }
        let plot = format!("recall-{name}.svg");
        plot_recall(&curves, &format!("QPS against recall@10 on {name}"), &plots_dir.join(&plot))?;
        writeln!(md, "\n![QPS against recall on {name}]({plots_rel}/{plot})\n")?;

        let exact_config = outcome.configs.iter().find(|c| c.index == "exact");
        let exact = exact_config.and_then(|c| c.sweep.first());
        let flat = outcome
            .configs
            .iter()
            .find(|c| c.system.starts_with("faiss") && c.index == "Flat")
            .and_then(|c| c.sweep.first());
        // vecindex with FAISS flat segments: the same segments and head as `exact`, FAISS's kernel.
        let ours_flat =
            outcome.configs.iter().find(|c| c.system == "vecindex" && c.index == "Flat").and_then(|c| c.sweep.first());
        let exact_why = match (exact_config, exact, ours_flat, flat) {
            (Some(ec), Some(e), Some(of), Some(f)) => format!(
                "On {name}: both score every vector, vecindex over {} sealed segments and {} rows in heads, FAISS over one array. vecindex with FAISS flat segments in place of its own scan reaches {:.0} QPS, {:.0}% of raw FAISS: the rest is what the segments, the heads and the hits cost around the kernel. vecindex's own kernel reaches {:.0}% of FAISS's on those same segments: with {}-dimensional rows a row is a few SIMD steps, so the work per row besides its multiply-adds (the final sum, the top-k check) weighs more than at 384 dimensions.",
                ec.segments,
                ec.head_rows,
                of.qps,
                of.qps / f.qps * 100.0,
                e.qps / of.qps * 100.0,
                outcome.dataset.dim
            ),
            _ => format!("On {name}: no vecindex Flat configuration to separate the kernel from the segments."),
        };
        targets.push(Target {
            what: "exact search against raw FAISS flat (same build)",
            goal: ">= 0.9x".into(),
            measured: exact.zip(flat).map_or("-".into(), |(e, f)| {
                format!("{:.2}x ({:.0} vs {:.0} QPS, {name})", e.qps / f.qps, e.qps, f.qps)
            }),
            met: exact.zip(flat).map(|(e, f)| e.qps >= 0.9 * f.qps),
            why: exact_why,
        });
        // The better of vecindex's HNSW configurations at recall 0.95.
        let hnsw: Vec<&recall::Config> =
            outcome.configs.iter().filter(|c| c.system == "vecindex" && c.index.starts_with("HNSW")).collect();
        let ours = hnsw
            .iter()
            .filter_map(|c| {
                let point = at_recall(&c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect::<Vec<_>>(), 0.95)?;
                Some((point, c.index.clone()))
            })
            .max_by(|a, b| a.0.1.total_cmp(&b.0.1));
        let hnswlib = peers.as_ref().and_then(|p| {
            peer_curves(p)
                .into_iter()
                .filter(|c| c.label.starts_with("hnswlib"))
                .filter_map(|c| at_recall(&c.points, 0.95))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        });
        targets.push(Target {
            what: "recall@10 >= 0.95, QPS there against hnswlib's best",
            goal: "above".into(),
            measured: match (&ours, hnswlib) {
                (Some((o, how)), Some(h)) => {
                    format!("{:.0} vs {:.0} QPS (recall {:.3} vs {:.3}; {how}, {name})", o.1, h.1, o.0, h.0)
                }
                (Some((o, how)), None) => format!("{:.0} QPS at recall {:.3} ({how}); no hnswlib result", o.1, o.0),
                _ => "recall 0.95 not reached".into(),
            },
            met: match (&ours, hnswlib) {
                (Some((o, _)), Some(h)) => Some(o.1 > h.1),
                (None, _) if !hnsw.is_empty() => Some(false),
                _ => None,
            },
            why: {
                let qps_at = |points: &[(f64, f64)]| at_recall(points, 0.95).map(|p| p.1);
                let raw = outcome
                    .configs
                    .iter()
                    .find(|c| c.system.starts_with("faiss") && c.index.starts_with("HNSW"))
                    .and_then(|c| qps_at(&c.sweep.iter().map(|p| (p.recall_at_10, p.qps)).collect::<Vec<_>>()));
                let merged = outcome.configs.iter().find(|c| c.index.contains("force-merged"));
                let faiss_cpu = peers.as_ref().and_then(|p| {
                    peer_curves(p)
                        .into_iter()
                        .find(|c| c.label.starts_with("faiss-cpu HNSW") && c.label.contains("generic"))
                        .and_then(|c| qps_at(&c.points))
                });
                let mut why =
                    format!("On {name}: the walk through the graph is FAISS's, built here at the portable SIMD level. ");
                if let Some(raw) = raw {
                    why += &format!(
                        "The same FAISS build's own HNSW32 (with vecindex's efConstruction, nothing around it) reaches {raw:.0} QPS at recall >= 0.95"
                    );
                    if let Some(f) = faiss_cpu {
                        why += &format!(", faiss-cpu {}'s generic build {f:.0}", peers.as_ref().map_or("?", |p| p["versions"]["faiss-cpu"].as_str().unwrap_or("?")));
                    }
                    why += &format!(
                        ", hnswlib {:.0}: on this data FAISS's HNSW is {} hnswlib's before vecindex does anything. ",
                        hnswlib.map_or(0.0, |h| h.1),
                        if hnswlib.is_some_and(|h| raw < h.1) { "behind" } else { "not behind" }
                    );
                    if let Some((o, _)) = &ours {
                        let share = o.1 / raw * 100.0;
                        why += &if share >= 95.0 {
                            format!(
                                "vecindex's best reaches {share:.0}% of the raw graph's QPS there (two graphs built from the same rows differ a little, and the sweep's ef steps are coarse), so what it adds around the walk on every query costs little next to the walk: "
                            )
                        } else {
                            format!(
                                "vecindex's best reaches {share:.0}% of the raw graph's QPS; the rest is the work around the walk on every query: "
                            )
                        };
                        why += "the view and the epoch, the k + 1 candidates FAISS returns re-scored with the crate's exact kernel and turned into hits, ";
                    }
                }
                why += &match merged {
                    Some(m) => format!(
                        "and the rows not yet in a sealed segment, scanned exactly ({} after force_merge, which closes the head and merges it too; up to head_capacity in a tiered index, which also walks one graph per segment).",
                        m.head_rows
                    ),
                    None => "and the rows not yet in a sealed segment, scanned exactly.".into(),
                };
                why
            },
        });
    }

    // Disk.
    if let Some(d) = read::<disk::Outcome>(&out.join("disk.json"))? {
        writeln!(md, "## Persist and open (`vecindex-bench disk`)\n")?;
        let mb = d.persist_bytes as f64 / 1e6;
        writeln!(
            md,
            "Full persists into new directories and `dd` runs alternate, {} of each; the table gives the median and the fastest and slowest run. A run that copies into page-cache pages the virtual machine has not touched lately costs several times more, for dd as for a persist, and how many runs that hits varies from one invocation to the next; the bandwidth target compares the fastest run of each.\n",
            d.runs
        )?;
        writeln!(md, "| measure | median | runs |\n|---|---:|---:|")?;
        writeln!(
            md,
            "| full persist, {} x {} ({mb:.1} MB in {} files) | {:.1} ms ({:.0} MB/s) | {} |",
            d.rows,
            d.dim,
            d.persist_files,
            d.persist_ms,
            mb / d.persist_ms * 1e3,
            d.persist_range
        )?;
        writeln!(
            md,
            "| `dd bs=1M conv=fsync` of as many bytes (from a file in the page cache) | {:.1} ms ({:.0} MB/s) | {} |",
            d.dd_ms,
            mb / d.dd_ms * 1e3,
            d.dd_range
        )?;
        writeln!(md, "| MutexIndex full persist (re-encodes everything) | {:.1} ms | |", d.mutex_persist_ms)?;
        writeln!(
            md,
            "| incremental persist after +{} rows (1%) | {} bytes in {} files ({:.2}% of the full persist), {:.1} ms | |\n",
            d.incremental_rows,
            d.incremental_bytes,
            d.incremental_files,
            d.incremental_bytes as f64 * 100.0 / d.persist_bytes as f64,
            d.incremental_ms
        )?;
        writeln!(
            md,
            "Opens, median of {} runs; cold = the directory's files evicted from the page cache first.\n",
            d.runs
        )?;
        writeln!(
            md,
            "| what | MB | cold read of the files (ms) | cold open (ms) | first query (ms) | warm open (ms) | first query (ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|")?;
        for o in &d.opens {
            writeln!(
                md,
                "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                o.what,
                o.bytes as f64 / 1e6,
                o.cold_read_ms,
                o.cold_open_ms,
                o.cold_first_query_ms,
                o.warm_open_ms,
                o.warm_first_query_ms
            )?;
        }
        writeln!(md)?;
        targets.push(Target {
            what: "persist bandwidth against dd with fsync",
            goal: ">= 70%".into(),
            measured: format!(
                "{:.0}% (fastest of {} runs each: {:.1} ms against dd's {:.1} ms; medians {:.1} and {:.1} ms)",
                bandwidth_share(&d) * 100.0,
                d.runs,
                d.persist_range.min_ms,
                d.dd_range.min_ms,
                d.persist_ms,
                d.dd_ms
            ),
            met: Some(bandwidth_share(&d) >= 0.7),
            why: "Not the number of fsyncs: the full persist writes few files (the count is in the persist table), each to a temporary file that is fsynced and renamed, as dd's one file is fsynced once. Compare the ranges in the persist table: a run that copies into memory the guest has not touched lately is several times slower, for dd as for a persist.".into(),
        });
        let share = d.incremental_bytes as f64 / d.persist_bytes as f64;
        targets.push(Target {
            what: "incremental persist after +1%, bytes against a full persist",
            goal: "<= 3%".into(),
            measured: format!("{:.2}%", share * 100.0),
            met: Some(share <= 0.03),
            why: "An incremental persist rewrites the head's rows whole (up to head_capacity rows): the smaller the index, the larger that share.".into(),
        });
    }

    // Growth.
    if let Some(g) = read::<Vec<growth::Outcome>>(&out.join("growth.json"))? {
        writeln!(md, "## Adds across a growth step (`vecindex-bench growth`)\n")?;
        if let Some(first) = g.first() {
            writeln!(
                md,
                "{} single adds right after a bulk load of {} x {} rows, one writer. The windows start when an add finishes, so a stall of the very first add (where a flat FAISS index reallocates) shows in the max, not in the slowest window.\n",
                first.adds, first.rows, first.dim
            )?;
        }
        writeln!(
            md,
            "| design | adds/s | slowest 10 ms window after the first add (adds/s) | p50 (µs) | p99.9 (µs) | max (ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
        for o in &g {
            writeln!(
                md,
                "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
                o.design,
                o.adds_per_s,
                o.slowest_window_adds_per_s,
                o.latency.p50_us,
                o.latency.p999_us,
                o.latency.max_us / 1e3
            )?;
        }
        writeln!(md)?;
    }

    // HNSW builds over repeated vectors.
    if let Some(d) = read::<Vec<duplicates::Outcome>>(&out.join("duplicates.json"))? {
        writeln!(md, "## HNSW builds over repeated vectors (`vecindex-bench duplicates`)\n")?;
        writeln!(
            md,
            "HNSW32 (efConstruction {}) over {} chunks of the python3.11-doc corpus embedded by the hashing embedder (384-d). In the repeating patterns every other row copies one of {} boilerplate chunks, exactly or with noise of 1e-5 per component (the same text embedded in another batch). Raw FAISS adds every row in one call; vecindex builds a segment with one graph node per distinct vector (`src/segment/groups.rs`). Both on the build's default OpenMP threads, in the same run.\n",
            vecindex::SegmentIndex::default().ef_construction,
            d.first().map_or(0, |o| o.rows),
            duplicates::BOILERPLATE
        )?;
        writeln!(md, "| rows | graph nodes (vecindex) | raw FAISS build (s) | vecindex build (s) | raw / vecindex |")?;
        writeln!(md, "|---|---:|---:|---:|---:|")?;
        for o in &d {
            writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.1}x |",
                o.pattern,
                o.nodes,
                o.raw_faiss_s,
                o.vecindex_s,
                o.raw_faiss_s / o.vecindex_s
            )?;
        }
        writeln!(md)?;
    }

    // Python threads through the binding.
    if let Some(p) = read::<PythonThreads>(&out.join("python-threads.json"))? {
        let first = p.results.first();
        writeln!(md, "## Python threads (`python/bench/threads.py`)\n")?;
        writeln!(
            md,
            "{} Python threads add chunks one at a time through the binding (a search of k = {} every {}th call) while one more thread persists back to back, {:.0} s per design, with {} of the {} x {} rows of {} preloaded. `seed` is the seed's design re-created in Python: a faiss-cpu `IndexFlatIP` and dicts under one `threading.Lock`, held for each add and for the whole persist (searches take it too: a flat FAISS index is not safe to search while another thread adds to it). `vecindex Flat` is the binding with exact FAISS segments, the seed's kind of index; `vecindex HNSW32` the binding with its default segments, whose graphs are built on the index's background thread during the run. Every call of the binding releases the GIL while it is in Rust, and must take it back to return: a call that has finished may wait for the GIL behind the other Python threads (CPython makes the holder hand it over after its switch interval, 5 ms by default), so the binding's worst stall reflects Python's scheduling of five busy Python threads (and the index's own) on two cores rather than the persist.\n",
            first.map_or(0, |r| r.writers),
            p.k,
            p.search_every,
            first.map_or(0.0, |r| r.seconds),
            first.map_or(0, |r| r.preload),
            p.rows,
            p.dim,
            p.dataset
        )?;
        writeln!(
            md,
            "| design | calls/s | adds | searches | add p50 (µs) | add p99 (µs) | writers' worst stall (ms) | search p50 (µs) | slowest search (ms) | persists (p50 ms) |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in &p.results {
            writeln!(
                md,
                "| {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.2} | {} ({:.1}) |",
                r.design,
                r.ops_per_s,
                r.adds,
                r.searches,
                r.add_p50_us,
                r.add_p99_us,
                r.add_max_ms,
                r.search_p50_us,
                r.search_max_ms,
                r.persists,
                r.persist_p50_ms
            )?;
        }
        writeln!(md)?;
    }

    // Targets first in the file, after the header.
    let mut table = String::from(
        "## Targets\n\nFrom the issue that set them; \"missed\" rows say by how much, and the list under the table says why.\n\n| target | goal | measured | |\n|---|---|---|---|\n",
    );
    for t in &targets {
        writeln!(table, "| {} | {} | {} | {} |", t.what, t.goal, t.measured, verdict(t.met))?;
    }
    let missed: Vec<&Target> = targets.iter().filter(|t| t.met == Some(false)).collect();
    if !missed.is_empty() {
        table.push_str("\nWhy the missed ones missed:\n\n");
        let mut explained = Vec::new();
        for t in missed {
            // The same reason given for two targets (one per dataset) is written once.
            if !explained.contains(&&t.why) {
                explained.push(&t.why);
                writeln!(table, "- {}: {}", t.what, t.why)?;
            }
        }
    }
    table.push('\n');
    let at = md.find("## Throughput").unwrap_or(md.len());
    md.insert_str(at, &table);
    std::fs::write(to, md)?;
    println!("wrote {} and its plots in {}", to.display(), plots_dir.display());
    Ok(())
}
