//! `vecindex.VectorIndex`: the seed's API on a [`vecindex::VectorIndex`].
//!
//! Every call that touches the index releases the GIL (`Python::detach`) for as long as it is in
//! Rust, so Python threads and `asyncio.to_thread` workers add, search and persist in parallel.
//! Python objects are read (chunks, arrays) and the embedder is called before that, with the
//! GIL held; results become Python objects after it.
//!
//! `load` and `clear` replace the whole index: the wrapper holds it in an `ArcSwap`, so a call
//! already running on another thread finishes on the index it started with.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use vecindex::{Include, IndexConfig, Metric, OpenOptions, SearchOptions, SegmentIndex};

use crate::arrays;
use crate::chunk::PyChunk;
use crate::embedder::Embedder;
use crate::errors::ToPyResult;
use crate::hits;
use crate::metadata::PyMetadata;

/// A concurrent vector index of document chunks. See the module docs.
#[pyclass(name = "VectorIndex", module = "vecindex", frozen)]
pub struct PyVectorIndex {
    index: ArcSwap<vecindex::VectorIndex>,
    embedder: Embedder,
}

/// `config=`: the settings a Python user may give, all optional.
#[derive(Default)]
struct Settings {
    metric: Option<Metric>,
    head_capacity: Option<usize>,
    segment_index: Option<String>,
    ef_search: Option<usize>,
    background: Option<bool>,
    model_dir: Option<PathBuf>,
}

impl Settings {
    fn read(config: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut settings = Settings::default();
        let Some(config) = config else { return Ok(settings) };
        for (key, value) in config.iter() {
            let key: String = key.extract().map_err(|_| PyTypeError::new_err("config keys must be str"))?;
            let bad = |what: &str| PyTypeError::new_err(format!("config[{key:?}] must be {what}"));
            match key.as_str() {
                "metric" => {
                    let name: String = value.extract().map_err(|_| bad("a str"))?;
                    settings.metric = Some(match name.as_str() {
                        "cosine" => Metric::Cosine,
                        "inner_product" | "ip" => Metric::InnerProduct,
                        "l2" => Metric::L2,
                        other => {
                            return Err(PyValueError::new_err(format!(
                                "unknown metric {other:?}: use \"cosine\", \"inner_product\" or \"l2\""
                            )));
                        }
                    });
                }
                "head_capacity" => settings.head_capacity = Some(value.extract().map_err(|_| bad("an int >= 1"))?),
                "segment_index" => settings.segment_index = Some(value.extract().map_err(|_| bad("a str"))?),
                "ef_search" => settings.ef_search = Some(value.extract().map_err(|_| bad("an int >= 1"))?),
                "background" => settings.background = Some(value.extract().map_err(|_| bad("a bool"))?),
                "model_dir" => settings.model_dir = Some(value.extract().map_err(|_| bad("a path"))?),
                other => {
                    return Err(PyValueError::new_err(format!(
                        "unknown config key {other:?}: known are metric, head_capacity, segment_index, ef_search, background, model_dir"
                    )));
                }
            }
        }
        Ok(settings)
    }

    /// `base` with these settings applied.
    fn apply(&self, mut config: IndexConfig) -> IndexConfig {
        if let Some(metric) = self.metric {
            config = config.metric(metric);
        }
        if let Some(rows) = self.head_capacity {
            config = config.head_capacity(rows);
        }
        if let Some(factory) = &self.segment_index {
            let ef_search = config.segment_index.ef_search;
            config = config.segment_index(if factory == "exact" {
                SegmentIndex::exact().ef_search(ef_search)
            } else {
                SegmentIndex::faiss(factory.clone()).ef_search(ef_search)
            });
        }
        if let Some(ef) = self.ef_search {
            config.segment_index.ef_search = ef;
        }
        if let Some(on) = self.background {
            config = config.background(on);
        }
        config
    }

    fn is_empty(&self) -> bool {
        self.metric.is_none()
            && self.head_capacity.is_none()
            && self.segment_index.is_none()
            && self.ef_search.is_none()
            && self.background.is_none()
    }
}

impl PyVectorIndex {
    /// The current index (see the module docs on `load` and `clear`).
    fn index(&self) -> Arc<vecindex::VectorIndex> {
        self.index.load_full()
    }

    /// Reads chunks (objects or dicts) and embeds their content in one batch.
    fn embed_chunks(
        &self,
        py: Python<'_>,
        chunks: &Bound<'_, PyAny>,
        doc_id: Option<&str>,
    ) -> PyResult<Vec<vecindex::Chunk>> {
        let items: Vec<Bound<'_, PyAny>> = if let Ok(list) = chunks.cast::<PyList>() {
            list.iter().collect()
        } else {
            chunks
                .try_iter()
                .map_err(|_| PyTypeError::new_err("chunks must be a list of chunks"))?
                .collect::<PyResult<_>>()?
        };
        let read: Vec<PyChunk> = items.iter().map(|item| PyChunk::read(item, doc_id)).collect::<PyResult<_>>()?;
        let texts: Vec<String> = read.iter().map(|c| c.content.clone()).collect();
        let vectors = self.embedder.embed(py, &texts)?;
        Ok(read.into_iter().zip(vectors).map(|(chunk, vector)| chunk.into_chunk(vector)).collect())
    }

    fn check_dim(&self, index: &vecindex::VectorIndex) -> PyResult<()> {
        let (have, want) = (index.config().dim, self.embedder.dim());
        if have != want {
            return Err(PyValueError::new_err(format!(
                "the index has dimension {have}, the embedder makes {want}-d vectors"
            )));
        }
        Ok(())
    }
}

/// A count argument (`top_k`, `k`, `ef_search`, `nprobe`): any int of at least 1. One too large
/// for the machine means "as many as there are" (results are sized by what is found).
fn positive(value: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    if value.is_instance_of::<pyo3::types::PyBool>() || !value.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!("{name} must be an int, got {}", value.get_type().name()?)));
    }
    match value.extract::<i64>() {
        Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Ok(n) => Err(PyValueError::new_err(format!("{name} must be at least 1, got {n}"))),
        Err(_) if value.gt(0)? => Ok(usize::MAX),
        Err(_) => Err(PyValueError::new_err(format!("{name} must be at least 1, got {value}"))),
    }
}

/// Search options of one call: `k` and the per-query settings of HNSW and IVF segments.
fn search_options(
    k: &Bound<'_, PyAny>,
    k_name: &str,
    filter: Option<&Bound<'_, PyAny>>,
    ef_search: Option<&Bound<'_, PyAny>>,
    nprobe: Option<&Bound<'_, PyAny>>,
) -> PyResult<SearchOptions> {
    let mut options = SearchOptions::k(positive(k, k_name)?);
    options.filter = crate::metadata::filter(filter)?;
    if let Some(ef) = ef_search {
        options = options.ef_search(positive(ef, "ef_search")?);
    }
    if let Some(nprobe) = nprobe {
        options = options.nprobe(positive(nprobe, "nprobe")?);
    }
    Ok(options)
}

/// `asyncio.to_thread(index.<method>, *args, **kwargs)`: the coroutine an `a...` method returns.
fn to_thread<'py>(
    index: &Bound<'py, PyVectorIndex>,
    method: &str,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = index.py();
    let call: Vec<Bound<'py, PyAny>> = std::iter::once(index.getattr(method)?).chain(args.iter()).collect();
    py.import("asyncio")?.getattr("to_thread")?.call(PyTuple::new(py, call)?, kwargs)
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "cosine",
        Metric::InnerProduct => "inner_product",
        Metric::L2 => "l2",
    }
}

fn open_index(py: Python<'_>, path: PathBuf, settings: &Settings) -> PyResult<vecindex::VectorIndex> {
    py.detach(|| {
        if settings.is_empty() {
            vecindex::VectorIndex::open(&path)
        } else {
            // The snapshot's own dimension and metric, with the given settings on top.
            let (peek, _) = vecindex::VectorIndex::open_with_options(&path, &OpenOptions::new().read_only(true))?;
            let config = settings.apply(peek.config().clone());
            drop(peek);
            vecindex::VectorIndex::open_with(&path, config)
        }
    })
    .py_err()
}

#[pymethods]
impl PyVectorIndex {
    /// A new, empty index.
    ///
    /// `dim` defaults to the embedder's (384 for "hashing"); `embedder` is "hashing" (default),
    /// "minilm", or a callable taking `list[str]` and returning a 2-D array of shape
    /// `(len(texts), dim)` (called once with one text to learn `dim` when it is not given).
    #[new]
    #[pyo3(signature = (dim = None, embedder = None, config = None))]
    fn new(
        py: Python<'_>,
        dim: Option<usize>,
        embedder: Option<Bound<'_, PyAny>>,
        config: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let settings = Settings::read(config.as_ref())?;
        let embedder = Embedder::from_arg(py, embedder.as_ref(), dim, settings.model_dir.clone())?;
        let dim = dim.unwrap_or(embedder.dim());
        if dim != embedder.dim() {
            return Err(PyValueError::new_err(format!(
                "dim is {dim}, the embedder makes {}-d vectors",
                embedder.dim()
            )));
        }
        let index = vecindex::VectorIndex::new(settings.apply(IndexConfig::new(dim))).py_err()?;
        Ok(Self { index: ArcSwap::from_pointee(index), embedder })
    }

    /// Opens an index persisted with `persist(path)`. The embedder must make vectors of the
    /// index's dimension (the hashing embedder takes it from the index).
    #[staticmethod]
    #[pyo3(signature = (path, embedder = None, config = None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        embedder: Option<Bound<'_, PyAny>>,
        config: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let settings = Settings::read(config.as_ref())?;
        let index = open_index(py, path, &settings)?;
        let embedder = Embedder::from_arg(py, embedder.as_ref(), Some(index.config().dim), settings.model_dir.clone())?;
        let this = Self { index: ArcSwap::from_pointee(index), embedder };
        this.check_dim(&this.index())?;
        Ok(this)
    }

    /// Replaces this index with the one persisted in `path`.
    fn load(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let index = open_index(py, path, &Settings::default())?;
        self.check_dim(&index)?;
        self.index.store(Arc::new(index));
        Ok(())
    }

    /// Embeds and adds one chunk (a `Chunk` or a dict).
    fn add_chunk(&self, py: Python<'_>, chunk: Bound<'_, PyAny>) -> PyResult<()> {
        let read = PyChunk::read(&chunk, None)?;
        let vector = self.embedder.embed(py, std::slice::from_ref(&read.content))?.pop().unwrap_or_default();
        let chunk = read.into_chunk(vector);
        let index = self.index();
        py.detach(|| index.add_chunk(chunk)).py_err()
    }

    /// Embeds and adds chunks of any documents, all in one atomic step: a bad chunk (or one whose
    /// id another document owns) raises and adds nothing.
    fn add_chunks(&self, py: Python<'_>, chunks: Bound<'_, PyAny>) -> PyResult<()> {
        let chunks = self.embed_chunks(py, &chunks, None)?;
        let index = self.index();
        py.detach(|| index.add_chunks(chunks)).py_err()
    }

    /// Replaces every chunk of `doc_id` with `chunks`, atomically.
    fn add(&self, py: Python<'_>, doc_id: String, chunks: Bound<'_, PyAny>) -> PyResult<()> {
        let chunks = self.embed_chunks(py, &chunks, Some(&doc_id))?;
        let index = self.index();
        py.detach(|| index.add_document(&doc_id, chunks)).py_err()
    }

    /// Removes every chunk of `doc_id`; returns how many there were.
    fn remove(&self, py: Python<'_>, doc_id: String) -> PyResult<usize> {
        let index = self.index();
        py.detach(|| index.remove_document(&doc_id)).py_err()
    }

    /// Removes one chunk; returns whether it existed.
    fn remove_chunk(&self, py: Python<'_>, chunk_id: String) -> PyResult<bool> {
        let index = self.index();
        py.detach(|| index.remove_chunk(&chunk_id)).py_err()
    }

    /// The `top_k` chunks nearest to `query`, best first, as dicts with `chunk_id`, `doc_id`,
    /// `score`, `content` and `metadata`; chunks of the documents in `excluded_files` are
    /// skipped, and so are those `filter` rejects: a dict such as `{"lang": "fr", "year":
    /// {"$gte": 2020}}` (operators `$eq $ne $gt $gte $lt $lte $in $nin $contains`, `$and $or
    /// $not`, and `{"$doc_id": {"$in": [...]}}`), checked before the search (`ValueError`). `ef_search` (HNSW segments) and `nprobe` (IVF segments) override the index's
    /// settings for this query. A query with no word to search for (empty, blank, or only words
    /// such as "the") raises `ValueError`.
    #[pyo3(signature = (query, top_k = None, excluded_files = None, *, filter = None, ef_search = None, nprobe = None))]
    #[allow(clippy::too_many_arguments)] // Python's keywords
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: String,
        top_k: Option<Bound<'py, PyAny>>,
        excluded_files: Option<Vec<String>>,
        filter: Option<Bound<'py, PyAny>>,
        ef_search: Option<Bound<'py, PyAny>>,
        nprobe: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let default_k = 5i64.into_pyobject(py)?.into_any();
        let top_k = top_k.unwrap_or(default_k);
        let mut options = search_options(&top_k, "top_k", filter.as_ref(), ef_search.as_ref(), nprobe.as_ref())?;
        for doc_id in excluded_files.unwrap_or_default() {
            options = options.exclude_doc(doc_id);
        }
        vecindex::embed::check_query(&query).py_err()?;
        let vector = self.embedder.embed(py, std::slice::from_ref(&query))?.pop().unwrap_or_default();
        let include = Include::default().text(true);
        let index = self.index();
        let hits = py.detach(|| index.search(&vector, &options.include(include))).py_err()?;
        hits.into_iter().map(|hit| hits::hit_dict(py, hit, include)).collect()
    }

    /// Adds vectors directly (no embedder): `ids[i]` of document `doc_ids[i]` gets row `i` of
    /// `vectors`, a C-contiguous float32 array of shape `(n, dim)`, with `texts[i]` and
    /// `metadatas[i]` if given, all in one atomic step (a bad row raises and adds nothing).
    /// Returns `n`.
    #[pyo3(signature = (ids, doc_ids, vectors, *, texts = None, metadatas = None))]
    fn add_vectors(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        doc_ids: Vec<String>,
        vectors: Bound<'_, PyAny>,
        texts: Option<Vec<String>>,
        metadatas: Option<Vec<Option<PyMetadata>>>,
    ) -> PyResult<usize> {
        let dim = self.index().config().dim;
        let chunks = arrays::with_rows(&vectors, "vectors", dim, |data| {
            let rows = data.len() / dim;
            let lengths =
                [Some(ids.len()), Some(doc_ids.len()), texts.as_ref().map(Vec::len), metadatas.as_ref().map(Vec::len)];
            if lengths.iter().flatten().any(|&n| n != rows) {
                return Err(PyValueError::new_err(format!(
                    "{} ids, {} doc_ids, {} texts and {} metadatas for {rows} vectors: give one of each per row",
                    ids.len(),
                    doc_ids.len(),
                    texts.as_ref().map_or("no".to_owned(), |t| t.len().to_string()),
                    metadatas.as_ref().map_or("no".to_owned(), |m| m.len().to_string()),
                )));
            }
            let mut texts = texts.map(Vec::into_iter);
            let mut metadatas = metadatas.map(Vec::into_iter);
            Ok(ids
                .into_iter()
                .zip(doc_ids)
                .zip(data.chunks(dim))
                .map(|((id, doc), vector)| {
                    let mut chunk = vecindex::Chunk::new(id, doc, vector.to_vec());
                    if let Some(text) = texts.as_mut().and_then(Iterator::next) {
                        chunk.text = text;
                    }
                    if let Some(metadata) = metadatas.as_mut().and_then(Iterator::next).flatten() {
                        chunk.metadata = crate::metadata::to_rust(metadata);
                    }
                    chunk
                })
                .collect::<Vec<_>>())
        })??;
        let rows = chunks.len();
        let index = self.index();
        py.detach(|| index.add_chunks(chunks)).py_err()?;
        Ok(rows)
    }

    /// The `k` nearest chunks of each row of `queries` (float32, `(q, dim)`): `(ids, scores)`,
    /// numpy arrays of shape `(q, w)`, `w` the most hits any query got (at most `k`, and at
    /// most the chunks there are: a huge `k` costs nothing); ids are `str` objects, `None` (score
    /// `nan`) past the last hit of a query. `ef_search` (HNSW segments) and `nprobe` (IVF
    /// segments) override the index's settings for these queries; `filter` (a dict, as in
    /// `search`) keeps only the chunks it accepts.
    #[pyo3(signature = (queries, k, *, filter = None, ef_search = None, nprobe = None))]
    fn search_vectors<'py>(
        &self,
        py: Python<'py>,
        queries: Bound<'py, PyAny>,
        k: Bound<'py, PyAny>,
        filter: Option<Bound<'py, PyAny>>,
        ef_search: Option<Bound<'py, PyAny>>,
        nprobe: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let options = search_options(&k, "k", filter.as_ref(), ef_search.as_ref(), nprobe.as_ref())?;
        let index = self.index();
        let dim = index.config().dim;
        let data = arrays::with_rows(&queries, "queries", dim, <[f32]>::to_vec)?;
        let options = options.include(Include::none());
        let hits = py.detach(|| index.search_batch(&data, &options)).py_err()?;
        let hits = hits.into_iter().map(|hits| hits.into_iter().map(|h| (h.chunk_id, h.score)).collect()).collect();
        arrays::hits_to_arrays(py, hits)
    }

    /// The `k` nearest chunks of `vectors`: one query (a 1-D float32 array of `dim` values)
    /// gives a list of hit dicts, a batch (a 2-D `(q, dim)` array, answered from one point in
    /// time) a list of such lists. A hit holds `chunk_id`, `doc_id` and `score`, and what
    /// `include` names of `"metadata"`, `"content"` and `"vector"` (default: the first two).
    /// `filter`, `ef_search` and `nprobe` as in `search`.
    #[pyo3(signature = (vectors, k = None, *, filter = None, include = None, ef_search = None, nprobe = None))]
    #[allow(clippy::too_many_arguments)] // Python's keywords
    fn query<'py>(
        &self,
        py: Python<'py>,
        vectors: Bound<'py, PyAny>,
        k: Option<Bound<'py, PyAny>>,
        filter: Option<Bound<'py, PyAny>>,
        include: Option<Bound<'py, PyAny>>,
        ef_search: Option<Bound<'py, PyAny>>,
        nprobe: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let k = k.unwrap_or(4i64.into_pyobject(py)?.into_any());
        let include = hits::include(include.as_ref(), Include::default().text(true))?;
        let options = search_options(&k, "k", filter.as_ref(), ef_search.as_ref(), nprobe.as_ref())?.include(include);
        let index = self.index();
        let dim = index.config().dim;
        let single = vectors.getattr("ndim").and_then(|n| n.extract::<usize>()).is_ok_and(|n| n == 1);
        let vectors = if single { vectors.call_method1("reshape", (1, -1))? } else { vectors };
        let data = arrays::with_rows(&vectors, "vectors", dim, <[f32]>::to_vec)?;
        let results = py.detach(|| index.search_batch(&data, &options)).py_err()?;
        let mut lists = results
            .into_iter()
            .map(|hits| {
                let dicts =
                    hits.into_iter().map(|hit| hits::hit_dict(py, hit, include)).collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(py, dicts)?.into_any())
            })
            .collect::<PyResult<Vec<_>>>()?;
        match (single, lists.pop()) {
            (true, Some(only)) => Ok(only),
            (_, last) => {
                lists.extend(last);
                Ok(PyList::new(py, lists)?.into_any())
            }
        }
    }

    /// The chunks of `ids`, in order, as dicts (`chunk_id`, `doc_id`, and what `include` names:
    /// default metadata and content), `None` for an id not in the index.
    #[pyo3(signature = (ids, *, include = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        ids: Vec<String>,
        include: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Option<Bound<'py, PyDict>>>> {
        let include = hits::include(include.as_ref(), Include::default().text(true))?;
        let index = self.index();
        let chunks: Vec<Option<vecindex::Chunk>> = py.detach(|| ids.iter().map(|id| index.chunk(id)).collect());
        chunks.into_iter().map(|c| c.map(|c| hits::chunk_dict(py, c, include)).transpose()).collect()
    }

    /// Removes the chunks of `ids`, the documents of `doc_ids`, and the chunks `filter` (a
    /// dict, as in `search`) accepts; returns how many chunks it removed. Give at least one.
    /// A bad filter raises before anything is removed.
    #[pyo3(signature = (ids = None, *, doc_ids = None, filter = None))]
    fn delete(
        &self,
        py: Python<'_>,
        ids: Option<Vec<String>>,
        doc_ids: Option<Vec<String>>,
        filter: Option<Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let filter = crate::metadata::filter(filter.as_ref())?;
        if ids.is_none() && doc_ids.is_none() && filter.is_none() {
            return Err(PyValueError::new_err("delete: give ids, doc_ids or filter"));
        }
        if let Some(filter) = &filter {
            filter.check().map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        let index = self.index();
        py.detach(|| {
            let mut removed = 0;
            for id in ids.iter().flatten() {
                removed += usize::from(index.remove_chunk(id)?);
            }
            for doc in doc_ids.iter().flatten() {
                removed += index.remove_document(doc)?;
            }
            if let Some(filter) = &filter {
                removed += index.remove_where(filter)?;
            }
            Ok::<_, vecindex::Error>(removed)
        })
        .py_err()
    }

    /// `await index.aquery(...)`: `query` on a worker thread (`asyncio.to_thread`; the GIL is
    /// released while it searches). Likewise `aadd_vectors`, `asearch`, `aget`, `adelete`,
    /// `aadd` and `apersist`.
    #[pyo3(signature = (*args, **kwargs))]
    fn aquery<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "query", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn aadd_vectors<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "add_vectors", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn asearch<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "search", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn aget<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "get", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn adelete<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "delete", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn aadd<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "add", args, kwargs)
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn apersist<'py>(
        slf: &Bound<'py, Self>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        to_thread(slf, "persist", args, kwargs)
    }

    /// A live chunk, or `None`.
    fn get_chunk_by_id(&self, py: Python<'_>, chunk_id: String) -> Option<PyChunk> {
        let index = self.index();
        py.detach(|| index.chunk(&chunk_id)).map(PyChunk::from_chunk)
    }

    /// The chunk ids of a document, in the order they were added (a copy).
    fn get_chunk_ids_for_document(&self, py: Python<'_>, doc_id: String) -> Vec<String> {
        let index = self.index();
        py.detach(|| index.chunk_ids(&doc_id))
    }

    /// Every document id, sorted (a copy).
    fn get_document_ids(&self, py: Python<'_>) -> Vec<String> {
        let index = self.index();
        py.detach(|| index.document_ids())
    }

    /// Re-derives the id maps from the stored rows; returns how many stale entries it removed.
    fn reconcile_mappings(&self, py: Python<'_>) -> usize {
        let index = self.index();
        py.detach(|| index.reconcile_mappings())
    }

    /// Writes a snapshot of every call that returned before this one into the directory `path`,
    /// crash-safe, while other threads go on adding. Returns what it wrote.
    fn persist<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let index = self.index();
        let report = py.detach(|| index.persist(&path)).py_err()?;
        let dict = PyDict::new(py);
        dict.set_item("generation", report.generation)?;
        dict.set_item("chunks", report.rows)?;
        dict.set_item("files_written", report.files_written)?;
        dict.set_item("bytes_written", report.bytes_written)?;
        dict.set_item("seconds", report.duration.as_secs_f64())?;
        Ok(dict)
    }

    /// Empties the index (a new one with the same settings).
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let config = self.index().config().clone();
        let fresh = py.detach(|| vecindex::VectorIndex::new(config)).py_err()?;
        self.index.store(Arc::new(fresh));
        Ok(())
    }

    /// Live chunks.
    fn __len__(&self, py: Python<'_>) -> usize {
        let index = self.index();
        py.detach(|| index.len())
    }

    /// The vector dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.index().config().dim
    }

    /// The metric: `"cosine"`, `"inner_product"` or `"l2"` (without building the `stats()` of
    /// every segment).
    #[getter]
    fn metric(&self) -> &'static str {
        metric_name(self.index().config().metric)
    }

    /// The embedder's name (for a callable, its repr).
    #[getter]
    fn embedder(&self, py: Python<'_>) -> String {
        self.embedder.name(py)
    }

    /// What the index holds: `dim`, `metric`, `chunks`, `documents`, `next_seq`,
    /// `generation`, `vocabulary_terms`, `head_rows` (rows not sealed yet, scanned by every
    /// query), and `segments`, one dict per head or segment: `id`, `kind` ("head", "frozen",
    /// "exact" or the FAISS factory string), `rows`, `live_rows`, `bytes`, `mapped` (read in
    /// place from disk), `build_seconds` and `indexed_vectors` (`None` without a FAISS index).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = self.index();
        let stats = py.detach(|| index.stats());
        let dict = PyDict::new(py);
        dict.set_item("dim", stats.dim)?;
        dict.set_item("metric", metric_name(stats.metric))?;
        dict.set_item("chunks", stats.chunks)?;
        dict.set_item("documents", stats.documents)?;
        dict.set_item("next_seq", stats.next_seq)?;
        dict.set_item("generation", stats.generation)?;
        dict.set_item("vocabulary_terms", stats.vocabulary_terms)?;
        let head_rows: usize =
            stats.segments.iter().filter(|s| s.state != vecindex::SegmentState::Sealed).map(|s| s.rows).sum();
        dict.set_item("head_rows", head_rows)?;
        let segments = PyList::empty(py);
        for segment in stats.segments {
            let entry = PyDict::new(py);
            entry.set_item("id", segment.id)?;
            entry.set_item("kind", segment.label())?;
            entry.set_item("rows", segment.rows)?;
            entry.set_item("live_rows", segment.live_rows)?;
            entry.set_item("bytes", segment.bytes)?;
            entry.set_item("mapped", segment.mapped)?;
            entry.set_item("build_seconds", segment.build_time.map(|t| t.as_secs_f64()))?;
            entry.set_item("indexed_vectors", segment.indexed_vectors)?;
            segments.append(entry)?;
        }
        dict.set_item("segments", segments)?;
        Ok(dict)
    }

    /// Merges the sealed segments (and the rows not sealed yet) into as few segments as
    /// possible and builds their FAISS index, on this thread with the GIL released; returns
    /// the segments left. Call it after a bulk load of an index that will mostly be searched:
    /// each query then walks one graph instead of one per segment. Other threads may add and
    /// search meanwhile.
    fn force_merge(&self, py: Python<'_>) -> usize {
        let index = self.index();
        py.detach(|| index.force_merge())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let index = self.index();
        format!(
            "VectorIndex(dim={}, chunks={}, embedder={})",
            index.config().dim,
            py.detach(|| index.len()),
            self.embedder.name(py)
        )
    }
}
