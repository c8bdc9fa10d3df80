//! What searches and `get` return to Python: one dict per hit or chunk, holding what the caller
//! asked for (`include`).

use numpy::PyArray1;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use vecindex::{Chunk, Include, SearchHit};

/// The fields `include=` may name, as they appear in the dicts.
const FIELDS: [&str; 3] = ["metadata", "content", "vector"];

/// `include=`: an iterable of field names (`"metadata"`, `"content"`, `"vector"`), or `None`
/// for `default`.
pub fn include(obj: Option<&Bound<'_, PyAny>>, default: Include) -> PyResult<Include> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(default) };
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err("include must be a list of field names, such as [\"content\"], not a str"));
    }
    let mut include = Include::none();
    for name in obj.try_iter()? {
        let name: String = name?.extract().map_err(|_| PyTypeError::new_err("include holds field names (str)"))?;
        include = match name.as_str() {
            "metadata" => include.metadata(true),
            "content" => include.text(true),
            "vector" => include.vector(true),
            other => {
                return Err(PyValueError::new_err(format!("include: unknown field {other:?} (fields: {FIELDS:?})")));
            }
        };
    }
    Ok(include)
}

/// `{"chunk_id", "doc_id", "score", and what was included}`.
pub fn hit_dict<'py>(py: Python<'py>, hit: SearchHit, include: Include) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("chunk_id", hit.chunk_id)?;
    dict.set_item("doc_id", hit.doc_id)?;
    dict.set_item("score", hit.score)?;
    fill(&dict, include, hit.metadata, hit.text, hit.vector)?;
    Ok(dict)
}

/// `{"chunk_id", "doc_id", and what was included}` of a stored chunk.
pub fn chunk_dict<'py>(py: Python<'py>, chunk: Chunk, include: Include) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("chunk_id", chunk.chunk_id)?;
    dict.set_item("doc_id", chunk.doc_id)?;
    let vector = include.vector.then_some(chunk.vector);
    fill(&dict, include, chunk.metadata, Some(chunk.text), vector)?;
    Ok(dict)
}

fn fill(
    dict: &Bound<'_, PyDict>,
    include: Include,
    metadata: vecindex::Metadata,
    text: Option<String>,
    vector: Option<Vec<f32>>,
) -> PyResult<()> {
    let py = dict.py();
    if include.metadata {
        dict.set_item("metadata", crate::metadata::to_python(metadata))?;
    }
    if let Some(text) = text.filter(|_| include.text) {
        dict.set_item("content", text)?;
    }
    if let Some(vector) = vector {
        dict.set_item("vector", PyArray1::from_vec(py, vector))?;
    }
    Ok(())
}
