//! The real `vecindex` binary on a small corpus: ingest, re-ingest (skip, replace, remove),
//! query, stats, verify (and verify on a damaged index).

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn vecindex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecindex")).args(args).output().expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn corpus(root: &Path) {
    write(
        &root.join("guide/install.md"),
        "# Installing\nDownload the package and unpack the archive into your home directory.\n\
         ## Linux\nOn Linux, use the distribution package manager to install the compiler toolchain.\n",
    );
    write(
        &root.join("guide/files.rst"),
        "Reading files\n=============\n\nOpen a file with open(), read its lines, and close the file when done.\n\n\
         Writing files\n-------------\n\nWrite text to a file opened in write mode; flush before closing.\n",
    );
    write(&root.join("notes.txt"), "Threads and locks: a mutex serializes writers; contention slows them down.\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"# Networking\nSockets carry bytes between hosts; a server accepts connections on a port.\n")
        .unwrap();
    write(&root.join("net.md.gz"), "");
    std::fs::write(root.join("net.md.gz"), gz.finish().unwrap()).unwrap();
    write(&root.join("image.png"), "not a document");
}

#[test]
fn ingest_query_reingest_stats_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    corpus(&root);
    let (r, i) = (root.to_str().unwrap(), index.to_str().unwrap());

    let out = vecindex(&["ingest", r, "--index", i, "--quiet"]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("ingested 4 files") && stdout(&out).contains("4 added"), "{}", stdout(&out));

    let out = vecindex(&["query", i, "how to open and read a file", "-k", "2"]);
    assert!(out.status.success(), "{out:?}");
    let first = stdout(&out).lines().next().unwrap_or_default().to_owned();
    assert!(first.contains("guide/files.rst") && first.contains("[Reading files]"), "{}", stdout(&out));
    let out = vecindex(&["query", i, "server sockets and ports", "-k", "1"]);
    assert!(stdout(&out).contains("net.md.gz"), "gzipped documents are read: {}", stdout(&out));

    // Unchanged files are skipped; a changed one replaced; a vanished one removed.
    let out = vecindex(&["ingest", r, "--index", i, "--quiet"]);
    assert!(stdout(&out).contains("0 added, 0 replaced, 4 unchanged, 0 removed"), "{}", stdout(&out));
    write(&root.join("notes.txt"), "Garbage collection frees unreachable objects in cycles.\n");
    std::fs::remove_file(root.join("guide/install.md")).unwrap();
    let out = vecindex(&["ingest", r, "--index", i, "--quiet"]);
    assert!(stdout(&out).contains("0 added, 1 replaced, 2 unchanged, 1 removed"), "{}", stdout(&out));
    let out = vecindex(&["query", i, "garbage collection of cycles", "-k", "5"]);
    let hits = stdout(&out);
    assert!(hits.lines().next().unwrap_or_default().contains("notes.txt") && hits.contains("Garbage"), "{hits}");
    assert!(!hits.contains("mutex") && !hits.contains("install.md"), "old text and removed files are gone: {hits}");

    let out = vecindex(&["stats", i]);
    assert!(out.status.success() && stdout(&out).contains("3 documents"), "{}", stdout(&out));
    let out = vecindex(&["verify", i]);
    assert!(out.status.success() && stdout(&out).trim_end().ends_with("OK"), "{}", stdout(&out));

    // A flipped byte in a rows file: verify says so, exits 2, and moves nothing.
    let rows = support::damage_a_rows_file(&index);
    let out = vecindex(&["verify", i]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("DAMAGED") && stdout(&out).contains("NOT OK"), "{}", stdout(&out));
    assert!(rows.exists() && !index.join("quarantine").exists(), "verify changes nothing");
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = vecindex(&["query", missing.to_str().unwrap(), "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error:"));
    let out = vecindex(&["ingest", missing.to_str().unwrap(), "--index", dir.path().join("i").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = vecindex(&["query", dir.path().to_str().unwrap(), "x", "--embedder", "nonsense"]);
    assert_eq!(out.status.code(), Some(1));
    let out = vecindex(&["verify", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a missing path is no index at all: {out:?}");
}

/// A directory of one Markdown file, and where its index goes.
fn small_corpus(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let docs = dir.join("docs");
    write(&docs.join("a.md"), "# A\nsome text about mutexes and locks\n");
    (docs, dir.join("index"))
}

#[test]
fn chunk_sizes_that_make_no_sense_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, index) = small_corpus(dir.path());
    let (d, i) = (docs.to_str().unwrap(), index.to_str().unwrap());
    for (args, message) in [
        (&["--max-chars", "0"][..], "--max-chars 0 is too small"),
        (&["--max-chars", "63"][..], "at least 64"),
        (&["--max-chars", "200", "--overlap", "150"][..], "more than half of --max-chars"),
        (&["--overlap", "601"][..], "--overlap 601 is more than half of --max-chars 1200"),
        (&["--max-tokens", "128"][..], "--max-tokens is for embedders with a window"),
    ] {
        let out = vecindex(&[&["ingest", d, "--index", i, "--quiet"][..], args].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(message), "{args:?}: {out:?}");
        assert!(!index.exists(), "nothing created");
    }
    let out = vecindex(&["ingest", d, "--index", i, "--quiet", "--max-chars", "64", "--overlap", "32"]);
    assert!(out.status.success(), "{out:?}");
}

/// What a first ingest killed before its first commit leaves: verify says so (exit 3, not
/// "damaged"), and ingest and serve start on it as on an empty directory.
#[test]
fn a_directory_no_persist_ever_committed_to_is_not_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, index) = small_corpus(dir.path());
    let (d, i) = (docs.to_str().unwrap(), index.to_str().unwrap());
    let leftovers = |path: &Path| {
        std::fs::create_dir_all(path).unwrap();
        std::fs::write(path.join("LOCK"), b"").unwrap();
        std::fs::write(path.join(".MANIFEST.tmp-77"), b"half").unwrap();
    };
    leftovers(&index);
    let out = vecindex(&["verify", i]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stdout(&out).contains("NO SNAPSHOT") && !stdout(&out).contains("DAMAGED"), "{}", stdout(&out));
    let out = vecindex(&["ingest", d, "--index", i, "--quiet"]);
    assert!(out.status.success() && stdout(&out).contains("1 added"), "{out:?}");
    assert!(vecindex(&["verify", i]).status.success());

    let served = dir.path().join("served");
    leftovers(&served);
    let server = support::Server::start(&served, &[]);
    let (code, printed) = server.terminate();
    assert_eq!(code, Some(0), "{printed:?}");
    assert!(vecindex(&["verify", served.to_str().unwrap()]).status.success(), "its final persist committed");
}

#[test]
fn queries_with_nothing_to_search_for_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, index) = small_corpus(dir.path());
    let (d, i) = (docs.to_str().unwrap(), index.to_str().unwrap());
    assert!(vecindex(&["ingest", d, "--index", i, "--quiet"]).status.success());
    for text in ["", "   ", "the", "how do I"] {
        let out = vecindex(&["query", i, text]);
        assert_eq!(out.status.code(), Some(1), "{text:?}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no word to search for"), "{out:?}");
    }
    assert!(stdout(&vecindex(&["query", i, "mutexes"])).contains("a.md"));
}

/// A writer that died before a persist leaves its writes in the log: verify counts them; a
/// flipped byte in the log is damage (exit 2), named with the file and offset, moving nothing.
#[test]
fn verify_reports_the_write_ahead_log_and_its_damage() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let writer = vecindex::VectorIndex::create(&index, vecindex::IndexConfig::new(4)).unwrap();
    for i in 0..6 {
        let chunk = vecindex::Chunk::new(format!("c{i}"), format!("d{i}"), vec![1.0, i as f32, 0.5, 0.25]);
        writer.add_chunk(chunk).unwrap();
    }
    drop(writer); // no persist: the six writes are in the log only
    let i = index.to_str().unwrap();
    let out = vecindex(&["verify", i]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("6 operations after the snapshot"), "{}", stdout(&out));

    let log = std::fs::read_dir(index.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::metadata(p).unwrap().len() > 48)
        .expect("a log segment with records");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() - 10; // in the last record
    bytes[at] ^= 0x01;
    std::fs::write(&log, &bytes).unwrap();
    let out = vecindex(&["verify", i]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let printed = stdout(&out);
    assert!(printed.contains("DAMAGED") && printed.contains(".log at byte") && printed.contains("NOT OK"), "{printed}");
    assert!(log.exists() && !index.join("quarantine").exists(), "verify changes nothing");
}
