//! Embedding speed (`vecindex-bench embedders`, `scripts/bench/embed_peers.py`).

use std::fmt::Write as _;

use super::*;
use crate::embedders::{Cell, Outcome};

/// vecindex's default embedder against the fastest alternative, and against candle (the issue's
/// targets).
const VS_FASTEST: f64 = 1.0;
const VS_CANDLE: f64 = 2.0;
/// The backend that is vecindex's default embedder, and the one it replaced.
const DEFAULT: &str = "onnx";
const CANDLE: &str = "candle";

/// One line of `scripts/bench/embed_peers.py` (the parts the report reads).
#[derive(serde::Deserialize)]
struct PeerCell {
    peer: String,
    graph: String,
    threads: usize,
    batch: usize,
    chunks_per_s: f64,
    ms_per_chunk: f64,
}

fn describe(backend: &str) -> String {
    match backend {
        "candle" => "candle (`MiniLmEmbedder`, before)".into(),
        "onnx" => "**vecindex: `OnnxMiniLmEmbedder`** (`model.onnx`)".into(),
        "onnx-fused" => "vecindex on the hand-fused graph (`model-fused.onnx`)".into(),
        "onnx-int8" => "vecindex int8 (`model-int8.onnx`; not the default)".into(),
        other => other.replace("onnxruntime-python ", "ONNX Runtime from Python, `") + "`",
    }
}

pub(super) fn write(r: &mut Report) -> Result<(), Error> {
    let Some(outcome) = read::<Outcome>(&r.out.join("embedders.json"))? else {
        return Ok(());
    };
    let mut cells: Vec<Cell> = outcome.cells.clone();
    if let Ok(text) = std::fs::read_to_string(r.out.join("embedders-peers.jsonl")) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let peer: PeerCell = serde_json::from_str(line).map_err(|e| format!("embedders-peers.jsonl: {e}"))?;
            cells.push(Cell {
                backend: format!("{} {}", peer.peer, peer.graph),
                threads: peer.threads,
                batch: peer.batch,
                chunks: 0,
                seconds: 0.0,
                chunks_per_s: peer.chunks_per_s,
                ms_per_chunk: peer.ms_per_chunk,
            });
        }
    }
    let mut backends: Vec<String> = Vec::new();
    let mut threads: Vec<usize> = Vec::new();
    let mut batches: Vec<usize> = Vec::new();
    for c in &cells {
        if !backends.contains(&c.backend) {
            backends.push(c.backend.clone());
        }
        if !threads.contains(&c.threads) {
            threads.push(c.threads);
        }
        if !batches.contains(&c.batch) {
            batches.push(c.batch);
        }
    }
    threads.sort_unstable();
    batches.sort_unstable();
    let cell = |backend: &str, t: usize, b: usize| {
        cells.iter().find(|c| c.backend == backend && c.threads == t && c.batch == b)
    };
    // Alternatives: candle and ONNX Runtime as other code runs it (not vecindex's own variants).
    let alternative = |backend: &str| backend == CANDLE || backend.starts_with("onnxruntime-python");

    let md = &mut r.md;
    writeln!(md, "## Embedding: MiniLM on each backend\n")?;
    writeln!(
        md,
        "`vecindex-bench embedders` and `scripts/bench/embed_peers.py`, one run on {} (the CPU: {}). The same {} chunks of the python3.11-doc corpus, as `vecindex ingest --embedder hashing` cuts them (at most 1 200 characters; {:.0} word pieces on average after the cut to 256), embedded in batches of each size for at least a few seconds per cell after a warm-up; each thread count is a process of its own. Each cell is ms per chunk, then chunks/s.\n",
        outcome.machine,
        outcome.machine.split(',').next().unwrap_or("unknown"),
        outcome.texts,
        outcome.mean_tokens
    )?;
    write!(md, "| backend | threads |")?;
    for b in &batches {
        write!(md, " batch {b} |")?;
    }
    write!(md, "\n|---|---:|")?;
    for _ in &batches {
        write!(md, "---:|")?;
    }
    writeln!(md)?;
    for backend in &backends {
        for &t in &threads {
            write!(md, "| {} | {t} |", describe(backend))?;
            for &b in &batches {
                match cell(backend, t, b) {
                    Some(c) => write!(md, " {:.1} ms, {:.1}/s |", c.ms_per_chunk, c.chunks_per_s)?,
                    None => write!(md, " - |")?,
                }
            }
            writeln!(md)?;
        }
    }
    for &t in &threads {
        write!(md, "| vecindex / fastest alternative | {t} |")?;
        for &b in &batches {
            let ours = cell(DEFAULT, t, b).map(|c| c.chunks_per_s);
            let best = backends
                .iter()
                .filter(|name| alternative(name))
                .filter_map(|name| cell(name, t, b))
                .map(|c| c.chunks_per_s)
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
            match (ours, best) {
                (Some(o), Some(a)) => write!(md, " {:.2}x |", o / a)?,
                _ => write!(md, " - |")?,
            }
        }
        writeln!(md)?;
    }
    writeln!(md)?;

    writeln!(
        md,
        "Every backend's vectors of the 12 reference sentences (`tests/data/minilm-reference.json`) against sentence-transformers':\n"
    )?;
    writeln!(md, "| backend | max abs difference |\n|---|---:|")?;
    for a in &outcome.accuracy {
        writeln!(md, "| {} | {:.1e} |", describe(&a.backend), a.max_abs_diff)?;
    }
    if let Some(q) = &outcome.int8 {
        writeln!(
            md,
            "\nint8 against fp32 (both ONNX Runtime), on {} chunks: cosine of each chunk's two vectors mean {:.4}, min {:.4}; for {} short queries over those chunks, int8's top 10 holds {:.1}% of fp32's.\n",
            q.corpus,
            q.mean_cosine,
            q.min_cosine,
            q.queries,
            q.top10_agreement * 100.0
        )?;
    }

    // The targets compare each backend at its best setting (threads and batch).
    let best =
        |backend: &str| cells.iter().filter(|c| c.backend == backend).map(|c| c.chunks_per_s).fold(0.0, f64::max);
    let ours = best(DEFAULT);
    let fastest =
        backends.iter().filter(|b| alternative(b)).map(|b| (best(b), b.clone())).max_by(|a, b| a.0.total_cmp(&b.0));
    let accurate = outcome.accuracy.iter().filter(|a| !a.backend.contains("int8")).all(|a| a.max_abs_diff <= 1e-4);
    if let Some((alt, name)) = fastest {
        r.targets.push(Target {
            what: "Embedder: vecindex's default against the fastest alternative",
            goal: format!(">= {VS_FASTEST:.1}x, each at its best threads and batch"),
            measured: format!("{:.2}x ({ours:.1} against {alt:.1} chunks/s, {})", ours / alt, describe(&name)),
            met: Some(ours / alt >= VS_FASTEST && accurate),
            why: "ONNX Runtime runs the same matrix products either way: at 200 word pieces and more they are nearly all of the time".into(),
        });
    }
    let candle = best(CANDLE);
    if candle > 0.0 {
        r.targets.push(Target {
            what: "Embedder: vecindex's default against candle (before)",
            goal: format!(">= {VS_CANDLE:.1}x"),
            measured: format!("{:.2}x ({ours:.1} against {candle:.1} chunks/s)", ours / candle),
            met: Some(ours / candle >= VS_CANDLE),
            why: "candle's CPU matrix products".into(),
        });
    }
    Ok(())
}
