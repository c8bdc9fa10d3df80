//! The `embedder=` argument: `"hashing"`, `"minilm"` (ONNX Runtime), `"minilm-int8"`,
//! `"minilm-candle"` or a Python callable.
//!
//! Embedding happens before the index is touched, outside every index critical section (as the
//! seed requires). The Rust embedders run with the GIL released; a Python callable is called
//! with the GIL held, since it is Python code.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::PyArrayMethods;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays;
use crate::errors::ToPyResult;

/// Where `embedder="minilm"` looks for the model unless `config["model_dir"]` or
/// `VECINDEX_MINILM_DIR` says otherwise (where scripts/fetch-minilm unpacks it).
const DEFAULT_MODEL_DIR: &str = "target/models/all-MiniLM-L6-v2";

/// Dimension of the hashing embedder when neither `dim` nor an opened index says otherwise.
pub const DEFAULT_DIM: usize = 384;

pub enum Embedder {
    Rust(Arc<dyn vecindex::embed::Embedder>),
    Python { callable: Py<PyAny>, dim: usize },
}

impl Embedder {
    /// Reads the `embedder=` argument. `dim` is the index's dimension when it is known (an
    /// opened index) or asked for; `model_dir` is `config["model_dir"]`.
    pub fn from_arg(
        py: Python<'_>,
        embedder: Option<&Bound<'_, PyAny>>,
        dim: Option<usize>,
        model_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let Some(embedder) = embedder.filter(|e| !e.is_none()) else {
            return named("hashing", dim, model_dir);
        };
        if let Ok(name) = embedder.extract::<String>() {
            return named(&name, dim, model_dir);
        }
        if !embedder.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "embedder must be one of {} or a callable taking list[str] and returning a 2-D array",
                vecindex::embed::NAMES.join(", ")
            )));
        }
        let callable = embedder.clone().unbind();
        let dim = match dim {
            // Not called here: a model behind the callable may not be up yet. A result of the
            // wrong shape is refused at the first call that embeds.
            Some(dim) => dim,
            // Learn the dimension from one call, as a user would.
            None => {
                let probe = embedder.call1((vec!["vecindex dimension probe"],))?;
                let shape: Vec<usize> = py.import("numpy")?.call_method1("shape", (probe,))?.extract()?;
                match shape.as_slice() {
                    [1, dim] if *dim > 0 => *dim,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "the embedder returned shape {shape:?} for one text; expected (1, dim)"
                        )));
                    }
                }
            }
        };
        Ok(Self::Python { callable, dim })
    }

    pub fn dim(&self) -> usize {
        match self {
            Self::Rust(e) => e.dim(),
            Self::Python { dim, .. } => *dim,
        }
    }

    pub fn name(&self, py: Python<'_>) -> String {
        match self {
            Self::Rust(e) => e.name().to_owned(),
            Self::Python { callable, .. } => {
                callable.bind(py).repr().map(|r| r.to_string()).unwrap_or_else(|_| "a callable".into())
            }
        }
    }

    /// One vector per text, in order.
    pub fn embed(&self, py: Python<'_>, texts: &[String]) -> PyResult<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Self::Rust(embedder) => py
                .detach(|| {
                    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                    embedder.embed(&texts)
                })
                .py_err(),
            Self::Python { callable, dim } => {
                let result = callable.bind(py).call1((texts.to_vec(),))?;
                arrays::embedded(&result, texts.len(), *dim)
            }
        }
    }
}

/// A Rust embedder by its name, as `vecindex::embed::by_name` knows them (the CLI's
/// `--embedder` takes the same): `dim` sizes the hashing embedder and must match a model's.
fn named(name: &str, dim: Option<usize>, model_dir: Option<PathBuf>) -> PyResult<Embedder> {
    let dir = model_dir
        .or_else(|| std::env::var_os("VECINDEX_MINILM_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
    let embedder = vecindex::embed::by_name(name, &dir, dim.unwrap_or(DEFAULT_DIM)).map_err(|e| {
        let or_callable = if vecindex::embed::NAMES.contains(&name) { "" } else { "; or pass a callable" };
        PyValueError::new_err(format!("{e}{or_callable}"))
    })?;
    if let Some(dim) = dim.filter(|&d| d != embedder.dim()) {
        return Err(PyValueError::new_err(format!("{name} makes {}-d vectors, not {dim}-d", embedder.dim())));
    }
    Ok(Embedder::Rust(Arc::from(embedder)))
}

/// `vecindex.Embedder`: an embedder of the binding on its own, for code that embeds texts
/// itself (a framework's embedding model, say) with the same model an index would use.
#[pyclass(name = "Embedder", module = "vecindex", frozen)]
pub struct PyEmbedder(Embedder);

#[pymethods]
impl PyEmbedder {
    /// `embedder`: `"hashing"` (default), `"minilm"` (ONNX Runtime: scripts/make-minilm-onnx
    /// and scripts/fetch-onnxruntime, or `ORT_DYLIB_PATH`), `"minilm-int8"` or `"minilm-candle"`;
    /// `dim` for hashing (default 384);
    /// `model_dir` for MiniLM (default: `VECINDEX_MINILM_DIR`, else where scripts/fetch-minilm
    /// unpacks it).
    #[new]
    #[pyo3(signature = (embedder = "hashing", dim = None, model_dir = None))]
    fn new(py: Python<'_>, embedder: &str, dim: Option<usize>, model_dir: Option<PathBuf>) -> PyResult<Self> {
        let name = embedder.into_pyobject(py)?.into_any();
        Ok(Self(Embedder::from_arg(py, Some(&name), dim, model_dir)?))
    }

    /// One row per text: a float32 array of shape `(len(texts), dim)`, the GIL released while
    /// it embeds.
    fn embed<'py>(&self, py: Python<'py>, texts: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let dim = self.0.dim();
        let rows = self.0.embed(py, &texts)?;
        let flat: Vec<f32> = rows.concat();
        Ok(numpy::PyArray1::from_vec(py, flat).reshape([texts.len(), dim])?.into_any())
    }

    #[getter]
    fn dim(&self) -> usize {
        self.0.dim()
    }

    #[getter]
    fn name(&self, py: Python<'_>) -> String {
        self.0.name(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Embedder({:?}, dim={})", self.0.name(py), self.0.dim())
    }
}
