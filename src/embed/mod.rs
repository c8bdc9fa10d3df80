//! Embedders: text to vectors, outside every index critical section.
//!
//! An [`Embedder`] turns a batch of texts into vectors of one dimension. The index never calls
//! one: callers (the CLI, the HTTP server) embed first, then add the chunks, so a slow model never
//! holds anything a writer or a search waits for.
//!
//! - [`HashingEmbedder`] (default): token feature hashing, L2-normalized. It needs no model and is
//!   deterministic, but it is *lexical*: texts are near when they share words, not meaning.
//! - MiniLM (feature `minilm`): all-MiniLM-L6-v2 on candle, a semantic sentence embedder, loaded
//!   lazily from files on disk (never from a model hub).

mod hashing;
#[cfg(feature = "minilm")]
mod minilm;
mod words;

pub use hashing::HashingEmbedder;
#[cfg(feature = "minilm")]
pub use minilm::{MAX_TOKENS, MiniLmEmbedder};
pub use words::check_query;

use crate::error::Result;

/// Turns texts into vectors. Implementations are shared across threads (`&self`), and load any
/// model lazily, once.
pub trait Embedder: Send + Sync {
    /// A short name that identifies the model and its settings, for example `hashing-384`; an
    /// index built with one embedder must be queried with the same one.
    fn name(&self) -> &str;
    /// The length of every vector it returns.
    fn dim(&self) -> usize;
    /// One vector per text, in order.
    ///
    /// # Errors
    /// Model loading or inference failures (never for the hashing embedder).
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// The vector of a search query, after [`check_query`]: a query without a content word
    /// (empty, blank, or only words such as "the" and "how") is refused rather than answered
    /// with arbitrary chunks.
    ///
    /// # Errors
    /// [`Error::EmptyQuery`](crate::Error::EmptyQuery), or what [`Embedder::embed`] returns.
    fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        check_query(query)?;
        self.embed(&[query])?.pop().ok_or_else(|| crate::Error::Embedder {
            name: self.name().to_owned(),
            reason: "returned no vector for the query".into(),
        })
    }
}
