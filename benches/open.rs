//! Open, cold and warm, and the first query after it, against a plain cold read of the same
//! files.
//!
//! `cargo bench --bench open` (200 000 rows of 384 dimensions, about 330 MB); `-- --quick` for
//! 20 000 rows. For each segment kind (exact, FAISS "Flat"): persist, then repeatedly evict the
//! directory's files from the page cache (`posix_fadvise(DONTNEED)`, no root needed), open,
//! time the first and second query; then the same warm. The reference is `cat`-like: reading
//! every file of the directory once, cold.
//!
//! Open checks every file's checksum, which reads it sequentially once: a cold open should cost
//! about what a cold read of the files costs, and the first query should then find its data in
//! memory (FAISS's own mmap of a 1.5 GB flat index, with random-access advice, took 22 s for
//! its first cold query here, against 2.1 s for a plain read).

mod common;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use vecindex::{Chunk, Index, IndexConfig, OpenOptions, SearchOptions, SegmentIndex, VectorIndex};

const DIM: usize = 384;

fn vector(seed: u64) -> Vec<f32> {
    common::vector(seed, DIM)
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect()
}

/// Drops the directory's files from the page cache.
fn evict(dir: &Path) {
    for path in files(dir) {
        let file = std::fs::File::open(&path).unwrap();
        file.sync_all().unwrap();
        // SAFETY: a valid open file descriptor; the call only gives advice about its pages.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0, "posix_fadvise");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rows: usize = if quick { 20_000 } else { 200_000 };
    let runs = if quick { 3 } else { 5 };
    let root = tempfile::Builder::new().prefix("vecindex-open-bench").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut kinds = vec![("exact", SegmentIndex::exact())];
    if cfg!(feature = "faiss") {
        kinds.push(("Flat", SegmentIndex { min_rows: 0, ..SegmentIndex::faiss("Flat") }));
    }
    println!("open bench: {rows} rows x {DIM} dims, {runs} runs each (median)");
    for (name, segments) in kinds {
        let config = IndexConfig::new(DIM).segment_index(segments).head_capacity(16_384).background(false);
        let index = VectorIndex::new(config.clone()).unwrap();
        for chunk in 0..rows / 1000 {
            let chunks = (0..1000)
                .map(|i| {
                    let n = chunk * 1000 + i;
                    Chunk::new(format!("c{n}"), format!("d{}", n / 8), vector(n as u64)).with_text(format!("chunk {n}"))
                })
                .collect();
            index.add_chunks(chunks).unwrap();
        }
        index.maintain();
        let dir = root.path().join(name);
        let report = index.persist(&dir).unwrap();
        drop(index);
        let mb = report.bytes_total as f64 / 1e6;
        let query = vector(u64::MAX / 3);
        let options = OpenOptions::new().config(config.clone());

        let mut cold_read = Vec::new();
        let (mut cold_open, mut cold_first, mut cold_second) = (Vec::new(), Vec::new(), Vec::new());
        let (mut warm_open, mut warm_first) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            evict(&dir);
            let started = Instant::now();
            let bytes: usize = files(&dir).iter().map(|p| std::fs::read(p).unwrap().len()).sum();
            cold_read.push(ms(started.elapsed()));
            assert_eq!(
                bytes as u64,
                report.bytes_total + std::fs::metadata(dir.join("MANIFEST.prev")).map_or(0, |m| m.len())
            );

            evict(&dir);
            let started = Instant::now();
            let (opened, _) = VectorIndex::open_with_options(&dir, &options).unwrap();
            cold_open.push(ms(started.elapsed()));
            let started = Instant::now();
            let hits = opened.search(&query, &SearchOptions::k(10)).unwrap();
            cold_first.push(ms(started.elapsed()));
            assert_eq!(hits.len(), 10);
            let started = Instant::now();
            opened.search(&query, &SearchOptions::k(10)).unwrap();
            cold_second.push(ms(started.elapsed()));
            drop(opened);

            let started = Instant::now();
            let (opened, _) = VectorIndex::open_with_options(&dir, &options).unwrap();
            warm_open.push(ms(started.elapsed()));
            let started = Instant::now();
            opened.search(&query, &SearchOptions::k(10)).unwrap();
            warm_first.push(ms(started.elapsed()));
        }
        let read = median(cold_read);
        println!("{name} segments: {mb:.1} MB on disk in {} files", files(&dir).len());
        println!("  cold read of every file: {read:9.1} ms ({:.0} MB/s)", mb / read * 1e3);
        println!(
            "  cold open:               {:9.1} ms, first query {:.1} ms, second {:.1} ms",
            median(cold_open),
            median(cold_first),
            median(cold_second)
        );
        println!("  warm open:               {:9.1} ms, first query {:.1} ms", median(warm_open), median(warm_first));
    }
}
