//! `vecindex.Chunk`, and reading chunks given as `Chunk` objects or plain dicts.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::metadata::{self, PyMetadata};

/// One piece of a document, as the seed's API passes it: ids, text and metadata (values of
/// type str, int, float, bool or list of str).
#[pyclass(name = "Chunk", module = "vecindex", get_all, set_all, eq, from_py_object)]
#[derive(Clone, Debug, PartialEq)]
pub struct PyChunk {
    pub chunk_id: String,
    pub doc_id: String,
    pub content: String,
    pub metadata: PyMetadata,
}

#[pymethods]
impl PyChunk {
    #[new]
    #[pyo3(signature = (chunk_id, doc_id, content, metadata = None))]
    fn new(chunk_id: String, doc_id: String, content: String, metadata: Option<PyMetadata>) -> Self {
        Self { chunk_id, doc_id, content, metadata: metadata.unwrap_or_default() }
    }

    fn __repr__(&self) -> String {
        let mut content: String = self.content.chars().take(40).collect();
        if content.len() < self.content.len() {
            content.push_str("...");
        }
        format!("Chunk(chunk_id={:?}, doc_id={:?}, content={content:?})", self.chunk_id, self.doc_id)
    }
}

impl PyChunk {
    /// Reads a `Chunk`, or a dict with `chunk_id`, `content` and optionally `doc_id` (required
    /// unless `doc_id` is given) and `metadata`. `doc_id` overrides the chunk's own.
    pub fn read(value: &Bound<'_, PyAny>, doc_id: Option<&str>) -> PyResult<Self> {
        let mut chunk = if let Ok(chunk) = value.extract::<PyChunk>() {
            chunk
        } else if let Ok(dict) = value.cast::<PyDict>() {
            from_dict(dict, doc_id.is_some())?
        } else {
            let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
            return Err(PyTypeError::new_err(format!("a chunk must be a vecindex.Chunk or a dict, got {kind}")));
        };
        if let Some(doc_id) = doc_id {
            chunk.doc_id = doc_id.to_owned();
        }
        Ok(chunk)
    }

    /// The Rust chunk, with its embedding.
    pub fn into_chunk(self, vector: Vec<f32>) -> vecindex::Chunk {
        let mut chunk = vecindex::Chunk::new(self.chunk_id, self.doc_id, vector).with_text(self.content);
        chunk.metadata = metadata::to_rust(self.metadata);
        chunk
    }

    /// A stored chunk, as Python sees it.
    pub fn from_chunk(chunk: vecindex::Chunk) -> Self {
        Self {
            chunk_id: chunk.chunk_id,
            doc_id: chunk.doc_id,
            content: chunk.text,
            metadata: metadata::to_python(chunk.metadata),
        }
    }
}

fn from_dict(dict: &Bound<'_, PyDict>, doc_id_optional: bool) -> PyResult<PyChunk> {
    let field = |name: &str, required: bool| -> PyResult<Option<String>> {
        match dict.get_item(name)? {
            Some(value) => value
                .extract::<String>()
                .map(Some)
                .map_err(|_| PyTypeError::new_err(format!("chunk field {name:?} must be a str"))),
            None if required => Err(PyValueError::new_err(format!("a chunk dict needs the key {name:?}"))),
            None => Ok(None),
        }
    };
    let metadata = match dict.get_item("metadata")? {
        Some(value) if !value.is_none() => {
            value.extract::<PyMetadata>().map_err(|e| PyTypeError::new_err(format!("chunk field \"metadata\": {e}")))?
        }
        _ => PyMetadata::new(),
    };
    Ok(PyChunk {
        chunk_id: field("chunk_id", true)?.unwrap_or_default(),
        doc_id: field("doc_id", !doc_id_optional)?.unwrap_or_default(),
        content: field("content", true)?.unwrap_or_default(),
        metadata,
    })
}
