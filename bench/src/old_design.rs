//! The design vecindex replaces, as the seed describes it: one FAISS flat index (inner product
//! over normalized vectors) and the id maps behind one mutex, held for the whole of every call,
//! persist included (it writes the FAISS index and the maps while holding the lock).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use faiss::index::IndexImpl;
use faiss::{Index as _, MetricType};
use vecindex::Chunk;

use crate::data::normalized;
use crate::design::Design;

/// Raw FAISS behind a mutex. Rows are never removed (the benchmarks only add).
pub struct FaissMutex {
    dim: usize,
    state: Mutex<State>,
}

struct State {
    index: IndexImpl,
    /// Row -> (chunk id, doc id, text).
    rows: Vec<(String, String, String)>,
    by_chunk: HashMap<String, usize>,
    docs: HashMap<String, Vec<String>>,
}

impl FaissMutex {
    pub fn new(dim: usize) -> Self {
        let index = faiss::index_factory(dim as u32, "Flat", MetricType::InnerProduct).expect("FAISS flat index");
        Self {
            dim,
            state: Mutex::new(State { index, rows: Vec::new(), by_chunk: HashMap::new(), docs: HashMap::new() }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn push(&mut self, chunk: Chunk) {
        let row = self.rows.len();
        self.by_chunk.insert(chunk.chunk_id.clone(), row);
        self.docs.entry(chunk.doc_id.clone()).or_default().push(chunk.chunk_id.clone());
        self.rows.push((chunk.chunk_id, chunk.doc_id, chunk.text));
    }
}

impl Design for FaissMutex {
    fn name(&self) -> &'static str {
        "FaissMutex"
    }

    fn add_chunk(&self, chunk: Chunk) {
        assert_eq!(chunk.vector.len(), self.dim);
        let vector = normalized(chunk.vector.clone());
        let mut state = self.lock();
        state.index.add(&vector).expect("FAISS add");
        state.push(chunk);
    }

    fn add_bulk(&self, chunks: Vec<Chunk>) {
        let vectors: Vec<f32> = chunks.iter().flat_map(|c| normalized(c.vector.clone())).collect();
        let mut state = self.lock();
        state.index.add(&vectors).expect("FAISS add");
        for chunk in chunks {
            state.push(chunk);
        }
    }

    /// Appends the chunks (the benchmarks never replace a document).
    fn add_document(&self, _doc_id: &str, chunks: Vec<Chunk>) {
        self.add_bulk(chunks);
    }

    fn search(&self, query: &[f32], k: usize) -> Vec<String> {
        let query = normalized(query.to_vec());
        let mut state = self.lock();
        let result = state.index.search(&query, k).expect("FAISS search");
        result.labels.iter().filter_map(|l| l.get()).map(|row| state.rows[row as usize].0.clone()).collect()
    }

    /// Writes `index.faiss` and `maps.tsv` (row -> chunk, doc, text) in place and fsyncs them, all
    /// under the lock, as the seed's persist did.
    fn persist(&self, dir: &Path) -> u64 {
        std::fs::create_dir_all(dir).expect("create dir");
        let state = self.lock();
        let index_path = dir.join("index.faiss");
        faiss::write_index(&state.index, index_path.to_str().expect("UTF-8 path")).expect("FAISS write");
        std::fs::File::open(&index_path).and_then(|f| f.sync_all()).expect("fsync");
        let mut maps = std::io::BufWriter::new(std::fs::File::create(dir.join("maps.tsv")).expect("create"));
        for (chunk, doc, text) in &state.rows {
            writeln!(maps, "{chunk}\t{doc}\t{}", text.replace(['\t', '\n'], " ")).expect("write");
        }
        let maps = maps.into_inner().expect("flush");
        maps.sync_all().expect("fsync");
        std::fs::metadata(&index_path).map(|m| m.len()).unwrap_or(0) + maps.metadata().map(|m| m.len()).unwrap_or(0)
    }

    fn len(&self) -> usize {
        self.lock().rows.len()
    }
}
