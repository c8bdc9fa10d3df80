//! Helpers shared by the integration tests: deterministic vectors, scripted writers, the
//! expected state after every prefix of a writer's script, and child processes to kill.

#![allow(clippy::disallowed_types)] // tests drive the index from std threads; the shim rule is the library's
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use vecindex::{Chunk, Index, IndexConfig, OpenOptions, SearchOptions, SegmentIndex, TieredMergePolicy};

pub const DIM: usize = 8;

/// Sealed segments that search exactly (so a search with a huge k sees every live row) yet go
/// through FAISS when it is built in: "Flat" indexes on every segment, merged four at a time.
pub fn exact_config() -> IndexConfig {
    let segments =
        if cfg!(feature = "faiss") { SegmentIndex::faiss("Flat").min_rows(0) } else { SegmentIndex::exact() };
    IndexConfig::new(DIM).segment_index(segments).merge_policy(TieredMergePolicy::default().merge_factor(4))
}

/// A deterministic pseudo-random vector (splitmix64), never all zeros.
pub fn vector(seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..DIM)
        .map(|i| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z % 2001) as f32 / 1000.0 - 1.0 + if i == 0 { 2.5 } else { 0.0 }
        })
        .collect()
}

/// One operation of a scripted writer.
#[derive(Clone, Debug)]
pub enum Op {
    /// add_document(doc, chunks of version `version`)
    Put {
        doc: String,
        version: u32,
        chunks: usize,
    },
    /// add_chunk of one extra chunk into an existing or new document
    AddChunk {
        doc: String,
        chunk: String,
    },
    RemoveDocument {
        doc: String,
    },
    RemoveChunk {
        chunk: String,
    },
}

/// The state a writer's namespace is in: doc -> chunk id -> version tag.
pub type State = BTreeMap<String, BTreeMap<String, String>>;

/// A writer's operations, with the state after every `CHECKPOINT`-th prefix; the state after
/// any prefix is replayed from the nearest checkpoint (keeping every state would cost memory
/// quadratic in the script's length).
pub struct Script {
    pub ops: Vec<Op>,
    checkpoints: Vec<State>,
}

const CHECKPOINT: usize = 128;

impl Script {
    /// `n` operations in namespace `w{writer}-`: mostly new documents, with replacements,
    /// single-chunk adds, document removals and chunk removals mixed in.
    pub fn new(writer: usize, n: usize) -> Self {
        let mut ops = Vec::with_capacity(n);
        let mut state = State::new();
        let mut checkpoints = vec![state.clone()];
        for i in 0..n {
            let doc = |j: usize| format!("w{writer}-d{j}");
            let op = match i % 10 {
                3 if i >= 5 => Op::Put { doc: doc(i - 5), version: i as u32, chunks: 1 + i % 4 },
                6 if i >= 4 => Op::RemoveDocument { doc: doc(i - 4) },
                8 if i >= 2 => Op::AddChunk { doc: doc(i - 2), chunk: format!("w{writer}-x{i}") },
                9 => match state.values().flat_map(|d| d.keys()).nth(i % 7) {
                    Some(chunk) => Op::RemoveChunk { chunk: chunk.clone() },
                    None => Op::Put { doc: doc(i), version: i as u32, chunks: 3 },
                },
                _ => Op::Put { doc: doc(i), version: i as u32, chunks: 2 + i % 3 },
            };
            apply_to_state(&mut state, &op);
            ops.push(op);
            if ops.len() % CHECKPOINT == 0 {
                checkpoints.push(state.clone());
            }
        }
        Self { ops, checkpoints }
    }

    /// The state after the first `k` operations.
    pub fn state_at(&self, k: usize) -> State {
        let k = k.min(self.ops.len());
        let mut state = self.checkpoints[k / CHECKPOINT].clone();
        for op in &self.ops[k / CHECKPOINT * CHECKPOINT..k] {
            apply_to_state(&mut state, op);
        }
        state
    }

    /// Runs operation `i` against `index`.
    pub fn run(&self, index: &dyn Index, i: usize) {
        match &self.ops[i] {
            Op::Put { doc, version, chunks } => index.add_document(doc, doc_chunks(doc, *version, *chunks)).unwrap(),
            Op::AddChunk { doc, chunk } => {
                index.add_chunk(tagged(chunk, doc, "single", i as u64)).unwrap();
            }
            Op::RemoveDocument { doc } => drop(index.remove_document(doc).unwrap()),
            Op::RemoveChunk { chunk } => {
                assert!(index.remove_chunk(chunk).unwrap(), "{chunk} must exist")
            }
        }
    }

    /// Checks that `observed` equals the state after some prefix `k` with `lo <= k <= acked + 1`,
    /// where `lo` is what had been acknowledged before the observation began and `acked` what had
    /// been acknowledged when it ended (one more operation may have completed but not yet been
    /// acknowledged). Returns that k.
    pub fn find_prefix(&self, observed: &State, lo: usize, acked: usize) -> Result<usize, String> {
        let hi = (acked + 1).min(self.ops.len());
        let mut state = self.state_at(lo);
        let mut nearest = (usize::MAX, lo);
        for k in lo..=hi {
            if &state == observed {
                return Ok(k);
            }
            nearest = nearest.min((diff_size(&state, observed), k));
            if k < hi {
                apply_to_state(&mut state, &self.ops[k]);
            }
        }
        Err({
            let near = Some(nearest.1);
            let expected = self.state_at(nearest.1);
            let docs: std::collections::BTreeSet<&String> = expected.keys().chain(observed.keys()).collect();
            let differing: Vec<String> = docs
                .into_iter()
                .filter(|d| expected.get(*d) != observed.get(*d))
                .map(|d| format!("{d}: expected {:?}, observed {:?}", expected.get(d), observed.get(d)))
                .collect();
            format!("observed state matches no prefix in {lo}..={hi}; nearest prefix {near:?} differs in {differing:?}")
        })
    }
}

fn diff_size(a: &State, b: &State) -> usize {
    let keys: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).count()
}

fn apply_to_state(state: &mut State, op: &Op) {
    match op {
        Op::Put { doc, version, chunks } => {
            let chunks = (0..*chunks).map(|c| (format!("{doc}-c{c}"), format!("v{version}"))).collect();
            state.insert(doc.clone(), chunks);
        }
        Op::AddChunk { doc, chunk } => {
            state.entry(doc.clone()).or_default().insert(chunk.clone(), "single".into());
        }
        Op::RemoveDocument { doc } => drop(state.remove(doc)),
        Op::RemoveChunk { chunk } => {
            let doc = state.iter().find(|(_, c)| c.contains_key(chunk)).map(|(d, _)| d.clone()).unwrap();
            let chunks = state.get_mut(&doc).unwrap();
            chunks.remove(chunk);
            if chunks.is_empty() {
                state.remove(&doc);
            }
        }
    }
}

/// A chunk whose metadata carries a version tag, so any observer can tell versions apart.
pub fn tagged(chunk_id: &str, doc: &str, version: &str, seed: u64) -> Chunk {
    let mut seed_bytes = seed;
    for b in chunk_id.bytes() {
        seed_bytes = seed_bytes.wrapping_mul(31).wrapping_add(b as u64);
    }
    Chunk::new(chunk_id, doc, vector(seed_bytes))
        .with_text(format!("{chunk_id} of {doc} version {version}"))
        .with_meta("version", version)
}

pub fn doc_chunks(doc: &str, version: u32, n: usize) -> Vec<Chunk> {
    (0..n).map(|c| tagged(&format!("{doc}-c{c}"), doc, &format!("v{version}"), version as u64)).collect()
}

/// The version tag a chunk of `doc_chunks` carries.
pub fn version_tag(metadata: &vecindex::Metadata) -> String {
    metadata["version"].as_str().expect("a version tag is a string").to_owned()
}

/// The state of namespace `w{writer}-` as the maps and get_chunk report it.
pub fn observe_maps(index: &dyn Index, writer: usize) -> State {
    let prefix = format!("w{writer}-");
    let mut state = State::new();
    for doc in index.document_ids().into_iter().filter(|d| d.starts_with(&prefix)) {
        let mut chunks = BTreeMap::new();
        for id in index.chunk_ids(&doc) {
            let chunk = index.chunk(&id).unwrap_or_else(|| panic!("{id} listed but not found"));
            assert_eq!(chunk.doc_id, doc);
            chunks.insert(id, version_tag(&chunk.metadata));
        }
        state.insert(doc, chunks);
    }
    state
}

/// The state of every namespace as one search (one point-in-time view) sees it.
pub fn observe_search(index: &dyn Index, writers: usize) -> Vec<State> {
    let hits = index.search(&vector(7), &SearchOptions::k(1_000_000)).unwrap();
    let mut states = vec![State::new(); writers];
    for hit in hits {
        let writer: usize = hit.doc_id[1..hit.doc_id.find('-').unwrap()].parse().unwrap();
        let previous = states[writer]
            .entry(hit.doc_id.clone())
            .or_default()
            .insert(hit.chunk_id.clone(), version_tag(&hit.metadata));
        assert!(previous.is_none(), "chunk {} returned twice", hit.chunk_id);
    }
    states
}

/// Runs `script` on `index`, publishing in `acked` how many operations have returned.
pub fn run_script(index: &dyn Index, script: &Script, acked: &AtomicUsize) {
    for i in 0..script.ops.len() {
        script.run(index, i);
        acked.store(i + 1, Ordering::SeqCst);
    }
}

/// Opens the snapshot in `dir` and checks, for each writer, that it holds the state after a
/// prefix of that writer's script no shorter than `acked_before[w]` (every operation
/// acknowledged before the persist started) and no longer than `acked_after[w]`.
pub fn check_snapshot<I: Index>(dir: &Path, scripts: &[Script], acked_before: &[usize], acked_after: &[usize]) -> I {
    let options = OpenOptions::new().config(exact_config()).strict(true);
    let (reopened, report) = I::open_with_options(dir, &options).expect("snapshot opens");
    assert!(report.is_clean(), "{report:?}");
    for (w, script) in scripts.iter().enumerate() {
        let observed = observe_maps(&reopened, w);
        if let Err(e) = script.find_prefix(&observed, acked_before[w], acked_after[w]) {
            panic!("writer {w}: {e}");
        }
        let searched = &observe_search(&reopened, scripts.len())[w];
        assert_eq!(searched, &observed, "writer {w}: search and maps disagree after open");
    }
    reopened
}

/// A small tmpfs mounted on a fresh directory, unmounted on drop: a real full disk. Needs the
/// right to mount (root with CAP_SYS_ADMIN, as in CI here); `None` (said on stderr) elsewhere.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Gives it another size, keeping what it holds.
    pub fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.path()).status();
    }
}

/// Starts this test binary again as a child process running only the ignored test `test` (the
/// crash tests' real process to kill), with `env`, its stdout piped back.
pub fn spawn_test_child(test: &str, env: &[(&str, &std::ffi::OsStr)]) -> std::process::Child {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--ignored", "--nocapture", "--test-threads", "1"])
        .env("RUST_BACKTRACE", "0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    command.spawn().unwrap()
}
