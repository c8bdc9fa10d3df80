//! numpy arrays in and out.
//!
//! Input matrices must be 2-D, float32 and C-contiguous: they are read in place, with the GIL
//! held (another Python thread could write to the array once it is released), and each row is
//! copied once, into the chunk the index will own or the query it will search for. Anything
//! else is refused with a message that says how to convert it rather than copied silently. An embedder callable's result is
//! the exception: it goes through `numpy.ascontiguousarray(result, "float32")` first, since
//! models return lists, float64 or torch-converted arrays.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Calls `read` with the rows of `value`, a C-contiguous float32 matrix with `dim` columns, as
/// one row-major slice (read in place, without a copy).
pub fn with_rows<'py, R>(
    value: &Bound<'py, PyAny>,
    what: &str,
    dim: usize,
    read: impl FnOnce(&[f32]) -> R,
) -> PyResult<R> {
    let array: PyReadonlyArray2<'py, f32> = value.extract().map_err(|_| {
        let dtype = value.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| "no dtype".into());
        let ndim = value.getattr("ndim").map(|d| d.to_string()).unwrap_or_else(|_| "?".into());
        let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!(
            "{what} must be a 2-D numpy array of float32, got {kind} ({ndim}-D, {dtype}); \
             convert it with numpy.asarray(x, dtype=numpy.float32)"
        ))
    })?;
    let columns = array.shape()[1];
    if columns != dim {
        return Err(PyValueError::new_err(format!("{what} has {columns} columns, the index has dimension {dim}")));
    }
    // `as_slice` also accepts Fortran order, whose memory order is column by column: only a
    // C-contiguous array's slice is its rows.
    let not_c_contiguous =
        || PyValueError::new_err(format!("{what} must be C-contiguous: pass numpy.ascontiguousarray(x)"));
    if !array.is_c_contiguous() {
        return Err(not_c_contiguous());
    }
    Ok(read(array.as_slice().map_err(|_| not_c_contiguous())?))
}

/// An embedder callable's result as rows of `dim` floats, one per text.
pub fn embedded(result: &Bound<'_, PyAny>, texts: usize, dim: usize) -> PyResult<Vec<Vec<f32>>> {
    let py = result.py();
    let array = py.import("numpy")?.call_method1("ascontiguousarray", (result, "float32"))?;
    let shape: Vec<usize> = array.getattr("shape")?.extract()?;
    if shape.len() != 2 || shape[0] != texts || shape[1] != dim {
        return Err(PyValueError::new_err(format!(
            "the embedder returned an array of shape {shape:?} for {texts} texts; expected ({texts}, {dim}): the index has dimension {dim}"
        )));
    }
    with_rows(&array, "the embedder's result", dim, |data| data.chunks(dim).map(<[f32]>::to_vec).collect())
}

/// `(ids, scores)` of a batch search as numpy arrays of shape `[queries, width]`, `width` the
/// most hits any query got (at most its `k`, and never more than the rows that exist, so a huge
/// `k` costs nothing): ids an object array of `str` (`None` where a query had fewer hits),
/// scores float32 (`nan` there).
pub fn hits_to_arrays<'py>(
    py: Python<'py>,
    hits: Vec<Vec<(String, f32)>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let queries = hits.len();
    let width = hits.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids: Vec<Py<PyAny>> = Vec::with_capacity(queries * width);
    let mut scores: Vec<f32> = Vec::with_capacity(queries * width);
    for row in hits {
        let found = row.len();
        for (id, score) in row {
            ids.push(id.into_pyobject(py)?.into_any().unbind());
            scores.push(score);
        }
        for _ in found..width {
            ids.push(py.None());
            scores.push(f32::NAN);
        }
    }
    let ids = PyArray1::from_vec(py, ids).reshape([queries, width])?.into_any();
    let scores = PyArray1::from_vec(py, scores).reshape([queries, width])?.into_any();
    Ok((ids, scores))
}
