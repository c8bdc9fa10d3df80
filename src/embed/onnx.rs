//! all-MiniLM-L6-v2 on ONNX Runtime: the same sentence embedder as [`super::MiniLmEmbedder`]
//! (the same word pieces, the same vectors within 1e-4), run by ONNX Runtime's CPU kernels.
//!
//! - The graph (`model.onnx`, or `model-int8.onnx` for the int8 variant) is made from the
//!   safetensors weights by `scripts/make-minilm-onnx`, without PyTorch: standard operators, which
//!   ONNX Runtime's optimizer fuses at load (a graph written with its fused BERT operators,
//!   `model-fused.onnx`, measured no faster: docs/benchmarks.md). It takes `input_ids` and
//!   `attention_mask` (int64, `batch x seq`) and returns `sentence_embedding` (`batch x 384`,
//!   mean-pooled over the real tokens and L2-normalized inside the graph).
//! - The runtime is a shared library loaded at run time (`libonnxruntime.so`, from PyPI's
//!   `onnxruntime` wheel; `scripts/fetch-onnxruntime` unpacks it): the build links nothing, and
//!   nothing is downloaded. A process has one ONNX Runtime: every embedder of a process must name
//!   the same library.
//! - One session is shared: a forward pass uses the session's intra-op threads, and concurrent
//!   callers take turns (on a few cores, two passes at once would only split the same cores).
//!   Batching many texts per call is what makes it fast.

use std::path::{Path, PathBuf};

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::embed::Embedder;
use crate::embed::wordpiece::{Grouping, Lazy, MAX_TOKENS, MINILM_NAME, Padded, WordPieces};
use crate::error::{Error, Result};
use crate::sync::Mutex;

/// The environment variable that names the ONNX Runtime library when
/// [`OnnxMiniLmEmbedder::runtime`] was not called (the `ort` crate's own name for it).
pub const ONNXRUNTIME_ENV: &str = "ORT_DYLIB_PATH";

/// Where `scripts/fetch-onnxruntime` puts the library, relative to the repository: the last
/// place [`OnnxMiniLmEmbedder`] looks.
pub const ONNXRUNTIME_DEFAULT: &str = "target/onnxruntime/libonnxruntime.so.1.31.1";

/// Which graph of the model directory to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// `model.onnx`: fp32, within 1e-4 of sentence-transformers.
    #[default]
    Fp32,
    /// `model-int8.onnx`: weights quantized to int8 (faster, slightly different vectors: an index
    /// built with one precision is named for it, and must be queried with the same one).
    Int8,
}

/// See the module docs.
pub struct OnnxMiniLmEmbedder {
    dir: PathBuf,
    runtime: Option<PathBuf>,
    threads: usize,
    precision: Precision,
    graph_file: Option<String>,
    model: Lazy<Model>,
}

struct Model {
    pieces: WordPieces,
    session: Mutex<Session>,
}

/// Texts per forward pass, sorted by length, each group padded to its own longest: at most 32,
/// no more padding than a tenth of the group's word pieces, and at most 512 word pieces with
/// the padding (two long chunks, or dozens of queries): on a CPU a long sequence alone already
/// fills the matrix units, and a larger pass only spills its activations out of the caches.
const GROUPING: Grouping = Grouping { size: 32, max_padding: Some(0.1), max_tokens: Some(512) };

impl OnnxMiniLmEmbedder {
    /// An embedder over `dir` (`tokenizer.json` and the graph); nothing is loaded until the
    /// first embedding. Fp32, with ONNX Runtime's default threads (one per physical core).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            runtime: None,
            threads: 0,
            precision: Precision::Fp32,
            graph_file: None,
            model: Lazy::new(),
        }
    }

    /// The ONNX Runtime shared library to load (default: the file [`ONNXRUNTIME_ENV`] names,
    /// else [`ONNXRUNTIME_DEFAULT`] under the working directory).
    #[must_use]
    pub fn runtime(mut self, library: impl Into<PathBuf>) -> Self {
        self.runtime = Some(library.into());
        self
    }

    /// Threads of one forward pass (0: ONNX Runtime's default).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// The graph to run.
    #[must_use]
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Another graph file of the model directory, of the same network and precision (for
    /// example a generic export, to compare with).
    #[must_use]
    pub fn graph_file(mut self, name: impl Into<String>) -> Self {
        self.graph_file = Some(name.into());
        self
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The word-piece ids of `text`, `[CLS]` and `[SEP]` included, truncated to
    /// [`MAX_TOKENS`](super::MAX_TOKENS).
    ///
    /// # Errors
    /// The model directory cannot be loaded.
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.model()?.pieces.encode(&[text]).map_err(|e| self.error(e))?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// The graph file it runs, in its model directory.
    pub fn graph(&self) -> &str {
        if let Some(name) = &self.graph_file {
            return name;
        }
        match self.precision {
            Precision::Fp32 => "model.onnx",
            Precision::Int8 => "model-int8.onnx",
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Embedder { name: self.name().to_owned(), reason: format!("{} ({})", reason, self.dir.display()) }
    }

    fn model(&self) -> Result<&Model> {
        let what = format_args!("MiniLM on ONNX Runtime ({})", self.graph());
        self.model.get(what, &self.dir, || self.load()).map_err(|e| self.error(e))
    }

    fn load(&self) -> std::result::Result<Model, String> {
        let library = self.runtime.clone().unwrap_or_else(|| {
            std::env::var_os(ONNXRUNTIME_ENV).map_or_else(|| PathBuf::from(ONNXRUNTIME_DEFAULT), PathBuf::from)
        });
        let environment = environment(&library)?;
        let pieces = WordPieces::load(&self.dir)?;
        let graph = self.dir.join(self.graph());
        if !graph.exists() {
            return Err(format!("no {} (scripts/make-minilm-onnx makes it)", self.graph()));
        }
        let e = |e: ort::Error| format!("{}: {e}", self.graph());
        let mut builder = Session::builder(environment)
            .map_err(e)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|err| e(err.into()))?
            .with_inter_threads(1)
            .map_err(|err| e(err.into()))?;
        if self.threads > 0 {
            builder = builder.with_intra_threads(self.threads).map_err(|err| e(err.into()))?;
        }
        let session = builder.commit_from_file(&graph).map_err(e)?;
        Ok(Model { pieces, session: Mutex::new(session) })
    }
}

/// Loads ONNX Runtime from `library` once per process; a later call must name the same file.
fn environment(library: &Path) -> std::result::Result<&'static Environment, String> {
    // One ONNX Runtime per process (its own rule), shared by every embedder; never part of a
    // model-checked protocol, so std's OnceLock.
    #[allow(clippy::disallowed_types)]
    static LOADED: std::sync::OnceLock<std::result::Result<(PathBuf, Environment), String>> =
        std::sync::OnceLock::new();
    if LOADED.get().is_none() && !library.exists() {
        // Not remembered: the file may be put there before the next try.
        return Err(format!(
            "no ONNX Runtime library at {} (scripts/fetch-onnxruntime puts one there; {ONNXRUNTIME_ENV} names another)",
            library.display()
        ));
    }
    let loaded = LOADED.get_or_init(|| {
        let cannot = |e: &dyn std::fmt::Display| format!("cannot load {}: {e}", library.display());
        let environment =
            ort::init_from(library).map_err(|e| cannot(&e))?.with_name("vecindex").build().map_err(|e| cannot(&e))?;
        Ok((library.to_owned(), environment))
    });
    match loaded {
        Ok((first, environment)) if first == library => Ok(environment),
        Ok((first, _)) => Err(format!(
            "this process already runs ONNX Runtime from {}; it cannot load {} as well",
            first.display(),
            library.display()
        )),
        Err(e) => Err(e.clone()),
    }
}

impl Model {
    fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, String> {
        self.pieces.embed_in_groups(texts, GROUPING, |padded| self.forward(padded))
    }

    fn forward(&self, padded: &Padded) -> std::result::Result<Vec<Vec<f32>>, String> {
        let shape = [padded.rows, padded.len];
        let ids: Vec<i64> = padded.ids.iter().map(|&id| i64::from(id)).collect();
        let mask: Vec<i64> = padded.mask.iter().map(|&m| i64::from(m)).collect();
        let t = |e: ort::Error| e.to_string();
        let ids = TensorRef::from_array_view((shape, ids.as_slice())).map_err(t)?;
        let mask = TensorRef::from_array_view((shape, mask.as_slice())).map_err(t)?;
        let mut session = self.session.lock().map_err(|_| "a forward pass panicked earlier".to_owned())?;
        let outputs = session.run(ort::inputs!["input_ids" => ids, "attention_mask" => mask]).map_err(t)?;
        let (out_shape, values) = outputs["sentence_embedding"].try_extract_tensor::<f32>().map_err(t)?;
        let dim = 384;
        if out_shape.len() != 2 || out_shape[0] as usize != padded.rows || out_shape[1] as usize != dim {
            return Err(format!("sentence_embedding has shape {out_shape:?}, expected [{}, {dim}]", padded.rows));
        }
        Ok(values.chunks_exact(dim).map(<[f32]>::to_vec).collect())
    }
}

impl Embedder for OnnxMiniLmEmbedder {
    fn name(&self) -> &str {
        match self.precision {
            Precision::Fp32 => MINILM_NAME,
            Precision::Int8 => "minilm-l6-v2-int8",
        }
    }

    fn dim(&self) -> usize {
        384
    }

    fn window(&self) -> Option<usize> {
        Some(MAX_TOKENS)
    }

    fn count_tokens(&self, text: &str) -> Result<usize> {
        self.model()?.pieces.count(text).map_err(|e| self.error(e))
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.model()?.embed(texts).map_err(|e| self.error(e))
    }
}
