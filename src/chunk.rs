//! What users store: chunks of documents, and the rows they become.

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::metadata::Value;
use crate::metric::Metric;

pub use crate::metadata::Metadata;

/// One embedded piece of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Unique across the whole index.
    pub chunk_id: String,
    /// The document this chunk belongs to.
    pub doc_id: String,
    /// The embedding; its length must equal the index's dimension.
    pub vector: Vec<f32>,
    /// The chunk's text, returned by [`chunk`](crate::VectorIndex::chunk).
    pub text: String,
    /// Free-form metadata, usable in search filters.
    pub metadata: Metadata,
}

impl Chunk {
    /// A chunk with empty text and no metadata.
    pub fn new(chunk_id: impl Into<String>, doc_id: impl Into<String>, vector: Vec<f32>) -> Self {
        Self {
            chunk_id: chunk_id.into(),
            doc_id: doc_id.into(),
            vector,
            text: String::new(),
            metadata: Metadata::new(),
        }
    }

    /// Sets the text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// Adds one metadata entry (a string, number, bool or list of strings).
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Checks a chunk id.
pub(crate) fn validate_chunk_id(chunk_id: &str) -> Result<()> {
    if chunk_id.is_empty() {
        return Err(Error::EmptyId { what: "chunk_id" });
    }
    Ok(())
}

/// Checks a document id.
pub(crate) fn validate_doc_id(doc_id: &str) -> Result<()> {
    if doc_id.is_empty() {
        return Err(Error::EmptyId { what: "doc_id" });
    }
    Ok(())
}

/// Checks and prepares (normalizes, for cosine) every chunk of one call before anything is
/// applied, so a bad chunk leaves the index unchanged.
pub(crate) fn prepare_chunks(metric: Metric, dim: usize, chunks: &mut [Chunk]) -> Result<()> {
    let mut seen = HashSet::with_capacity(chunks.len());
    for chunk in chunks.iter_mut() {
        validate_chunk_id(&chunk.chunk_id)?;
        validate_doc_id(&chunk.doc_id)?;
        if !seen.insert(chunk.chunk_id.as_str()) {
            return Err(Error::DuplicateChunkId { chunk_id: chunk.chunk_id.clone() });
        }
        metric.prepare(dim, &mut chunk.vector)?;
        validate_metadata(chunk)?;
    }
    Ok(())
}

/// Checks a chunk's metadata values: a float must not be NaN (filters could neither match nor
/// order it).
fn validate_metadata(chunk: &Chunk) -> Result<()> {
    for (key, value) in &chunk.metadata {
        if matches!(value, Value::Float(f) if f.is_nan()) {
            return Err(Error::InvalidMetadata {
                chunk_id: chunk.chunk_id.clone(),
                key: key.clone(),
                reason: "is NaN, which no filter can match or order".to_owned(),
            });
        }
    }
    Ok(())
}

/// Groups chunks by document, keeping first-appearance order of documents and chunk order within
/// each document. `add_chunks` applies all groups under one seq.
pub(crate) fn group_by_doc(chunks: Vec<Chunk>) -> Vec<(String, Vec<Chunk>)> {
    let mut groups: Vec<(String, Vec<Chunk>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for chunk in chunks {
        match index.get(&chunk.doc_id) {
            Some(&i) => groups[i].1.push(chunk),
            None => {
                index.insert(chunk.doc_id.clone(), groups.len());
                groups.push((chunk.doc_id.clone(), vec![chunk]));
            }
        }
    }
    groups
}
