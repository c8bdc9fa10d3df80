//! MiniLM against the reference made with sentence-transformers (tests/data/minilm-reference.json,
//! and the script beside it): token ids exactly, every embedding within 1e-4 (max abs
//! difference), for 12 sentences including "", "a" and one of more than 256 word pieces. Also:
//! one lazy load shared by threads, and a batch equals its sentences one by one.
//!
//! Needs the model files: `scripts/fetch-minilm` (or `VECINDEX_MINILM_DIR`).

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's
#![cfg(feature = "minilm")]

use std::path::PathBuf;
use std::sync::Arc;

use vecindex::embed::{Embedder, MAX_TOKENS, MiniLmEmbedder};

fn embedder() -> MiniLmEmbedder {
    let dir = std::env::var("VECINDEX_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/models/all-MiniLM-L6-v2"));
    assert!(dir.join("model.safetensors").exists(), "no model in {}: run scripts/fetch-minilm", dir.display());
    MiniLmEmbedder::new(dir)
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

#[test]
fn token_ids_and_embeddings_match_the_reference() {
    let r = reference();
    assert_eq!(r.sentences.len(), 12);
    assert!(r.sentences.iter().any(|s| s.is_empty()) && r.sentences.iter().any(|s| s == "a"));
    assert!(r.token_ids.iter().any(|ids| ids.len() == MAX_TOKENS), "one sentence is truncated");
    let e = embedder();
    for (sentence, ids) in r.sentences.iter().zip(&r.token_ids) {
        assert_eq!(&e.token_ids(sentence).unwrap(), ids, "token ids of {sentence:?}");
    }
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
    eprintln!("MiniLM: 12 sentences, token ids exact, worst max abs difference {worst:.2e}");
}

#[test]
fn the_model_loads_once_for_threads_racing_to_use_it() {
    let e = Arc::new(embedder());
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
    let missing = MiniLmEmbedder::new("/nonexistent/model");
    let err = missing.embed(&["x"]).unwrap_err();
    assert!(matches!(err, vecindex::Error::Embedder { .. }) && err.to_string().contains("config.json"), "{err}");
    assert!(missing.embed(&["again"]).is_err(), "a failed load is remembered, not retried forever");
}
