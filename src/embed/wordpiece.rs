//! Word pieces for BERT-style sentence embedders: the tokenizer both MiniLM backends share, and
//! the batching they share (sorted by length, padded per group).
//!
//! Like sentence-transformers, inputs are truncated to [`MAX_TOKENS`] word pieces (`[CLS]` and
//! `[SEP]` included; the shipped `tokenizer.json` says 128, `max_seq_length` says 256), and a batch
//! is sorted by length and run in groups padded to their own longest, so a batch's short texts do
//! not pay for its longest. The attention mask makes the padding invisible to the result.

use std::fmt::Display;
use std::path::Path;
use std::time::Instant;

use tokenizers::{Tokenizer, TruncationParams};

use crate::sync::OnceLock;

/// The name of both MiniLM backends: their vectors agree within 1e-4, so an index built with one
/// can be queried with the other.
pub(crate) const MINILM_NAME: &str = "minilm-l6-v2";

/// Word pieces per input, `[CLS]` and `[SEP]` included (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// A `tokenizer.json` set up for embedding: truncation to [`MAX_TOKENS`], no padding.
pub(crate) struct WordPieces {
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation, to measure texts.
    counter: Tokenizer,
    pad_id: u32,
}

/// One group of sequences, padded to its longest: row-major `ids` and `mask` of `rows x len`.
pub(crate) struct Padded {
    pub rows: usize,
    pub len: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<u32>,
}

impl WordPieces {
    /// Reads `dir/tokenizer.json`.
    pub(crate) fn load(dir: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(dir.join("tokenizer.json")).map_err(|e| format!("tokenizer.json: {e}"))?;
        let mut tokenizer = Tokenizer::from_bytes(bytes).map_err(|e| format!("tokenizer.json: {e}"))?;
        // Padding is done per group (`embed_in_groups`), not by the tokenizer for a whole batch.
        tokenizer.with_padding(None);
        let mut counter = tokenizer.clone();
        counter.with_truncation(None).map_err(|e| format!("tokenizer: {e}"))?;
        let pad_id = tokenizer.token_to_id("[PAD]").ok_or("tokenizer.json: no [PAD] token")?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..TruncationParams::default() }))
            .map_err(|e| format!("tokenizer: {e}"))?;
        Ok(Self { tokenizer, counter, pad_id })
    }

    /// The word-piece ids of each text, specials included, truncated to [`MAX_TOKENS`].
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, String> {
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| e.to_string())?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// The word pieces of `text`, specials included, untruncated.
    pub(crate) fn count(&self, text: &str) -> Result<usize, String> {
        Ok(self.counter.encode(text, true).map_err(|e| e.to_string())?.len())
    }

    /// Encodes `texts` and runs `forward` over their word pieces in groups, sorted by length and
    /// each padded to its longest, and returns its vectors in the order of `texts`. A group holds
    /// at most `grouping.size` sequences and is closed before it passes `grouping`'s padding
    /// share or token budget.
    pub(crate) fn embed_in_groups(
        &self,
        texts: &[&str],
        grouping: Grouping,
        mut forward: impl FnMut(&Padded) -> Result<Vec<Vec<f32>>, String>,
    ) -> Result<Vec<Vec<f32>>, String> {
        let sequences = self.encode(texts)?;
        let mut by_length: Vec<usize> = (0..sequences.len()).collect();
        by_length.sort_by_key(|&i| sequences[i].len());
        let mut vectors = vec![Vec::new(); sequences.len()];
        let mut rest = by_length.as_slice();
        while !rest.is_empty() {
            let size = grouping.take(rest.iter().map(|&i| sequences[i].len()));
            let (members, after) = rest.split_at(size);
            rest = after;
            let padded = self.pad(members.iter().map(|&i| sequences[i].as_slice()));
            let embedded = forward(&padded)?;
            if embedded.len() != members.len() {
                return Err(format!("{} vectors for {} texts", embedded.len(), members.len()));
            }
            for (&i, vector) in members.iter().zip(embedded) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }

    fn pad<'a>(&self, sequences: impl Iterator<Item = &'a [u32]> + Clone) -> Padded {
        let len = sequences.clone().map(<[u32]>::len).max().unwrap_or(0);
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        let mut rows = 0;
        for sequence in sequences {
            ids.extend_from_slice(sequence);
            ids.resize(ids.len() + len - sequence.len(), self.pad_id);
            mask.extend((0..len).map(|position| u32::from(position < sequence.len())));
            rows += 1;
        }
        Padded { rows, len, ids, mask }
    }
}

/// A model loaded by its first use, from any thread (the others wait for it, or take the
/// result), once: its load time or failure is logged, and a failure is remembered rather than
/// retried on every call.
pub(crate) struct Lazy<M>(OnceLock<Result<M, String>>);

impl<M> Lazy<M> {
    pub(crate) fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The model, loaded by `load` if this is the first call; `what` names it in the log.
    pub(crate) fn get(
        &self,
        what: impl Display,
        dir: &Path,
        load: impl FnOnce() -> Result<M, String>,
    ) -> Result<&M, &str> {
        self.0
            .get_or_init(|| {
                let started = Instant::now();
                let loaded = load();
                match &loaded {
                    Ok(_) => tracing::info!(dir = %dir.display(), ms = started.elapsed().as_secs_f64() * 1e3, "loaded {what}"),
                    Err(e) => tracing::error!(dir = %dir.display(), error = %e, "cannot load {what}"),
                }
                loaded
            })
            .as_ref()
            .map_err(String::as_str)
    }
}

/// How [`WordPieces::embed_in_groups`] groups sequences for one forward pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grouping {
    /// The most sequences per pass.
    pub size: usize,
    /// Close a group before its padding exceeds this share of its real word pieces. On a CPU a
    /// long sequence already fills the matrix units, so padding is pure cost, while short ones
    /// (queries) gain from being run together.
    pub max_padding: Option<f64>,
    /// Close a group before its padded size (sequences times the longest) exceeds this.
    pub max_tokens: Option<usize>,
}

impl Grouping {
    /// How many of `lengths` (ascending, at least one) the next group takes.
    fn take(&self, lengths: impl Iterator<Item = usize>) -> usize {
        let (mut count, mut real) = (0usize, 0usize);
        for len in lengths {
            let fits = match self.max_padding {
                // `len` is the longest so far: every member would be padded to it.
                Some(share) => (len * (count + 1)) as f64 <= (1.0 + share) * (real + len) as f64,
                None => true,
            };
            let small = self.max_tokens.is_none_or(|most| len * (count + 1) <= most);
            if count == self.size.max(1) || (count > 0 && !(fits && small)) {
                break;
            }
            count += 1;
            real += len;
        }
        count.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::Grouping;

    #[test]
    fn a_group_stops_at_its_size_its_token_budget_and_before_too_much_padding() {
        let fixed = Grouping { size: 32, max_padding: None, max_tokens: None };
        assert_eq!(fixed.take([5; 40].into_iter()), 32);
        assert_eq!(fixed.take([5, 300].into_iter()), 2);
        let bounded = Grouping { size: 32, max_padding: Some(0.1), max_tokens: None };
        // 3 x 10 real; a 100 would pad the three to 100: far over a tenth.
        assert_eq!(bounded.take([10, 10, 10, 100].into_iter()), 3);
        // 10, 10, 11: one padding piece for 31 real ones.
        assert_eq!(bounded.take([10, 10, 11, 30].into_iter()), 3);
        // The first sequence always goes, however long.
        assert_eq!(bounded.take([256, 512].into_iter()), 1);
        // 512 padded word pieces at most: two of 250, or 32 of 10 (the size bound first).
        let budget = Grouping { size: 32, max_padding: None, max_tokens: Some(512) };
        assert_eq!(budget.take([250; 8].into_iter()), 2);
        assert_eq!(budget.take([10; 40].into_iter()), 32);
        assert_eq!(budget.take([600, 600].into_iter()), 1);
    }
}
