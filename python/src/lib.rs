//! The Python binding of vecindex: `import vecindex`.
//!
//! The seed's `VectorIndex` API (add_chunk, add_chunks, add, remove, remove_chunk, search,
//! get_chunk_by_id, get_chunk_ids_for_document, get_document_ids, reconcile_mappings, persist,
//! load / open, clear, len) plus vector-level calls (add_vectors, search_vectors) over numpy
//! arrays, on the lock-free [`vecindex::VectorIndex`]. Every call that touches the index
//! releases the GIL, so Python threads run in parallel. Built into a wheel with maturin
//! (python/pyproject.toml); the Python package around it is python/pysrc/vecindex.

mod arrays;
mod chunk;
mod embedder;
mod errors;
mod hits;
mod index;
mod metadata;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<chunk::PyChunk>()?;
    m.add_class::<index::PyVectorIndex>()?;
    m.add_class::<embedder::PyEmbedder>()?;
    m.add("CorruptIndexError", m.py().get_type::<errors::CorruptIndexError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
