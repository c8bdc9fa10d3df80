//! Embedders: text to vectors, outside every index critical section.
//!
//! An [`Embedder`] turns a batch of texts into vectors of one dimension. The index never calls
//! one: callers (the CLI, the HTTP server) embed first, then add the chunks, so a slow model never
//! holds anything a writer or a search waits for.
//!
//! - [`HashingEmbedder`] (default): token feature hashing, L2-normalized. It needs no model and is
//!   deterministic, but it is *lexical*: texts are near when they share words, not meaning.
//! - MiniLM: all-MiniLM-L6-v2, a semantic sentence embedder, loaded lazily from files on disk
//!   (never from a model hub), on one of two backends that return the same vectors (within 1e-4):
//!   `OnnxMiniLmEmbedder` (feature `onnx`: ONNX Runtime, loaded as a shared library) and
//!   `MiniLmEmbedder` (feature `minilm`: candle, pure Rust).

mod hashing;
#[cfg(feature = "minilm")]
mod minilm;
#[cfg(feature = "onnx")]
mod onnx;
#[cfg(any(feature = "minilm", feature = "onnx"))]
mod wordpiece;
mod words;

pub use hashing::HashingEmbedder;
#[cfg(feature = "minilm")]
pub use minilm::MiniLmEmbedder;
#[cfg(feature = "onnx")]
pub use onnx::{ONNXRUNTIME_DEFAULT, ONNXRUNTIME_ENV, OnnxMiniLmEmbedder, Precision};
#[cfg(any(feature = "minilm", feature = "onnx"))]
pub use wordpiece::MAX_TOKENS;
pub use words::check_query;

use crate::error::{Error, Result};

/// The names [`by_name`] takes.
pub const NAMES: [&str; 4] = ["hashing", "minilm", "minilm-int8", "minilm-candle"];

/// The embedder a front end's name selects (the CLI's `--embedder`, the Python binding's
/// `embedder=`): `hashing` (`hashing_dim` dimensions); `minilm` (ONNX Runtime, fp32),
/// `minilm-int8` (its int8 graph) and `minilm-candle` (candle), each over `model_dir`. The files a
/// MiniLM needs are checked here, so that a missing one is reported before any work starts.
///
/// # Errors
/// [`Error::Embedder`] for an unknown name, a backend this build lacks, or a missing file (the
/// message names the script that makes it).
pub fn by_name(name: &str, model_dir: &std::path::Path, hashing_dim: usize) -> Result<Box<dyn Embedder>> {
    let fail = |reason: String| Error::Embedder { name: name.to_owned(), reason };
    #[cfg_attr(not(any(feature = "minilm", feature = "onnx")), allow(unused_variables))]
    let need = |file: &str, script: &str| -> Result<()> {
        if model_dir.join(file).is_file() {
            Ok(())
        } else {
            Err(fail(format!("no {file} in {}: run {script}", model_dir.display())))
        }
    };
    match name {
        "hashing" => Ok(Box::new(HashingEmbedder::new(hashing_dim))),
        #[cfg(feature = "onnx")]
        "minilm" | "minilm-int8" => {
            let precision = if name == "minilm" { Precision::Fp32 } else { Precision::Int8 };
            let embedder = OnnxMiniLmEmbedder::new(model_dir).precision(precision);
            need("tokenizer.json", "scripts/fetch-minilm")?;
            need(embedder.graph(), "scripts/make-minilm-onnx")?;
            Ok(Box::new(embedder))
        }
        #[cfg(feature = "minilm")]
        "minilm-candle" => {
            need("model.safetensors", "scripts/fetch-minilm")?;
            Ok(Box::new(MiniLmEmbedder::new(model_dir)))
        }
        #[cfg(not(feature = "onnx"))]
        "minilm" | "minilm-int8" => Err(fail("this build has no ONNX Runtime (feature `onnx`)".into())),
        #[cfg(not(feature = "minilm"))]
        "minilm-candle" => Err(fail("this build has no candle MiniLM (feature `minilm`)".into())),
        _ => Err(fail(format!("unknown embedder (available: {})", NAMES.join(", ")))),
    }
}

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
    /// The most tokens of one text the model sees (what [`Embedder::count_tokens`] counts);
    /// the rest of a longer text is cut off before embedding. `None` (the default): no limit.
    fn window(&self) -> Option<usize> {
        None
    }
    /// The size of `text` in the unit of [`Embedder::window`]: word pieces, special tokens
    /// included, before any truncation, for a model with a window; characters (the default) for
    /// an embedder without one. Chunkers size chunks with it.
    ///
    /// # Errors
    /// The tokenizer cannot be loaded.
    fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(text.chars().count())
    }
    /// The vector of a search query, after [`check_query`]: a query without a content word
    /// (empty, blank, or only words such as "the" and "how") is refused rather than answered
    /// with arbitrary chunks.
    ///
    /// # Errors
    /// [`Error::EmptyQuery`], or what [`Embedder::embed`] returns.
    fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        check_query(query)?;
        self.embed(&[query])?.pop().ok_or_else(|| crate::Error::Embedder {
            name: self.name().to_owned(),
            reason: "returned no vector for the query".into(),
        })
    }
}
