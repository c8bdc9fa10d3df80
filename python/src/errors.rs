//! Rust errors as Python exceptions, with the Rust error's message.
//!
//! - bad input (vectors, ids, `top_k`, configuration, an incompatible snapshot): `ValueError`;
//! - the disk (I/O, a path that is not an index, a directory of another index, a directory another
//!   index holds for writing): `OSError`; a write to an index opened read-only: `PermissionError`;
//!   creating an index where one exists: `FileExistsError`;
//! - damaged index files that open cannot heal: `vecindex.CorruptIndexError` (an `OSError`);
//! - FAISS or a model failing, or a CPU the FAISS build cannot run on: `RuntimeError`.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileExistsError, PyOSError, PyPermissionError, PyRuntimeError, PyValueError};
use vecindex::Error;

pyo3::create_exception!(
    vecindex,
    CorruptIndexError,
    PyOSError,
    "An index directory's files are damaged beyond what opening it can heal."
);

/// The Python exception for a Rust error.
pub fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Corrupt { .. } => CorruptIndexError::new_err(message),
        Error::Io { .. }
        | Error::NotAnIndex { .. }
        | Error::NoSnapshot { .. }
        | Error::ForeignIndex { .. }
        | Error::Locked { .. } => PyOSError::new_err(message),
        Error::ReadOnly { .. } => PyPermissionError::new_err(message),
        Error::Exists { .. } => PyFileExistsError::new_err(message),
        Error::Faiss { .. } | Error::Embedder { .. } | Error::UnsupportedCpu { .. } => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// `Result<T, vecindex::Error>` to `PyResult<T>`.
pub trait ToPyResult<T> {
    fn py_err(self) -> pyo3::PyResult<T>;
}

impl<T> ToPyResult<T> for vecindex::Result<T> {
    fn py_err(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
