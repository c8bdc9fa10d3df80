//! Embedding speed and accuracy: MiniLM on every backend, on the same texts.
//!
//! The texts are chunks of the python3.11-doc corpus as `vecindex ingest` cuts them. Each
//! backend embeds them in batches of each size of `batches`, with 1 and 2 threads, for at least
//! `min_seconds` per cell after one warm-up batch. A thread count is a process of its own (the
//! parent re-runs this binary), because candle sizes its matrix products from
//! `RAYON_NUM_THREADS` and ONNX Runtime's threads belong to the process's one environment. The
//! children run with glibc's mmap threshold raised, which candle needs to be at its best.
//!
//! Backends: `candle` (`MiniLmEmbedder`, the embedder before ONNX Runtime), `onnx`
//! (`OnnxMiniLmEmbedder`, vecindex's default: standard operators, fused by ONNX Runtime's
//! optimizer at load), `onnx-fused` (the same embedder on a graph written with ONNX Runtime's
//! fused BERT operators) and `onnx-int8`. `scripts/bench/embed_peers.py` measures ONNX Runtime
//! from Python, as a Python user runs it, on the same texts (the `texts` file this writes).
//!
//! Accuracy: every backend embeds the sentences of `tests/data/minilm-reference.json`, and the
//! largest difference to sentence-transformers' vectors is recorded. The int8 graph's quality:
//! the cosine of its vector to fp32's for each of `quality_corpus` chunks, and how many of the
//! fp32 top 10 it keeps for `quality_queries` short queries over those chunks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[cfg(feature = "onnx")]
pub use measure::{accuracy, int8_quality, mean_tokens, speed};

pub struct Params {
    pub texts: usize,
    pub batches: Vec<usize>,
    pub threads: Vec<usize>,
    pub min_seconds: f64,
    pub quality_corpus: usize,
    pub quality_queries: usize,
}

/// One backend, thread count and batch size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cell {
    pub backend: String,
    pub threads: usize,
    pub batch: usize,
    /// Chunks embedded in the timed passes.
    pub chunks: usize,
    pub seconds: f64,
    pub chunks_per_s: f64,
    pub ms_per_chunk: f64,
}

/// The largest absolute difference of a backend's vectors to sentence-transformers'.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accuracy {
    pub backend: String,
    pub max_abs_diff: f64,
}

/// int8 against fp32 (both on ONNX Runtime).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Int8Quality {
    pub corpus: usize,
    pub queries: usize,
    pub mean_cosine: f64,
    pub min_cosine: f64,
    /// The mean share of fp32's top 10 that int8's top 10 holds.
    pub top10_agreement: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub machine: String,
    pub texts: usize,
    /// Word pieces per text after truncation, `[CLS]` and `[SEP]` included.
    pub mean_tokens: f64,
    pub cells: Vec<Cell>,
    pub accuracy: Vec<Accuracy>,
    pub int8: Option<Int8Quality>,
}

/// Where the model, the ONNX Runtime library and the reference are.
pub struct Paths {
    pub model: PathBuf,
    pub runtime: PathBuf,
    pub reference: PathBuf,
}

/// The texts: the first `n` chunks of the corpus, spread over its documents (every k-th).
pub fn texts(n: usize) -> std::io::Result<Vec<String>> {
    let all = crate::corpus::all_chunks(Path::new(crate::corpus::PYDOC))?;
    let step = (all.len() / n.max(1)).max(1);
    Ok(all.into_iter().step_by(step).take(n).collect())
}

/// What measures (the report reads the types above without ONNX Runtime in the build).
#[cfg(feature = "onnx")]
mod measure {
    use std::time::Instant;

    use vecindex::embed::{Embedder, OnnxMiniLmEmbedder, Precision};

    use super::{Accuracy, Cell, Int8Quality, Params, Paths, texts};

    /// Every backend this build has, for `threads` threads.
    fn backends(paths: &Paths, threads: usize) -> Vec<(&'static str, Box<dyn Embedder>)> {
        let onnx = || OnnxMiniLmEmbedder::new(&paths.model).runtime(&paths.runtime).threads(threads);
        #[cfg_attr(not(feature = "minilm"), allow(unused_mut))]
        let mut all: Vec<(&'static str, Box<dyn Embedder>)> = vec![
            ("onnx", Box::new(onnx())),
            ("onnx-fused", Box::new(onnx().graph_file("model-fused.onnx"))),
            ("onnx-int8", Box::new(onnx().precision(Precision::Int8))),
        ];
        #[cfg(feature = "minilm")]
        all.insert(0, ("candle", Box::new(vecindex::embed::MiniLmEmbedder::new(&paths.model))));
        all
    }

    /// The speed cells of one thread count (run in a process of its own, see the module docs).
    pub fn speed(params: &Params, paths: &Paths, threads: usize, texts: &[String]) -> Result<Vec<Cell>, String> {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut cells = Vec::new();
        for (backend, embedder) in backends(paths, threads) {
            embedder.embed(&texts[..1]).map_err(|e| format!("{backend}: {e}"))?; // loads the model
            for &batch in &params.batches {
                embedder.embed(&texts[..batch.min(texts.len())]).map_err(|e| e.to_string())?; // warm-up
                let started = Instant::now();
                let mut chunks = 0;
                while chunks == 0 || started.elapsed().as_secs_f64() < params.min_seconds {
                    for group in texts.chunks(batch) {
                        embedder.embed(group).map_err(|e| e.to_string())?;
                        chunks += group.len();
                    }
                }
                let seconds = started.elapsed().as_secs_f64();
                let cell = Cell {
                    backend: backend.to_owned(),
                    threads,
                    batch,
                    chunks,
                    seconds,
                    chunks_per_s: chunks as f64 / seconds,
                    ms_per_chunk: seconds * 1e3 / chunks as f64,
                };
                println!(
                    "embedders: {:<10} threads {threads} batch {batch:>2}: {:>7.1} chunks/s, {:>6.2} ms per chunk",
                    cell.backend, cell.chunks_per_s, cell.ms_per_chunk
                );
                cells.push(cell);
            }
        }
        Ok(cells)
    }

    /// Every backend against the sentence-transformers reference.
    pub fn accuracy(paths: &Paths) -> Result<Vec<Accuracy>, String> {
        let reference: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&paths.reference).map_err(|e| format!("{}: {e}", paths.reference.display()))?,
        )
        .map_err(|e| e.to_string())?;
        let sentences: Vec<String> =
            serde_json::from_value(reference["sentences"].clone()).map_err(|e| e.to_string())?;
        let expected: Vec<Vec<f32>> =
            serde_json::from_value(reference["embeddings"].clone()).map_err(|e| e.to_string())?;
        let sentences: Vec<&str> = sentences.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for (backend, embedder) in backends(paths, 0) {
            let got = embedder.embed(&sentences).map_err(|e| format!("{backend}: {e}"))?;
            let max_abs_diff = got
                .iter()
                .zip(&expected)
                .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())))
                .fold(0.0, f64::max);
            println!("embedders: {backend:<10} max |difference| to sentence-transformers {max_abs_diff:.2e}");
            out.push(Accuracy { backend: backend.to_owned(), max_abs_diff });
        }
        Ok(out)
    }

    /// int8 against fp32 on `corpus` chunks and `queries` short queries cut from other chunks.
    pub fn int8_quality(params: &Params, paths: &Paths) -> Result<Int8Quality, String> {
        let all = texts(params.quality_corpus + params.quality_queries).map_err(|e| e.to_string())?;
        let (corpus, rest) = all.split_at(params.quality_corpus.min(all.len()));
        let queries: Vec<String> = rest.iter().map(|t| t.chars().take(160).collect()).collect();
        let embed = |embedder: &OnnxMiniLmEmbedder, texts: &[String]| -> Result<Vec<Vec<f32>>, String> {
            let mut out = Vec::with_capacity(texts.len());
            for group in texts.chunks(32) {
                let group: Vec<&str> = group.iter().map(String::as_str).collect();
                out.extend(embedder.embed(&group).map_err(|e| e.to_string())?);
            }
            Ok(out)
        };
        let fp32 = OnnxMiniLmEmbedder::new(&paths.model).runtime(&paths.runtime);
        let int8 = OnnxMiniLmEmbedder::new(&paths.model).runtime(&paths.runtime).precision(Precision::Int8);
        let (corpus32, corpus8) = (embed(&fp32, corpus)?, embed(&int8, corpus)?);
        let (queries32, queries8) = (embed(&fp32, &queries)?, embed(&int8, &queries)?);
        let cosines: Vec<f64> = corpus32.iter().zip(&corpus8).map(|(a, b)| f64::from(dot(a, b))).collect();
        let top10 = |query: &[f32], rows: &[Vec<f32>]| {
            let mut scored: Vec<(f32, usize)> = rows.iter().enumerate().map(|(i, row)| (dot(query, row), i)).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.into_iter().take(10).map(|(_, i)| i).collect::<Vec<_>>()
        };
        let agreement: f64 = queries32
            .iter()
            .zip(&queries8)
            .map(|(q32, q8)| {
                let want = top10(q32, &corpus32);
                let got = top10(q8, &corpus8);
                got.iter().filter(|i| want.contains(i)).count() as f64 / want.len().max(1) as f64
            })
            .sum::<f64>()
            / queries32.len().max(1) as f64;
        let quality = Int8Quality {
            corpus: corpus.len(),
            queries: queries.len(),
            mean_cosine: cosines.iter().sum::<f64>() / cosines.len().max(1) as f64,
            min_cosine: cosines.iter().copied().fold(1.0, f64::min),
            top10_agreement: agreement,
        };
        println!(
            "embedders: int8 against fp32 on {} chunks: cosine mean {:.4}, min {:.4}; top-10 agreement {:.3} over {} queries",
            quality.corpus, quality.mean_cosine, quality.min_cosine, quality.top10_agreement, quality.queries
        );
        Ok(quality)
    }

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// Word pieces per text, on average.
    pub fn mean_tokens(paths: &Paths, texts: &[String]) -> Result<f64, String> {
        let embedder = OnnxMiniLmEmbedder::new(&paths.model).runtime(&paths.runtime);
        let mut total = 0;
        for text in texts {
            total += embedder.token_ids(text).map_err(|e| e.to_string())?.len();
        }
        Ok(total as f64 / texts.len().max(1) as f64)
    }
}
