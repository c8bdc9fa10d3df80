//! Token feature hashing: a lexical embedder that needs no model.

use crate::embed::Embedder;
use crate::embed::words::{is_stop_word, words};
use crate::error::Result;

/// Hashes lower-cased words and adjacent word pairs into `dim` buckets with a ±1 sign (the
/// "hashing trick"), weights each count sublinearly (1 + ln count) and L2-normalizes. Common
/// English function words ("the", "how", "do", ...) are left out unless a text has nothing else,
/// so "how do I open a file" is about opening files, not about "how do I".
///
/// Deterministic across runs and machines (a fixed-seed xxh3), so an index built by one process
/// can be queried by another. Lexical, not semantic: "car" and "automobile" are unrelated to it.
/// A text without any word still gets a (fixed) unit vector, so every text can be indexed.
///
/// ```
/// use vecindex::embed::{Embedder, HashingEmbedder};
///
/// let embedder = HashingEmbedder::new(256);
/// let v = embedder.embed(&["persist the vector index", "the index is persisted"])?;
/// let cosine: f32 = v[0].iter().zip(&v[1]).map(|(a, b)| a * b).sum();
/// assert!(cosine > 0.2);
/// # Ok::<(), vecindex::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HashingEmbedder {
    dim: usize,
    name: String,
}

/// Seed of the feature hash; changing it changes every vector (and the embedder's name).
const SEED: u64 = 0x7665_6369_6e64_6578; // "vecindex"
/// Stands for a text with no word in it.
const EMPTY: &str = "\u{0}empty";

impl HashingEmbedder {
    /// An embedder of `dim` buckets (at least 1). 384 matches MiniLM's dimension.
    pub fn new(dim: usize) -> Self {
        let dim = dim.max(1);
        Self { dim, name: format!("hashing-{dim}") }
    }

    fn add(&self, vector: &mut [f32], feature: &str) {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(feature.as_bytes(), SEED);
        let bucket = (hash % self.dim as u64) as usize;
        vector[bucket] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let lower = text.to_lowercase();
        let all: Vec<&str> = words(&lower).collect();
        let content: Vec<&str> = all.iter().copied().filter(|w| !is_stop_word(w)).collect();
        let words = if content.is_empty() { all } else { content };
        let mut counts = vec![0f32; self.dim];
        for word in &words {
            self.add(&mut counts, word);
        }
        for pair in words.windows(2) {
            self.add(&mut counts, &format!("{} {}", pair[0], pair[1]));
        }
        if words.is_empty() {
            self.add(&mut counts, EMPTY);
        }
        // Sublinear term weight, sign kept: one word repeated does not drown the others.
        for c in counts.iter_mut() {
            if *c != 0.0 {
                *c = c.signum() * (1.0 + c.abs().ln());
            }
        }
        let norm = counts.iter().map(|c| c * c).sum::<f32>().sqrt();
        if norm > 0.0 {
            counts.iter_mut().for_each(|c| *c /= norm);
        } else {
            counts[0] = 1.0; // every feature cancelled out (equal + and - counts): still a unit vector
        }
        counts
    }
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self::new(384)
    }
}

impl Embedder for HashingEmbedder {
    fn name(&self) -> &str {
        &self.name
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn unit_vectors_deterministic_and_lexical() {
        let e = HashingEmbedder::default();
        let texts = ["Open a file in Python", "how to open files with python", "mutex contention", "", "!!!"];
        let v = e.embed(&texts).unwrap();
        for x in &v {
            assert_eq!(x.len(), 384);
            assert!((cosine(x, x) - 1.0).abs() < 1e-5, "unit length");
        }
        assert_eq!(v, e.embed(&texts).unwrap(), "deterministic");
        assert!(cosine(&v[0], &v[1]) > 0.15, "shared words are near: {}", cosine(&v[0], &v[1]));
        assert!(cosine(&v[0], &v[2]).abs() < 0.1, "no shared word, far: {}", cosine(&v[0], &v[2]));
        assert_eq!(v[3], v[4], "texts without words share one vector");
        assert_eq!(e.name(), "hashing-384");
        let only_function_words = e.embed(&["how do I", "the"]).unwrap();
        assert_ne!(only_function_words[0], only_function_words[1], "kept when nothing else is there");
    }
}
