//! Metadata values between Python and Rust: `str`, `int`, `float`, `bool`, and a list (or tuple)
//! of `str`, as `vecindex.Value` has them.

use pyo3::exceptions::PyTypeError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value as Json;
use vecindex::Value;

/// A metadata value, converted both ways.
#[derive(Clone, Debug, PartialEq)]
pub struct PyValue(pub Value);

/// A chunk's metadata as Python passes it.
pub type PyMetadata = std::collections::BTreeMap<String, PyValue>;

pub fn to_rust(metadata: PyMetadata) -> vecindex::Metadata {
    metadata.into_iter().map(|(k, v)| (k, v.0)).collect()
}

pub fn to_python(metadata: vecindex::Metadata) -> PyMetadata {
    metadata.into_iter().map(|(k, v)| (k, PyValue(v))).collect()
}

impl FromPyObject<'_, '_> for PyValue {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        // bool before int: Python's bool is an int.
        if obj.is_instance_of::<PyBool>() {
            return Ok(PyValue(Value::Bool(obj.extract()?)));
        }
        if obj.is_instance_of::<PyInt>() {
            let int: i64 =
                obj.extract().map_err(|_| PyTypeError::new_err("a metadata integer must fit in 64 bits (signed)"))?;
            return Ok(PyValue(Value::Int(int)));
        }
        if obj.is_instance_of::<PyFloat>() {
            return Ok(PyValue(Value::Float(obj.extract()?)));
        }
        if obj.is_instance_of::<PyString>() {
            return Ok(PyValue(Value::Str(obj.extract()?)));
        }
        if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
            let items: Vec<String> =
                obj.extract().map_err(|_| PyTypeError::new_err("a metadata list holds only str"))?;
            return Ok(PyValue(Value::List(items)));
        }
        let kind = obj.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        Err(PyTypeError::new_err(format!("a metadata value is a str, int, float, bool or list of str, not {kind}")))
    }
}

impl<'py> IntoPyObject<'py> for &PyValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(match &self.0 {
            Value::Str(s) => PyString::new(py, s).into_any(),
            Value::Int(i) => i.into_pyobject(py)?.into_any(),
            Value::Float(f) => f.into_pyobject(py)?.into_any(),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Value::List(items) => PyList::new(py, items)?.into_any(),
        })
    }
}

impl<'py> IntoPyObject<'py> for PyValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        (&self).into_pyobject(py)
    }
}

/// A filter given as a dict in the JSON form (`vecindex::metadata::json`), or `None`.
pub fn filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<vecindex::Filter>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else { return Ok(None) };
    if !obj.is_instance_of::<PyDict>() {
        return Err(PyTypeError::new_err("a filter is a dict, such as {\"year\": {\"$gte\": 2020}}"));
    }
    let json = to_json(obj, 0)?;
    vecindex::Filter::from_json(&json).map(Some).map_err(|e| PyValueError::new_err(format!("invalid filter: {e}")))
}

/// A Python object of JSON's types as JSON (the filter checks the rest).
fn to_json(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Json> {
    if depth > vecindex::metadata::filter::MAX_DEPTH * 2 {
        return Err(PyValueError::new_err("invalid filter: nested too deep"));
    }
    if obj.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (key, value) in dict.iter() {
            let key: String = key.extract().map_err(|_| PyTypeError::new_err("filter keys are str"))?;
            map.insert(key, to_json(&value, depth + 1)?);
        }
        return Ok(Json::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = obj.extract()?;
        return items.iter().map(|item| to_json(item, depth + 1)).collect::<PyResult<_>>().map(Json::Array);
    }
    match PyValue::extract(obj.as_borrowed())?.0 {
        Value::Float(f) => serde_json::Number::from_f64(f).map(Json::Number).ok_or_else(|| {
            PyValueError::new_err(format!("invalid filter: {f} is not a number a filter compares with"))
        }),
        value => Ok(vecindex::metadata::json::value_to_json(&value)),
    }
}
