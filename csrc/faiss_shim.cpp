// The few FAISS calls the C API does not offer: per-query efSearch / nprobe with an ID selector,
// build-time HNSW/IVF parameters, the serialized size of an index, OpenMP threads per thread, and
// (de)serialization to and from memory (the C API only knows file names and FILE*; vecindex
// checks a file's header and checksum before FAISS sees a byte of it).
// Every function catches C++ exceptions and reports them as an error string: nothing unwinds
// into Rust.

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <stdexcept>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/ResultHandler.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

namespace {

void report(const char* what, char* err, size_t err_len) {
    if (err == nullptr || err_len == 0) return;
    std::strncpy(err, what, err_len - 1);
    err[err_len - 1] = '\0';
}

// The index that holds the HNSW graph or the inverted lists, looking through nothing else:
// factory strings such as "HNSW32", "HNSW32,SQ8", "IVF256,Flat", "IVF256,PQ16" produce these
// directly.
const faiss::IndexHNSW* as_hnsw(const faiss::Index* index) { return dynamic_cast<const faiss::IndexHNSW*>(index); }
const faiss::IndexIVF* as_ivf(const faiss::Index* index) { return dynamic_cast<const faiss::IndexIVF*>(index); }

// Runs `body`, turning any C++ exception into -1 and a message in `err`.
template <typename Body>
int guarded(char* err, size_t err_len, Body&& body) {
    try {
        body();
        return 0;
    } catch (const std::exception& e) {
        report(e.what(), err, err_len);
    } catch (...) {
        report("unknown C++ exception", err, err_len);
    }
    return -1;
}

// Sets this thread's OpenMP team size, touching the runtime only when it changes: every query
// asks for the same size, and FAISS runs a single query on the calling thread anyway.
void use_omp_threads(int threads) {
    if (threads > 0 && omp_get_max_threads() != threads) omp_set_num_threads(threads);
}

// This thread's visited table, one byte per row of the largest graph it has searched.
// IndexHNSW::search allocates and zeroes a table of the graph's size on every call, which at a
// few hundred thousand rows costs as much as a short walk. HNSW::search marks a row visited by
// storing the table's current number and moves to the next number when it ends (zeroing the
// table once every 249 queries), so a table stays valid across queries and graphs as long as it
// is at least as large as the graph; rows added by growing it are 0, which is never current.
faiss::VisitedTable& thread_visited_table(size_t rows) {
    thread_local faiss::VisitedTable table(0);
    if (table.visited.size() < rows) table.visited.resize(rows);
    return table;
}

// One query on an HNSW graph, as IndexHNSW::search runs it for one query (same result handler,
// distance computer and sign convention) but with this thread's visited table, and without
// adding to FAISS's global search statistics (an unsynchronized counter shared by all threads).
void search_hnsw(const faiss::IndexHNSW& index, const float* query, int64_t k, float* distances,
                 faiss::idx_t* labels, const faiss::SearchParametersHNSW& params) {
    if (index.storage == nullptr) throw std::invalid_argument("HNSW index without storage");
    if (k <= 0) throw std::invalid_argument("k must be positive");
    using Handler = faiss::HeapBlockResultHandler<faiss::HNSW::C>;
    Handler block(1, distances, labels, static_cast<size_t>(k));
    Handler::SingleResultHandler result(block);
    const bool similarity = faiss::is_similarity_metric(index.metric_type);
    std::unique_ptr<faiss::DistanceComputer> distance(index.storage->get_distance_computer());
    if (similarity) distance.reset(new faiss::NegativeDistanceComputer(distance.release()));
    faiss::VisitedTable& visited = thread_visited_table(static_cast<size_t>(index.ntotal));
    result.begin(0);
    distance->set_query(query);
    try {
        index.hnsw.search(*distance, result, visited, &params);
    } catch (...) {
        visited.advance();  // the walk may have marked rows with the current number
        throw;
    }
    result.end();
    if (similarity) {
        for (int64_t i = 0; i < k; i++) distances[i] = -distances[i];
    }
}

typedef void (*vecindex_sink)(void* ctx, const uint8_t* data, size_t len);

// Hands every piece FAISS writes to a Rust callback (which appends it to a buffer).
struct SinkWriter : faiss::IOWriter {
    vecindex_sink sink;
    void* ctx;
    SinkWriter(vecindex_sink sink, void* ctx) : sink(sink), ctx(ctx) {}
    size_t operator()(const void* ptr, size_t size, size_t nitems) override {
        sink(ctx, static_cast<const uint8_t*>(ptr), size * nitems);
        return nitems;
    }
};

// Reads from a span of memory; a read past the end comes back short, which FAISS reports as an
// error (it checks every read's count).
struct SpanReader : faiss::IOReader {
    const uint8_t* data;
    size_t len;
    size_t pos = 0;
    SpanReader(const uint8_t* data, size_t len) : data(data), len(len) {}
    size_t operator()(void* ptr, size_t size, size_t nitems) override {
        if (size == 0 || nitems == 0) return 0;
        size_t n = std::min(nitems, (len - pos) / size);
        std::memcpy(ptr, data + pos, n * size);
        pos += n * size;
        return n;
    }
};

}  // namespace

extern "C" {

// The instruction sets the compiler was allowed to assume (bits: 1 AVX2, 2 FMA, 4 F16C,
// 8 POPCNT). FAISS is compiled with the same C++ flags, so a CPU needs all of them before any
// FAISS code runs (src/segment/cpu.rs checks).
int vecindex_faiss_assumed_simd() {
    int bits = 0;
#ifdef __AVX2__
    bits |= 1;
#endif
#ifdef __FMA__
    bits |= 2;
#endif
#ifdef __F16C__
    bits |= 4;
#endif
#ifdef __POPCNT__
    bits |= 8;
#endif
    return bits;
}

void vecindex_omp_set_threads(int threads) { use_omp_threads(threads); }

// Whether the index is an HNSW graph (whose construction suffers from duplicate points).
int vecindex_faiss_is_graph(const void* index_ptr) { return as_hnsw(static_cast<const faiss::Index*>(index_ptr)) != nullptr; }

int vecindex_faiss_configure(void* index_ptr, int64_t ef_construction, int64_t ef_search, int64_t nprobe, char* err,
                             size_t err_len) {
    return guarded(err, err_len, [&] {
        auto* index = static_cast<faiss::Index*>(index_ptr);
        if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index)) {
            if (ef_construction > 0) hnsw->hnsw.efConstruction = static_cast<int>(ef_construction);
            if (ef_search > 0) hnsw->hnsw.efSearch = static_cast<int>(ef_search);
        }
        if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) {
            if (nprobe > 0) ivf->nprobe = static_cast<size_t>(nprobe);
        }
    });
}

// One query. `bitmap` (may be null) allows row i iff bit (i & 7) of byte i >> 3 is set.
// ef_search / nprobe <= 0 mean "the index's own setting". Runs on `omp_threads` OpenMP threads
// (1 by default: many Rust threads search at once, and a team per query would oversubscribe
// the cores).
int vecindex_faiss_search(const void* index_ptr, const float* query, int64_t k, float* distances, int64_t* labels,
                          int64_t ef_search, int64_t nprobe, const uint8_t* bitmap, int64_t bitmap_rows,
                          int omp_threads, char* err, size_t err_len) {
    return guarded(err, err_len, [&] {
        use_omp_threads(omp_threads > 0 ? omp_threads : 1);
        const auto* index = static_cast<const faiss::Index*>(index_ptr);
        std::unique_ptr<faiss::IDSelectorBitmap> selector;
        if (bitmap != nullptr) selector.reset(new faiss::IDSelectorBitmap(static_cast<size_t>(bitmap_rows), bitmap));
        auto* labels_out = reinterpret_cast<faiss::idx_t*>(labels);
        if (const auto* hnsw = as_hnsw(index)) {
            faiss::SearchParametersHNSW params;
            params.sel = selector.get();
            params.efSearch = ef_search > 0 ? static_cast<int>(ef_search) : hnsw->hnsw.efSearch;
            params.bounded_queue = hnsw->hnsw.search_bounded_queue;
            // The two-level and CAGRA variants search their own way.
            const bool plain = dynamic_cast<const faiss::IndexHNSW2Level*>(hnsw) == nullptr &&
                               dynamic_cast<const faiss::IndexHNSWCagra*>(hnsw) == nullptr;
            if (plain) {
                search_hnsw(*hnsw, query, k, distances, labels_out, params);
            } else {
                index->search(1, query, k, distances, labels_out, &params);
            }
        } else if (const auto* ivf = as_ivf(index)) {
            faiss::SearchParametersIVF params;
            params.sel = selector.get();
            params.nprobe = nprobe > 0 ? static_cast<size_t>(nprobe) : ivf->nprobe;
            index->search(1, query, k, distances, labels_out, &params);
        } else {
            faiss::SearchParameters params;
            params.sel = selector.get();
            index->search(1, query, k, distances, labels_out, selector ? &params : nullptr);
        }
    });
}

// The parts of a plain HNSW graph over flat float vectors (IndexHNSWFlat, built by the
// factory strings "HNSW<M>"), borrowed from the index: vecindex copies them into its own
// search layout (src/segment/graph/). Valid while the index lives and is not mutated.
struct vecindex_hnsw_parts {
    int64_t nodes;
    int32_t dim;
    int32_t metric;  // 0 inner product, 1 L2
    int32_t entry_point;
    int32_t max_level;
    const int32_t* levels;         // per node: its top level + 1
    const size_t* offsets;         // per node and one past: where its links start in `neighbors`
    const int32_t* neighbors;      // every node's links, level 0 first; -1 marks an empty slot
    int64_t neighbors_len;
    const int32_t* cum_neighbors;  // slots before each level within a node's links
    int32_t cum_len;
    const float* vectors;          // nodes x dim
};

// 1 with `out` filled in for a plain HNSW graph over flat float storage; 0 for any other index.
int vecindex_hnsw_parts_of(const void* index_ptr, vecindex_hnsw_parts* out) {
    const auto* hnsw = as_hnsw(static_cast<const faiss::Index*>(index_ptr));
    if (hnsw == nullptr || dynamic_cast<const faiss::IndexHNSW2Level*>(hnsw) != nullptr ||
        dynamic_cast<const faiss::IndexHNSWCagra*>(hnsw) != nullptr) {
        return 0;
    }
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(hnsw->storage);
    if (flat == nullptr || (hnsw->metric_type != faiss::METRIC_INNER_PRODUCT && hnsw->metric_type != faiss::METRIC_L2)) {
        return 0;
    }
    const faiss::HNSW& graph = hnsw->hnsw;
    const size_t nodes = static_cast<size_t>(hnsw->ntotal);
    if (graph.levels.size() != nodes || graph.offsets.size() != nodes + 1 || flat->ntotal != hnsw->ntotal) return 0;
    out->nodes = hnsw->ntotal;
    out->dim = hnsw->d;
    out->metric = hnsw->metric_type == faiss::METRIC_INNER_PRODUCT ? 0 : 1;
    out->entry_point = graph.entry_point;
    out->max_level = graph.max_level;
    out->levels = graph.levels.data();
    out->offsets = graph.offsets.data();
    out->neighbors = graph.neighbors.data();
    out->neighbors_len = static_cast<int64_t>(graph.neighbors.size());
    out->cum_neighbors = graph.cum_nneighbor_per_level.data();
    out->cum_len = static_cast<int32_t>(graph.cum_nneighbor_per_level.size());
    out->vectors = flat->get_xb();
    return 1;
}

// Bytes `write_index` would produce: what the index costs in memory, near enough, and on disk.
int64_t vecindex_faiss_serialized_size(const void* index_ptr) {
    try {
        faiss::VectorIOWriter writer;
        faiss::write_index(static_cast<const faiss::Index*>(index_ptr), &writer);
        return static_cast<int64_t>(writer.data.size());
    } catch (...) {
        return -1;
    }
}

// Serializes an index (FAISS's write_index format) through `sink`.
int vecindex_faiss_write(const void* index_ptr, vecindex_sink sink, void* ctx, char* err, size_t err_len) {
    return guarded(err, err_len, [&] {
        SinkWriter writer(sink, ctx);
        faiss::write_index(static_cast<const faiss::Index*>(index_ptr), &writer);
    });
}

// Reads an index from the first bytes of the `len` at `data`. On success `*index_out` owns a new
// index (free it with faiss_Index_free), `*consumed` is how many bytes it took (vecindex may
// follow them with a section of its own), and `*ntotal`, `*dim` and `*metric` (0 inner product,
// 1 L2, 2 other) describe it.
int vecindex_faiss_read(const uint8_t* data, size_t len, void** index_out, size_t* consumed, int64_t* ntotal,
                        int64_t* dim, int* metric, char* err, size_t err_len) {
    *index_out = nullptr;
    return guarded(err, err_len, [&] {
        SpanReader reader(data, len);
        std::unique_ptr<faiss::Index> index(faiss::read_index(&reader, 0));
        *consumed = reader.pos;
        *ntotal = static_cast<int64_t>(index->ntotal);
        *dim = static_cast<int64_t>(index->d);
        *metric = index->metric_type == faiss::METRIC_INNER_PRODUCT ? 0 : index->metric_type == faiss::METRIC_L2 ? 1 : 2;
        *index_out = index.release();
    });
}

}  // extern "C"
