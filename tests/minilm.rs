//! MiniLM, on each backend, against the reference made with sentence-transformers
//! (tests/data/minilm-reference.json, and the script beside it): token ids exactly, every
//! embedding within 1e-4 (max abs difference), for 12 sentences including "", "a" and one of more
//! than 256 word pieces; alone, in one batch, and in batches larger than a forward pass. Also:
//! one lazy load shared by threads, typed errors for missing files, and the int8 graph's
//! distance to the reference.
//!
//! Needs the model files: `scripts/fetch-minilm` (or `VECINDEX_MINILM_DIR`); for ONNX Runtime
//! also `scripts/make-minilm-onnx` and `scripts/fetch-onnxruntime` (or `ORT_DYLIB_PATH`).

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's
#![cfg(any(feature = "minilm", feature = "onnx"))]

use std::path::PathBuf;
use std::sync::Arc;

use vecindex::embed::{Embedder, MAX_TOKENS};

fn model_dir() -> PathBuf {
    let dir = std::env::var("VECINDEX_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").exists(), "no model in {}: run scripts/fetch-minilm", dir.display());
    dir
}

#[cfg(feature = "minilm")]
fn candle() -> vecindex::embed::MiniLmEmbedder {
    vecindex::embed::MiniLmEmbedder::new(model_dir())
}

#[cfg(feature = "onnx")]
fn runtime() -> PathBuf {
    let library = std::env::var("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|_| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/onnxruntime/libonnxruntime.so.1.31.1")
    });
    assert!(library.exists(), "no ONNX Runtime at {}: run scripts/fetch-onnxruntime", library.display());
    library
}

#[cfg(feature = "onnx")]
fn onnx() -> vecindex::embed::OnnxMiniLmEmbedder {
    let dir = model_dir();
    assert!(dir.join("model.onnx").exists(), "no model.onnx in {}: run scripts/make-minilm-onnx", dir.display());
    vecindex::embed::OnnxMiniLmEmbedder::new(dir).runtime(runtime())
}

struct Reference {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let text = include_str!("data/minilm-reference.json");
    let json: serde_json::Value = serde_json::from_str(text).unwrap();
    let strings =
        |v: &serde_json::Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    let rows = |v: &serde_json::Value| -> Vec<Vec<f64>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect()
    };
    Reference {
        sentences: strings(&json["sentences"]),
        token_ids: rows(&json["token_ids"]).into_iter().map(|r| r.into_iter().map(|x| x as u32).collect()).collect(),
        embeddings: rows(&json["embeddings"]).into_iter().map(|r| r.into_iter().map(|x| x as f32).collect()).collect(),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[cfg(feature = "minilm")]
#[test]
fn candle_matches_the_reference() {
    let e = candle();
    check_token_ids(|text| e.token_ids(text).unwrap());
    matches_the_reference("candle", &e);
}

#[cfg(feature = "onnx")]
#[test]
fn onnx_runtime_matches_the_reference() {
    let e = onnx();
    check_token_ids(|text| e.token_ids(text).unwrap());
    matches_the_reference("ONNX Runtime", &e);
    // The graph written with ONNX Runtime's fused operators agrees as well.
    matches_the_reference("ONNX Runtime, fused graph", &onnx().graph_file("model-fused.onnx"));
}

#[cfg(feature = "onnx")]
#[test]
fn the_int8_graph_is_near_the_reference_and_named_apart() {
    use vecindex::embed::Precision;
    let e = onnx().precision(Precision::Int8);
    assert_eq!(e.name(), "minilm-l6-v2-int8", "an int8 index must not pass for an fp32 one");
    assert_eq!(onnx().name(), "minilm-l6-v2");
    let r = reference();
    let refs: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    for ((sentence, got), expected) in r.sentences.iter().zip(e.embed(&refs).unwrap()).zip(&r.embeddings) {
        let cosine: f32 = got.iter().zip(expected).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.97, "int8 {sentence:?}: cosine {cosine} to the reference");
        assert!(max_abs_diff(&got, expected) > 1e-6, "int8 {sentence:?}: equal to fp32: not the int8 graph");
    }
}

#[cfg(feature = "onnx")]
#[test]
fn onnx_runtime_files_missing_are_typed_errors() {
    let e = vecindex::embed::OnnxMiniLmEmbedder::new(model_dir()).runtime("/nonexistent/libonnxruntime.so");
    let err = e.embed(&["x"]).unwrap_err();
    assert!(matches!(err, vecindex::Error::Embedder { .. }) && err.to_string().contains("no ONNX Runtime"), "{err}");
    let e = vecindex::embed::OnnxMiniLmEmbedder::new(model_dir()).runtime(runtime()).graph_file("missing.onnx");
    let err = e.embed(&["x"]).unwrap_err();
    assert!(err.to_string().contains("scripts/make-minilm-onnx"), "{err}");
}

fn check_token_ids(token_ids: impl Fn(&str) -> Vec<u32>) {
    let r = reference();
    assert_eq!(r.sentences.len(), 12);
    assert!(r.sentences.iter().any(|s| s.is_empty()) && r.sentences.iter().any(|s| s == "a"));
    assert!(r.token_ids.iter().any(|ids| ids.len() == MAX_TOKENS), "one sentence is truncated");
    for (sentence, ids) in r.sentences.iter().zip(&r.token_ids) {
        assert_eq!(&token_ids(sentence), ids, "token ids of {sentence:?}");
    }
}

fn matches_the_reference(backend: &str, e: &dyn Embedder) {
    let r = reference();
    let mut worst = 0f32;
    for (sentence, expected) in r.sentences.iter().zip(&r.embeddings) {
        let got = e.embed(&[sentence]).unwrap().remove(0);
        let diff = max_abs_diff(&got, expected);
        assert!(diff <= 1e-4, "{sentence:?}: max abs diff {diff}");
        worst = worst.max(diff);
    }
    // All at once: padded to the longest, masked in pooling, the same vectors.
    let refs: Vec<&str> = r.sentences.iter().map(String::as_str).collect();
    for ((sentence, got), expected) in r.sentences.iter().zip(e.embed(&refs).unwrap()).zip(&r.embeddings) {
        let diff = max_abs_diff(&got, expected);
        assert!(diff <= 1e-4, "batched {sentence:?}: max abs diff {diff}");
        worst = worst.max(diff);
    }
    // More texts than one forward pass takes, lengths interleaved: each group is cut from the
    // batch sorted by length, and every vector must come back in its text's place.
    let order: Vec<usize> = (0..3 * refs.len()).map(|i| (i * 7) % refs.len()).collect();
    let mixed: Vec<&str> = order.iter().map(|&i| refs[i]).collect();
    for (&i, got) in order.iter().zip(e.embed(&mixed).unwrap()) {
        let diff = max_abs_diff(&got, &r.embeddings[i]);
        assert!(diff <= 1e-4, "batch of {}, {:?}: max abs diff {diff}", mixed.len(), r.sentences[i]);
        worst = worst.max(diff);
    }
    eprintln!("MiniLM on {backend}: 12 sentences, worst max abs difference {worst:.2e}");
}

/// Threads racing to embed share one lazy load (and, on ONNX Runtime, one session).
fn threads_race_to_embed(e: Arc<dyn Embedder>) {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let e = e.clone();
            std::thread::spawn(move || e.embed(&[&format!("sentence number {i}")]).unwrap().remove(0))
        })
        .collect();
    for h in handles {
        let v = h.join().unwrap();
        assert_eq!(v.len(), 384);
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }
}

/// The window is 256 word pieces, and counting does not truncate.
fn counts_tokens_untruncated(e: &dyn Embedder) {
    let r = reference();
    assert_eq!(e.window(), Some(MAX_TOKENS));
    for (sentence, ids) in r.sentences.iter().zip(&r.token_ids) {
        let count = e.count_tokens(sentence).unwrap();
        if ids.len() < MAX_TOKENS {
            assert_eq!(count, ids.len(), "{sentence:?}");
        } else {
            assert!(count > MAX_TOKENS, "{sentence:?}: {count} word pieces, counted after truncation");
        }
    }
}

#[cfg(feature = "minilm")]
#[test]
fn candle_loads_once_for_racing_threads_and_counts_tokens() {
    threads_race_to_embed(Arc::new(candle()));
    counts_tokens_untruncated(&candle());
    let missing = vecindex::embed::MiniLmEmbedder::new("/nonexistent/model");
    let err = missing.embed(&["x"]).unwrap_err();
    assert!(matches!(err, vecindex::Error::Embedder { .. }) && err.to_string().contains("config.json"), "{err}");
    assert!(missing.embed(&["again"]).is_err(), "a failed load is remembered, not retried forever");
}

#[cfg(feature = "onnx")]
#[test]
fn onnx_runtime_loads_once_for_racing_threads_and_counts_tokens() {
    threads_race_to_embed(Arc::new(onnx()));
    counts_tokens_untruncated(&onnx());
}
