//! A FAISS index over a sealed segment's vectors: the crate's only FFI.
//!
//! # Concurrency
//!
//! faiss-rs's `search` takes `&mut self`, because FAISS indexes in general may be mutated. A
//! [`FaissIndex`] is built once ([`FaissIndex::build`], with `&mut` access it owns alone) and
//! never mutated afterwards: not by adds, not by training, not by parameter changes (efSearch
//! and nprobe are passed per query in `SearchParameters`, never set on the index). FAISS's
//! `Index::search` is a `const` method that keeps its scratch state on the stack or in
//! per-call allocations, so any number of threads may run it at once on such an index. That is
//! the argument behind the one `unsafe` call in [`FaissIndex::search_into`], which reaches
//! `search` through `csrc/faiss_shim.cpp` with a `*const` pointer.
//!
//! # Search
//!
//! FAISS proposes candidates; every candidate is checked (visible in the reader's view, not
//! deleted, passes the filters) and re-scored with the crate's own kernel, so scores and tie
//! order are identical to an exact scan. Deleted or filtered rows are excluded inside FAISS with
//! a per-call bitmap selector when there are many; when there are few, the query over-fetches
//! instead. Either way it keeps fetching more until it has `k` live candidates and no candidate
//! beyond the last one could tie with the k-th, or the segment is exhausted.
//!
//! # Builds
//!
//! A build adds rows a bounded step at a time ([`BUILD_STEP`]) and asks between steps whether
//! to stop, so closing an index never waits for a build nobody will use. An HNSW graph gets one
//! node per distinct vector ([`Groups`]): a node FAISS returns stands for every row of its
//! group, and each of those rows is checked and re-scored as above.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::time::{Duration, Instant};

use faiss::index::IndexImpl;
use faiss::{Index as _, MetricType};

use crate::error::{Error, Result};
use crate::metric::Metric;
use crate::query::{SearchOptions, TopK};
use crate::segment::SegmentData;
use crate::segment::SegmentIndex;
use crate::segment::cpu;
use crate::segment::graph::{Graph, Parts};
use crate::segment::groups::Groups;
use crate::segment::prepared::{EXACT_BELOW, Route, SegmentFilter, route};
use crate::seq::ReadView;

unsafe extern "C" {
    fn vecindex_omp_set_threads(threads: c_int);
    fn vecindex_faiss_is_graph(index: *const c_void) -> c_int;
    fn vecindex_faiss_configure(
        index: *mut c_void,
        ef_construction: i64,
        ef_search: i64,
        nprobe: i64,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn vecindex_faiss_search(
        index: *const c_void,
        query: *const f32,
        k: i64,
        distances: *mut f32,
        labels: *mut i64,
        ef_search: i64,
        nprobe: i64,
        bitmap: *const u8,
        bitmap_rows: i64,
        omp_threads: c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn vecindex_faiss_serialized_size(index: *const c_void) -> i64;
    fn vecindex_hnsw_parts_of(index: *const c_void, out: *mut HnswParts) -> c_int;
    fn vecindex_faiss_write(
        index: *const c_void,
        sink: extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize),
        ctx: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn vecindex_faiss_read(
        data: *const u8,
        len: usize,
        index_out: *mut *mut c_void,
        consumed: *mut usize,
        ntotal: *mut i64,
        dim: *mut i64,
        metric: *mut c_int,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
}

/// `vecindex_hnsw_parts` of the shim: a plain HNSW graph's pieces, borrowed from its index.
#[repr(C)]
struct HnswParts {
    nodes: i64,
    dim: i32,
    metric: i32,
    entry_point: i32,
    max_level: i32,
    levels: *const i32,
    offsets: *const usize,
    neighbors: *const i32,
    neighbors_len: i64,
    cum_neighbors: *const i32,
    cum_len: i32,
    vectors: *const f32,
}

/// The search copy of `index`'s graph, if it is a plain HNSW graph over float vectors.
fn search_graph<'g>(index: &IndexImpl, ef_construction: usize, groups: Option<&'g Groups>) -> Option<Graph> {
    let mut parts = std::mem::MaybeUninit::<HnswParts>::zeroed();
    // SAFETY: a valid index pointer; the shim only reads the index and fills `parts`.
    if unsafe { vecindex_hnsw_parts_of(index.inner_ptr().cast_const().cast(), parts.as_mut_ptr()) } != 1 {
        return None;
    }
    // SAFETY: zero-initialized (every field may be zero) and filled in by the call above.
    let parts = unsafe { parts.assume_init() };
    let len = |n: i64| usize::try_from(n).ok();
    let nodes = len(parts.nodes)?;
    let dim = usize::try_from(parts.dim).ok()?;
    let cum_len = usize::try_from(parts.cum_len).ok()?;
    let neighbors_len = len(parts.neighbors_len)?;
    let pieces = [
        parts.levels.cast::<u8>(),
        parts.offsets.cast(),
        parts.neighbors.cast(),
        parts.cum_neighbors.cast(),
        parts.vectors.cast(),
    ];
    if nodes == 0 || pieces.iter().any(|p| p.is_null()) {
        return None;
    }
    // SAFETY: the shim hands out the vectors' own buffers with their lengths (`levels` and
    // `vectors` hold `nodes` and `nodes * dim` entries, `offsets` one more than `nodes`), which
    // live as long as `index`, borrowed here; the index is not mutated while they are read.
    let borrowed = unsafe {
        Parts {
            dim,
            metric: if parts.metric == 1 { Metric::L2 } else { Metric::InnerProduct },
            entry_point: parts.entry_point,
            max_level: parts.max_level,
            levels: std::slice::from_raw_parts(parts.levels, nodes),
            offsets: std::slice::from_raw_parts(parts.offsets, nodes + 1),
            neighbors: std::slice::from_raw_parts(parts.neighbors, neighbors_len),
            cum_neighbors: std::slice::from_raw_parts(parts.cum_neighbors, cum_len),
            vectors: std::slice::from_raw_parts(parts.vectors, nodes.checked_mul(dim)?),
        }
    };
    let members = move |node: usize| -> &'g [u32] { groups.map_or(&[][..], |groups| groups.members(node)) };
    Graph::from_faiss(&borrowed, ef_construction, groups.map(|_| &members as &dyn Fn(usize) -> &'g [u32]))
}

/// Appends what FAISS writes to the `Vec<u8>` behind `ctx`.
extern "C" fn append_to_vec(ctx: *mut c_void, data: *const u8, len: usize) {
    if len == 0 {
        return;
    }
    // SAFETY: `to_bytes` passes a `&mut Vec<u8>` it owns as `ctx`, for the duration of the
    // call that invokes this sink; FAISS passes `len` readable bytes at `data`.
    let (out, piece) = unsafe { (&mut *ctx.cast::<Vec<u8>>(), std::slice::from_raw_parts(data, len)) };
    out.extend_from_slice(piece);
}

const ERR_LEN: usize = 512;

fn shim_error(buffer: &[c_char; ERR_LEN]) -> Error {
    // SAFETY: the shim always NUL-terminates within ERR_LEN (strncpy of ERR_LEN - 1 bytes, then
    // a NUL at the end), and the buffer starts zeroed.
    let reason = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned();
    Error::Faiss { reason }
}

/// A built, immutable FAISS index over one segment. See the module docs.
pub struct FaissIndex {
    index: IndexImpl,
    /// The graph laid out for walking, for a plain HNSW graph ([`Graph`]).
    graph: Option<Graph>,
    /// For a graph whose segment repeats vectors: the rows of each node ([`Groups`]). Without
    /// it, node `i` is row `i`.
    groups: Option<Groups>,
    factory: String,
    /// The build-time defaults, the starting point when a filtered query must widen its search.
    ef_search: usize,
    nprobe: usize,
    /// The build setting it was made with (recorded in the manifest).
    ef_construction: usize,
    search_threads: c_int,
    /// How long building it took, or loading it from disk.
    build_time: Duration,
    bytes: usize,
}

fn metric_type(metric: Metric) -> MetricType {
    match metric {
        // Vectors are stored normalized, so inner product is cosine.
        Metric::Cosine | Metric::InnerProduct => MetricType::InnerProduct,
        Metric::L2 => MetricType::L2,
    }
}

/// Sets the build and default search parameters of an index nobody else holds yet (0: leave
/// as is).
fn configure(index: &mut IndexImpl, ef_construction: usize, config: &SegmentIndex) -> Result<()> {
    let mut err = [0 as c_char; ERR_LEN];
    let clamp = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
    // SAFETY: `index` is a valid index we hold exclusively (`&mut`, not shared with any
    // searcher yet); the shim only sets fields of it, and writes at most ERR_LEN bytes (NUL
    // included) into `err`.
    let rc = unsafe {
        vecindex_faiss_configure(
            index.inner_ptr().cast(),
            clamp(ef_construction),
            clamp(config.ef_search),
            clamp(config.nprobe),
            err.as_mut_ptr(),
            ERR_LEN,
        )
    };
    if rc != 0 {
        return Err(shim_error(&err));
    }
    Ok(())
}

fn faiss_error(e: faiss::error::Error) -> Error {
    Error::Faiss { reason: e.to_string() }
}

impl FaissIndex {
    /// Checks that FAISS accepts `factory` for this metric and dimension.
    pub fn check_factory(factory: &str, metric: Metric, dim: usize) -> Result<()> {
        cpu::check()?;
        let dim = u32::try_from(dim).map_err(|_| Error::Faiss { reason: format!("dimension {dim} too large") })?;
        faiss::index_factory(dim, factory, metric_type(metric))
            .map(drop)
            .map_err(|e| Error::InvalidConfig { reason: format!("FAISS factory string {factory:?}: {e}") })
    }

    /// Builds an index over `vectors` (rows of `dim` values): training if the factory needs it,
    /// then adding, a bounded step at a time (about [`BUILD_STEP`] of work per FAISS call), so
    /// that `cancelled` is asked often; `Ok(None)` when it said yes. An HNSW graph gets one node
    /// per distinct vector ([`Groups`]). Runs on the calling thread with `config.build_threads`
    /// OpenMP threads.
    ///
    /// # Errors
    /// [`Error::Faiss`] if FAISS rejects the factory string or the data, for example an IVF
    /// index with fewer rows than lists to train.
    pub fn build(
        config: &SegmentIndex,
        metric: Metric,
        dim: usize,
        vectors: &[f32],
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Self>> {
        let started = Instant::now();
        cpu::check()?;
        let Some(factory) = config.factory() else {
            return Err(Error::Faiss { reason: "exact segments have no FAISS index".into() });
        };
        let dim_u32 = u32::try_from(dim).map_err(|_| Error::Faiss { reason: format!("dimension {dim} too large") })?;
        let mut index = faiss::index_factory(dim_u32, factory, metric_type(metric)).map_err(faiss_error)?;
        let graph = prepare_to_add(&mut index, config)?;
        let (groups, points) = nodes(vectors, dim, graph);
        if !index.is_trained() {
            index.train(&points).map_err(faiss_error)?;
        }
        if !add_in_steps(&mut index, &points, dim, graph.then_some(config.ef_construction), cancelled)? {
            return Ok(None);
        }
        let bytes = memory_bytes(&index, groups.as_ref());
        Ok(Some(Self::assemble(index, groups, config, started.elapsed(), bytes)))
    }

    /// A copy of this index, which indexes the first `base_rows` rows of `vectors` (rows of
    /// `dim` values), extended with the rest of them: a merge that kept this index's segment in
    /// place. This index is only read (FAISS's `clone_index`), so searches of it go on
    /// meanwhile. Steps, cancellation and duplicate rows as in [`FaissIndex::build`]; rows
    /// added here that repeat a vector of the base get a node of their own.
    ///
    /// # Errors
    /// [`Error::Faiss`] if FAISS cannot copy or extend it, or it does not index `base_rows` rows.
    pub fn extend(
        &self,
        config: &SegmentIndex,
        dim: usize,
        vectors: &[f32],
        base_rows: usize,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Self>> {
        use faiss::index::TryClone as _;
        let started = Instant::now();
        let indexed_rows = self.groups.as_ref().map_or(self.indexed_vectors(), Groups::rows);
        let dim = dim.max(1);
        if indexed_rows != base_rows || vectors.len() < base_rows * dim || self.index.d() as usize != dim {
            return Err(Error::Faiss {
                reason: format!("an index of {indexed_rows} rows cannot be extended as one of {base_rows} of {dim}"),
            });
        }
        let mut index = self.index.try_clone().map_err(faiss_error)?;
        let graph = prepare_to_add(&mut index, config)?;
        let added = &vectors[base_rows * dim..];
        let added_rows = added.len() / dim;
        let (added_groups, points) = nodes(added, dim, graph);
        if !add_in_steps(&mut index, &points, dim, graph.then_some(config.ef_construction), cancelled)? {
            return Ok(None);
        }
        let groups = Groups::appended(self.groups.as_ref(), base_rows, added_groups.as_ref(), added_rows);
        let bytes = memory_bytes(&index, groups.as_ref());
        Ok(Some(Self::assemble(index, groups, config, started.elapsed(), bytes)))
    }

    fn assemble(
        index: IndexImpl,
        groups: Option<Groups>,
        config: &SegmentIndex,
        build_time: Duration,
        bytes: usize,
    ) -> Self {
        // A plain HNSW index searches its rows through the shared graph (`epoch/cover.rs`), which
        // copies this index's graph itself ([`FaissIndex::graph_of_rows`]): no copy of its own.
        let graph =
            config.graph_links().is_none().then(|| search_graph(&index, config.ef_construction, None)).flatten();
        let bytes = bytes + graph.as_ref().map_or(0, Graph::bytes);
        Self {
            index,
            graph,
            groups,
            factory: config.factory().unwrap_or_default().to_owned(),
            ef_search: config.ef_search,
            nprobe: config.nprobe,
            ef_construction: config.ef_construction,
            search_threads: c_int::try_from(config.search_threads.max(1)).unwrap_or(1),
            build_time,
            bytes,
        }
    }

    /// An index read back from `bytes` ([`FaissIndex::to_bytes`]'s, already checked against its
    /// file's checksum), which must index `rows` vectors of `dim` for `metric`.
    ///
    /// # Errors
    /// [`Error::Faiss`] if FAISS cannot read it or it does not match the segment.
    pub fn from_bytes(bytes: &[u8], config: &SegmentIndex, metric: Metric, dim: usize, rows: usize) -> Result<Self> {
        let started = Instant::now();
        cpu::check()?;
        let mut err = [0 as c_char; ERR_LEN];
        let (mut raw, mut consumed, mut ntotal, mut d, mut kind) = (std::ptr::null_mut(), 0, 0i64, 0i64, 0 as c_int);
        // SAFETY: `bytes` is a live slice of `bytes.len()` bytes; the out-pointers point at
        // locals; `err` holds ERR_LEN bytes. On success the shim hands us a new index we own.
        let rc = unsafe {
            vecindex_faiss_read(
                bytes.as_ptr(),
                bytes.len(),
                &mut raw,
                &mut consumed,
                &mut ntotal,
                &mut d,
                &mut kind,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if rc != 0 || raw.is_null() {
            return Err(shim_error(&err));
        }
        // SAFETY: `raw` is a `faiss::Index*` the shim released to us (the C API's `FaissIndex`
        // is that type); `IndexImpl` takes ownership and frees it on drop.
        let mut index = unsafe { <IndexImpl as faiss::index::FromInnerPtr>::from_inner_ptr(raw.cast()) };
        let expected_kind = match metric_type(metric) {
            MetricType::InnerProduct => 0,
            MetricType::L2 => 1,
        };
        let nodes = usize::try_from(ntotal).unwrap_or(usize::MAX);
        let groups = match bytes.get(consumed..).filter(|rest| !rest.is_empty()) {
            Some(section) => Some(Groups::decode(section, nodes, rows)?),
            None => None,
        };
        let expected_nodes = groups.as_ref().map_or(rows, Groups::labels);
        if nodes != expected_nodes || usize::try_from(d).ok() != Some(dim) || kind != expected_kind {
            return Err(Error::Faiss {
                reason: format!(
                    "index of {ntotal} vectors of dimension {d} (metric {kind}), the segment has {expected_nodes} of {dim}"
                ),
            });
        }
        configure(&mut index, 0, config)?; // efConstruction matters no more: it is built
        let memory = bytes.len() + groups.as_ref().map_or(0, Groups::bytes);
        Ok(Self::assemble(index, groups, config, started.elapsed(), memory))
    }

    /// The index in FAISS's `write_index` format, followed by the groups section when some
    /// rows share a node (`docs/format.md`).
    ///
    /// # Errors
    /// [`Error::Faiss`] if FAISS cannot serialize it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(self.bytes);
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: the index is never mutated after it is built, and `write_index` only reads it
        // (module docs); `append_to_vec` receives `&mut out`, which outlives the call; `err`
        // holds ERR_LEN bytes.
        let rc = unsafe {
            vecindex_faiss_write(
                self.index.inner_ptr().cast_const().cast(),
                append_to_vec,
                (&mut out as *mut Vec<u8>).cast(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if rc != 0 {
            return Err(shim_error(&err));
        }
        if let Some(groups) = &self.groups {
            groups.encode(&mut out);
        }
        Ok(out)
    }

    /// A copy of this index's graph labelled by rows (the rows that share a node are its
    /// aliases), for a plain HNSW graph: the start of a cover over its segment.
    pub fn graph_of_rows(&self) -> Option<Graph> {
        search_graph(&self.index, self.ef_construction, self.groups.as_ref())
    }

    /// Vectors the index holds: the segment's rows, or fewer when rows share a node.
    pub fn indexed_vectors(&self) -> usize {
        usize::try_from(self.index.ntotal()).unwrap_or(usize::MAX)
    }

    /// Calls `f` with every row of node `label`.
    #[inline]
    fn for_each_row(&self, label: usize, mut f: impl FnMut(usize)) {
        match &self.groups {
            Some(groups) => groups.members(label).iter().for_each(|&row| f(row as usize)),
            None => f(label),
        }
    }

    pub fn factory(&self) -> &str {
        &self.factory
    }

    pub fn ef_construction(&self) -> usize {
        self.ef_construction
    }

    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// Serialized size of the index (vectors or codes, graph or lists).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Candidates for one query, best first: the `k` nearest nodes by FAISS's distance, or,
    /// where the graph has a search copy, the nodes its walk found with their approximate
    /// distances: `k` and some more, so that re-scoring them exactly finds the `k` best even
    /// where quantization swapped neighbors. `ef_search` and `nprobe` of 0 mean the index's own
    /// settings; `bitmap` allows nodes (bit `n % 8` of byte `n / 8`).
    fn raw_search(
        &self,
        query: &[f32],
        k: usize,
        ef_search: usize,
        nprobe: usize,
        bitmap: Option<&[u8]>,
        nodes: usize,
    ) -> Result<Vec<(usize, f32)>> {
        let Some(graph) = &self.graph else {
            return self.faiss_search(query, k, ef_search, nprobe, bitmap, nodes);
        };
        let ef = if ef_search > 0 { ef_search } else { self.ef_search }.max(k);
        let mut found = Vec::with_capacity(ef);
        let allowed =
            bitmap.map(|bits| move |node: usize| bits.get(node / 8).is_some_and(|b| b & (1 << (node % 8)) != 0));
        graph.search(query, ef, allowed.as_ref().map(|f| f as &dyn Fn(usize) -> bool), &mut found);
        found.truncate(k + k.max(RERANK_MARGIN));
        Ok(found)
    }

    /// [`FaissIndex::search_into`] through the graph's search copy with a pool of `pool` nodes:
    /// rows dead, not yet visible in `view` or rejected by `filter` are skipped as the walk meets
    /// them, only for nodes near enough to enter its results, rather than marked in a bitmap of
    /// the whole segment before every query (which, under a writer replacing rows, cost more
    /// than the walk).
    #[allow(clippy::too_many_arguments)]
    fn walk_into(
        &self,
        graph: &Graph,
        data: &SegmentData,
        query: &[f32],
        view: &ReadView,
        filter: Option<&SegmentFilter<'_>>,
        k: usize,
        pool: usize,
        top: &mut TopK,
    ) {
        let rows = data.len();
        let k = k.min(rows);
        // The filter first: an array read that rejects most rows at low selectivity.
        let wanted = |row: usize| filter.is_none_or(|f| f.passes(row)) && data.is_visible(row, view);
        let dead = data.tombstones().dead_count();
        if rows.saturating_sub(dead) <= EXACT_BELOW {
            data.scan_filtered(0, query, view, filter, top);
            return;
        }
        let all_wanted = filter.is_none() && dead == 0 && view.covers(data.max_add_seq().saturating_add(1));
        let node_wanted = |node: usize| {
            let mut any = false;
            self.for_each_row(node, |row| any = any || wanted(row));
            any
        };
        let check: Option<&dyn Fn(usize) -> bool> = if all_wanted { None } else { Some(&node_wanted) };
        let mut ef = pool.max(k);
        let mut found = Vec::with_capacity(ef);
        for escalation in 0.. {
            found.clear();
            graph.search(query, ef, check, &mut found);
            if found.len() >= k {
                break;
            }
            if escalation == 4 || ef >= rows {
                // The walk keeps finding rows it cannot keep: give up on it.
                data.scan_filtered(0, query, view, filter, top);
                return;
            }
            ef = ef.saturating_mul(4);
        }
        found.truncate(k + k.max(RERANK_MARGIN));
        for (node, _) in found {
            self.for_each_row(node, |row| {
                if wanted(row)
                    && let Some((meta, vector)) = data.row(row)
                {
                    top.offer(query, meta, vector);
                }
            });
        }
    }

    /// Up to `k` (node, FAISS distance) pairs for one query, best first, from FAISS's own
    /// search (arguments as for [`FaissIndex::raw_search`]).
    fn faiss_search(
        &self,
        query: &[f32],
        k: usize,
        ef_search: usize,
        nprobe: usize,
        bitmap: Option<&[u8]>,
        rows: usize,
    ) -> Result<Vec<(usize, f32)>> {
        let mut distances = vec![0f32; k];
        let mut labels = vec![-1i64; k];
        let mut err = [0 as c_char; ERR_LEN];
        let clamp = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let (bitmap_ptr, bitmap_rows) = bitmap.map_or((std::ptr::null(), 0), |b| (b.as_ptr(), clamp(rows)));
        // SAFETY: the index is built and never mutated again, and FAISS's `search` is const and
        // safe to run from many threads at once on such an index (module docs). `query` holds
        // `dim` floats (checked by the caller against the index dimension); `distances` and
        // `labels` hold `k` entries each; `bitmap`, when given, holds `ceil(rows / 8)` bytes for
        // the `rows` ids of this index; `err` holds ERR_LEN bytes.
        let rc = unsafe {
            vecindex_faiss_search(
                self.index.inner_ptr().cast_const().cast(),
                query.as_ptr(),
                clamp(k),
                distances.as_mut_ptr(),
                labels.as_mut_ptr(),
                clamp(ef_search),
                clamp(nprobe),
                bitmap_ptr,
                bitmap_rows,
                self.search_threads,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if rc != 0 {
            return Err(shim_error(&err));
        }
        Ok(labels
            .into_iter()
            .zip(distances)
            .take_while(|(label, _)| *label >= 0)
            .filter_map(|(label, d)| usize::try_from(label).ok().filter(|&r| r < rows).map(|r| (r, d)))
            .collect())
    }

    /// Offers the segment's best rows for `query` to `top`. See the module docs.
    pub fn search_into(
        &self,
        data: &SegmentData,
        query: &[f32],
        view: &ReadView,
        options: &SearchOptions,
        top: &mut TopK,
    ) -> Result<()> {
        let rows = data.len();
        if rows == 0 || query.len() != data.dim() {
            return Ok(());
        }
        let filter = data.filter(options);
        let ef = options.ef_search.unwrap_or(self.ef_search).max(options.k);
        let route = match (&filter, &self.graph) {
            (Some(filter), _) if filter.rejects_all() => return Ok(()),
            (Some(filter), Some(graph)) => route(rows, filter.listed(), filter.expected(), ef, graph.degree()),
            (Some(filter), None) if filter.listed().is_some_and(|listed| listed <= EXACT_BELOW) => Route::Score,
            (None, Some(_)) => Route::Walk { pool: ef },
            // FAISS's own search, with a bitmap of the rows that pass.
            _ => Route::Walk { pool: 0 },
        };
        if let (Route::Score, Some(filter)) = (route, &filter) {
            let candidates = filter.candidates();
            data.score_rows(candidates.iter().map(|&row| row as usize), query, view, filter, top);
            return Ok(());
        }
        if let (Route::Walk { pool }, Some(graph)) = (route, &self.graph) {
            self.walk_into(graph, data, query, view, filter.as_ref(), options.k, pool, top);
            return Ok(());
        }
        let nodes = self.groups.as_ref().map_or(rows, Groups::labels);
        let wanted = |row: usize| filter.as_ref().is_none_or(|f| f.passes(row)) && data.is_visible(row, view);
        let scan = |top: &mut TopK, rows: &mut dyn Iterator<Item = usize>| {
            for row in rows {
                if let Some((meta, vector)) = data.row(row).filter(|_| wanted(row)) {
                    top.offer(query, meta, vector);
                }
            }
        };
        let k = options.k.min(rows);
        let all_added_visible = view.covers(data.max_add_seq().saturating_add(1));
        let dead = data.tombstones().dead_count();
        // Few rows to skip: over-fetch by that many nodes (each node holds at least one row, so
        // at most `dead` nodes are dead). Many: a bitmap selector over nodes, so FAISS itself
        // skips them; a node passes if any of its rows does.
        let over_fetch = !options.has_filters() && all_added_visible && dead <= k.max(16);
        let (bitmap, limit) = if over_fetch {
            (None, nodes)
        } else {
            let mut bitmap = vec![0u8; nodes.div_ceil(8)];
            let (mut allowed, mut allowed_nodes) = (Vec::new(), 0);
            for node in 0..nodes {
                let before = allowed.len();
                self.for_each_row(node, |row| {
                    if wanted(row) {
                        allowed.push(row);
                    }
                });
                if allowed.len() > before {
                    bitmap[node / 8] |= 1 << (node % 8);
                    allowed_nodes += 1;
                }
            }
            if allowed.len() <= EXACT_BELOW {
                // Scanning a few rows beats any index, and is exact.
                scan(top, &mut allowed.into_iter());
                return Ok(());
            }
            (Some(bitmap), allowed_nodes)
        };
        let tie = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0);
        let mut ef_search = options.ef_search.unwrap_or(self.ef_search).max(1);
        let mut nprobe = options.nprobe.unwrap_or(self.nprobe).max(1);
        // One candidate past the k-th, so that whether the k-th ties with nodes not fetched can
        // be decided from this search; asking for exactly k made every query search twice.
        let mut want = if over_fetch { (k + dead + 1).min(nodes) } else { (k + 1).min(limit) };
        let mut escalations = 0;
        let candidates = loop {
            let found = self.raw_search(query, want, ef_search, nprobe, bitmap.as_deref(), nodes)?;
            if found.len() < want.min(limit) {
                // HNSW and IVF stop early when most rows are filtered out: widen the search,
                // and past a few rounds scan instead, so a query never comes back short.
                if escalations < 4 {
                    escalations += 1;
                    ef_search = ef_search.saturating_mul(4);
                    nprobe = nprobe.saturating_mul(4);
                    continue;
                }
                scan(top, &mut (0..rows));
                return Ok(());
            }
            // The distance of the node holding the k-th live row, in FAISS's order.
            let mut live = 0;
            let mut kth = None;
            for &(node, distance) in &found {
                self.for_each_row(node, |row| {
                    if live < k && wanted(row) {
                        live += 1;
                        if live == k {
                            kth = Some(distance);
                        }
                    }
                });
                if kth.is_some() {
                    break;
                }
            }
            let settled = match (kth, found.last()) {
                // Nothing past the last candidate can tie with the k-th.
                (Some(kth), Some((_, last))) => !tie(kth, *last),
                _ => false,
            };
            if settled || want >= limit {
                break found;
            }
            want = (want * 2).min(limit);
        };
        let mut rows_found = Vec::with_capacity(candidates.len());
        for (node, _) in candidates {
            self.for_each_row(node, |row| rows_found.push(row));
        }
        scan(top, &mut rows_found.into_iter());
        Ok(())
    }
}

/// Readies an index nobody else holds for adds: this thread's OpenMP team for builds, the build
/// settings. Returns whether it is a graph (whose nodes are one per distinct vector).
fn prepare_to_add(index: &mut IndexImpl, config: &SegmentIndex) -> Result<bool> {
    // SAFETY: plain setter of the calling thread's OpenMP team size.
    unsafe { vecindex_omp_set_threads(c_int::try_from(config.effective_build_threads()).unwrap_or(c_int::MAX)) };
    configure(index, config.ef_construction, config)?;
    // SAFETY: a valid index pointer; the shim only inspects its type.
    Ok(unsafe { vecindex_faiss_is_graph(index.inner_ptr().cast_const().cast()) } != 0)
}

/// The vectors an index over `vectors` (rows of `dim` values) holds: for a graph one per group
/// of duplicate rows ([`Groups`], when there are duplicates), otherwise every row.
fn nodes(vectors: &[f32], dim: usize, graph: bool) -> (Option<Groups>, std::borrow::Cow<'_, [f32]>) {
    let groups = if graph { Groups::find(vectors, dim) } else { None };
    let points = match &groups {
        Some(groups) => {
            groups.representatives().flat_map(|row| &vectors[row * dim..(row + 1) * dim]).copied().collect()
        }
        None => std::borrow::Cow::Borrowed(vectors),
    };
    (groups, points)
}

/// Serialized size of `index` plus its groups.
fn memory_bytes(index: &IndexImpl, groups: Option<&Groups>) -> usize {
    // SAFETY: a valid index pointer; the shim only reads the index.
    let bytes = unsafe { vecindex_faiss_serialized_size(index.inner_ptr().cast_const().cast()) };
    usize::try_from(bytes).unwrap_or(0) + groups.map_or(0, Groups::bytes)
}

/// Adds `points` (rows of `dim` values) to `index` a bounded step at a time, asking `cancelled`
/// between steps; false when it said yes. A graph (`graph_ef_construction` set) takes a fixed
/// step for its shape: its shape depends on how its rows are split into calls (each call
/// inserts its rows level by level), so the same rows must always be split the same way to
/// build the same graph. Other indexes add each row on its own, whatever the split, and their
/// steps follow the time the last one took.
fn add_in_steps(
    index: &mut IndexImpl,
    points: &[f32],
    dim: usize,
    graph_ef_construction: Option<usize>,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool> {
    let dim = dim.max(1);
    let graph_step = graph_ef_construction.map(|ef| graph_step_rows(dim, ef));
    let total = points.len() / dim;
    let (mut added, mut batch) = (0, graph_step.unwrap_or(FIRST_BATCH));
    while added < total {
        if cancelled() {
            return Ok(false);
        }
        let n = batch.min(total - added);
        let step = Instant::now();
        index.add(&points[added * dim..(added + n) * dim]).map_err(faiss_error)?;
        added += n;
        if graph_step.is_none() {
            let per_row = step.elapsed().as_secs_f64() / n as f64;
            batch = ((BUILD_STEP.as_secs_f64() / per_row.max(1e-9)) as usize).clamp(MIN_BATCH, MAX_BATCH);
        }
    }
    Ok(true)
}

/// Nodes a graph walk hands back past the `k` asked for, at least: 8-bit codes may rank a
/// true neighbor a few places lower, and re-scoring a few more rows exactly is cheap beside
/// the walk (at 50 dimensions, 16 more lost no recall against re-scoring the whole pool).
const RERANK_MARGIN: usize = 16;

/// FAISS work per call while building: how long a cancelled build can still run, at most
/// (`cancelled` is asked between calls).
pub const BUILD_STEP: Duration = Duration::from_millis(100);
/// Rows the first call adds; later calls are sized from the time per row so far.
const FIRST_BATCH: usize = 256;
/// Distance work (dimensions x efConstruction, per row) of one graph step: about [`BUILD_STEP`]
/// on one core of the machines measured (an HNSW32 insert at 384 dimensions and efConstruction
/// 80 took about 0.23 ms).
const GRAPH_STEP_WORK: usize = 12_000_000;
const MIN_BATCH: usize = 64;
const MAX_BATCH: usize = 1 << 16;

/// Rows per FAISS call while building a graph of `dim` dimensions: a function of the shape
/// alone, never of timing, so that a build is reproducible.
fn graph_step_rows(dim: usize, ef_construction: usize) -> usize {
    (GRAPH_STEP_WORK / (dim.max(1) * ef_construction.max(1))).clamp(MIN_BATCH, MAX_BATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct pseudo-random rows (xorshift), so that no two share a graph node.
    fn rows(n: usize, dim: usize) -> Vec<f32> {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        (0..n * dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    /// The shim walks HNSW graphs with a visited table per thread, reused across queries and
    /// graphs; each query must still find what FAISS's own search (a fresh table each time)
    /// finds, through the table's wrap-around (every 249 queries) and across graphs of
    /// different sizes searched in turn on one thread.
    #[test]
    fn reused_visited_tables_find_what_a_fresh_search_finds() {
        let dim = 16;
        let config = SegmentIndex::faiss("HNSW16").ef_construction(40).ef_search(16).build_threads(1);
        let build = |n| {
            let vectors = rows(n, dim);
            FaissIndex::build(&config, Metric::InnerProduct, dim, &vectors, &|| false).unwrap().unwrap()
        };
        let mut graphs = [build(3000), build(200), build(1200)];
        let queries = rows(700, dim);
        for (q, query) in queries.chunks(dim).enumerate() {
            let graph = &mut graphs[q % 3];
            let ours = graph.faiss_search(query, 10, 0, 0, None, graph.indexed_vectors()).unwrap();
            let fresh = graph.index.search(query, 10).unwrap();
            let theirs: Vec<(usize, f32)> = fresh
                .labels
                .iter()
                .zip(&fresh.distances)
                .filter_map(|(label, &d)| label.get().map(|r| (r as usize, d)))
                .collect();
            assert_eq!(ours, theirs, "query {q}");
        }
    }

    /// Rows around a few centres, so that a query's neighbors are a cluster, not noise.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let centres = rows(8, dim);
        let noise = rows(n + seed as usize, dim);
        (0..n * dim).map(|i| centres[(i / dim % 8) * dim + i % dim] + 0.3 * noise[seed as usize * dim + i]).collect()
    }

    fn exact_top(vectors: &[f32], query: &[f32], dim: usize, metric: Metric, k: usize) -> Vec<usize> {
        let mut scored: Vec<(f32, usize)> = vectors
            .chunks_exact(dim)
            .enumerate()
            .map(|(row, v)| (metric.rank_key(metric.score(query, v)), row))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored.into_iter().take(k).map(|(_, row)| row).collect()
    }

    /// The search copy's walk (8-bit codes, then the exact re-scoring `search_into` does) finds
    /// what FAISS's own walk finds, within a little recall, for both metrics, and an allowed
    /// bitmap keeps every other node out.
    #[test]
    fn the_search_copy_finds_what_faiss_finds() {
        let (n, dim, k) = (4000, 24, 10);
        let vectors = clustered(n, dim, 0);
        let queries = clustered(200, dim, 7);
        for metric in [Metric::InnerProduct, Metric::L2] {
            // Spelled so that it is not plain HNSW, whose segments leave the copy to the cover.
            let config = SegmentIndex::faiss("HNSW32,Flat").ef_construction(80).build_threads(1);
            let index = FaissIndex::build(&config, metric, dim, &vectors, &|| false).unwrap().unwrap();
            let graph = index.graph.as_ref().expect("an HNSW graph over floats gets a search copy");
            let (mut ours, mut theirs) = (0usize, 0usize);
            for query in queries.chunks_exact(dim) {
                let truth = exact_top(&vectors, query, dim, metric, k);
                let mut found = Vec::new();
                graph.search(query, 64, None, &mut found);
                let candidates: Vec<usize> = found.iter().take(k + RERANK_MARGIN).map(|&(node, _)| node).collect();
                let picked: Vec<f32> =
                    candidates.iter().flat_map(|&node| vectors[node * dim..(node + 1) * dim].to_vec()).collect();
                let best: Vec<usize> =
                    exact_top(&picked, query, dim, metric, k).into_iter().map(|i| candidates[i]).collect();
                ours += best.iter().filter(|node| truth.contains(node)).count();
                let faiss = index.faiss_search(query, k, 64, 0, None, n).unwrap();
                theirs += faiss.iter().filter(|(node, _)| truth.contains(node)).count();
                found.clear();
                // Rows 0-7, 16-23, ...: a share of every cluster (row r is in cluster r % 8).
                graph.search(query, 64, Some(&|node| node / 8 % 2 == 0), &mut found);
                assert!(found.len() >= k && found.iter().all(|&(node, _)| node / 8 % 2 == 0), "{metric:?} {found:?}");
            }
            let total = (queries.len() / dim * k) as f64;
            let (ours, theirs) = (ours as f64 / total, theirs as f64 / total);
            assert!(ours >= 0.9 && ours >= theirs - 0.02, "{metric:?}: recall {ours} against FAISS's {theirs}");
        }
    }

    #[test]
    fn the_same_rows_build_the_same_graph_over_several_steps() {
        let (n, dim) = (5000, 128);
        let config = SegmentIndex::faiss("HNSW32").ef_construction(80).build_threads(1);
        assert!(graph_step_rows(dim, 80) * 3 < n, "the build takes several steps");
        let vectors = rows(n, dim);
        let build = || FaissIndex::build(&config, Metric::L2, dim, &vectors, &|| false).unwrap().unwrap();
        let (first, second) = (build(), build());
        assert_eq!(first.indexed_vectors(), n);
        assert!(first.to_bytes().unwrap() == second.to_bytes().unwrap(), "two builds of the same rows differ");
    }
}
