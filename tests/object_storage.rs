//! Snapshots on object storage, against a real S3-compatible server: moto's `moto_server`
//! (scripts/s3-venv installs it), started here on 127.0.0.1. Persist and open, an incremental
//! persist, two writers racing for one generation, collection, a replica following ten
//! generations (and refusing one that lacks a file), listing the prefix once per persist, open
//! and poll, and the typed errors of bad input. Skipped, saying so, only when there is no python3; a venv that cannot be made is a
//! failure.

#![cfg(feature = "object-store")]
#![allow(clippy::disallowed_types)] // the test drives the index from std threads

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vecindex::{
    Chunk, Error, IndexConfig, ObjectStorage, ObjectStorageOptions, OpenOptions, Replica, ReplicaOptions,
    SearchOptions, VectorIndex,
};

#[path = "../cli/tests/support/s3.rs"]
mod s3;

use s3::{BUCKET, S3};

fn start_s3() -> Option<S3> {
    S3::start(Path::new(env!("CARGO_MANIFEST_DIR")))
}

fn options(s3: &S3, cache: &Path) -> ObjectStorageOptions {
    s3.settings().into_iter().fold(ObjectStorageOptions::new(cache), |options, (k, v)| options.setting(k, v))
}

fn storage(s3: &S3, prefix: &str, cache: &Path) -> ObjectStorage {
    ObjectStorage::open(&format!("s3://{BUCKET}/{prefix}"), options(s3, cache)).expect("the storage opens")
}

fn config() -> IndexConfig {
    let mut config = IndexConfig::new(8);
    config.head_capacity = 64; // several sealed segments, so that a persist has files to reuse
    config
}

fn vector(i: usize) -> Vec<f32> {
    (0..8).map(|d| ((i * 7 + d * 3) % 11) as f32 + 0.5).collect()
}

fn add_docs(index: &VectorIndex, docs: std::ops::Range<usize>) {
    for d in docs {
        let chunks = (0..5).map(|c| Chunk::new(format!("d{d}#{c}"), format!("d{d}"), vector(d * 5 + c))).collect();
        index.add_document(&format!("d{d}"), chunks).unwrap();
    }
}

fn answers(index: &VectorIndex) -> Vec<Vec<String>> {
    (0..20)
        .map(|q| {
            let hits = index.search(&vector(q * 13), &SearchOptions::k(5)).unwrap();
            hits.into_iter().map(|h| h.chunk_id).collect()
        })
        .collect()
}

#[test]
fn persist_open_and_an_incremental_persist() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    let writer_storage = storage(&s3, "roundtrip", &caches.path().join("writer"));
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..60);
    index.maintain();
    let first = index.persist_to(&writer_storage).unwrap();
    assert_eq!((first.generation, first.rows), (1, 300));

    let reader_storage = storage(&s3, "roundtrip", &caches.path().join("reader"));
    let (opened, report) = VectorIndex::open_from(&reader_storage, &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((opened.len(), opened.document_ids().len()), (300, 60));
    assert_eq!(answers(&opened), answers(&index), "the same answers from the bucket");

    add_docs(&index, 60..62);
    let second = index.persist_to(&writer_storage).unwrap();
    assert_eq!(second.generation, 2);
    assert!(second.files_reused > 0, "the sealed segments are not uploaded again: {second:?}");
    assert!(second.bytes_written < first.bytes_written, "{second:?} after {first:?}");
    let again = storage(&s3, "roundtrip", &caches.path().join("second-reader"));
    let (opened, _) = VectorIndex::open_from(&again, &OpenOptions::new().strict(true)).unwrap();
    assert_eq!(opened.len(), 310);
}

#[test]
fn a_cached_file_damaged_on_disk_is_caught_by_the_next_process() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..30);
    index.persist_to(&storage(&s3, "damaged", &caches.path().join("writer"))).unwrap();
    let cache = caches.path().join("reader");
    let strict = OpenOptions::new().strict(true);
    VectorIndex::open_from(&storage(&s3, "damaged", &cache), &strict).unwrap();
    let rows = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "rows"))
        .expect("a rows file is cached");
    let mut bytes = std::fs::read(&rows).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&rows, bytes).unwrap();
    // A new storage, as a restarted process has: the cached bytes are checked again.
    let open = VectorIndex::open_from(&storage(&s3, "damaged", &cache), &strict).err().expect("refused");
    assert!(matches!(&open, Error::Corrupt { reason, .. } if reason.contains("checksum")), "{open}");
}

#[test]
fn of_two_writers_racing_for_one_generation_exactly_one_commits() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    let origin = storage(&s3, "race", &caches.path().join("origin"));
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..10);
    index.persist_to(&origin).unwrap();

    for round in 0..5 {
        // Two writers open the same generation, each adds its own document, both persist at once.
        let writers: Vec<(ObjectStorage, VectorIndex)> = (0..2)
            .map(|w| {
                let storage = storage(&s3, "race", &caches.path().join(format!("w{round}-{w}")));
                let (index, _) = VectorIndex::open_from(&storage, &OpenOptions::new()).unwrap();
                add_docs(&index, 100 + round * 2 + w..101 + round * 2 + w);
                (storage, index)
            })
            .collect();
        let writers = Arc::new(writers);
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let outcomes: Vec<vecindex::Result<vecindex::PersistReport>> = (0..2)
            .map(|w| {
                let (writers, barrier) = (writers.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let (storage, index) = &writers[w];
                    index.persist_to(storage)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let committed: Vec<usize> = (0..2).filter(|&w| outcomes[w].is_ok()).collect();
        assert_eq!(committed.len(), 1, "round {round}: {outcomes:?}");
        let loser = 1 - committed[0];
        assert!(matches!(outcomes[loser], Err(Error::Conflict { .. })), "round {round}: {outcomes:?}");
        // The loser's index is intact and usable; persisting again is refused, not a lost update.
        let (loser_storage, loser_index) = &writers[loser];
        assert_eq!(loser_index.len(), (11 + round) * 5, "what it opened, and its own document");
        assert!(!loser_index.search(&vector(1), &SearchOptions::k(3)).unwrap().is_empty());
        assert!(matches!(loser_index.persist_to(loser_storage), Err(Error::Conflict { .. })));
        // The bucket holds the winner's snapshot, whole.
        let check = storage(&s3, "race", &caches.path().join(format!("check{round}")));
        let (opened, report) = VectorIndex::open_from(&check, &OpenOptions::new().strict(true)).unwrap();
        assert!(report.is_clean());
        let winner_doc = format!("d{}", 100 + round * 2 + committed[0]);
        let loser_doc = format!("d{}", 100 + round * 2 + loser);
        assert_eq!(opened.chunk_ids(&winner_doc).len(), 5, "round {round}");
        assert!(opened.chunk_ids(&loser_doc).is_empty(), "round {round}: the loser committed nothing");
        assert_eq!(report.generation, round as u64 + 2);
    }
}

#[test]
fn collection_keeps_every_file_the_kept_manifests_name() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    for keep in [2, 3] {
        let prefix = format!("collect-{keep}");
        let mut options = options(&s3, &caches.path().join(format!("writer-{keep}")));
        (options.collect_after, options.keep_generations) = (Duration::ZERO, keep);
        let storage = ObjectStorage::open(&format!("s3://{BUCKET}/{prefix}"), options).unwrap();
        let index = VectorIndex::new(config()).unwrap();
        for round in 0..6 {
            add_docs(&index, round * 20..round * 20 + 20);
            for d in 0..round * 5 {
                let _ = index.remove_document(&format!("d{d}"));
            }
            index.maintain();
            index.persist_to(&storage).unwrap();
        }
        // Only the `keep` newest manifests are left.
        let manifests: Vec<String> = vecindex::testing::Directory::list(&storage)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("MANIFEST"))
            .collect();
        let kept: Vec<String> = (7 - keep as u64..=6).map(|g| format!("MANIFEST.{g:020}")).collect();
        assert_eq!(manifests, kept);
        // Each opens whole from a fresh cache: the newest, then each older one once the
        // manifests after it are gone.
        for (n, generation) in (7 - keep as u64..=6).rev().enumerate() {
            let cache = caches.path().join(format!("reader-{keep}-{generation}"));
            let reader = self::storage(&s3, &prefix, &cache);
            let (opened, report) = VectorIndex::open_from(&reader, &OpenOptions::new().strict(true)).unwrap();
            assert!(report.is_clean() && report.generation == generation, "{report:?}");
            if n == 0 {
                assert_eq!(answers(&opened), answers(&index));
            }
            vecindex::testing::Directory::remove(&storage, &format!("MANIFEST.{generation:020}")).unwrap();
        }
    }
}

#[test]
fn bad_input_gets_typed_errors_that_say_what_to_fix() {
    let caches = tempfile::tempdir().unwrap();
    let unknown = ObjectStorage::open("ftp://host/prefix", ObjectStorageOptions::new(caches.path())).unwrap_err();
    assert!(matches!(&unknown, Error::Storage { reason, .. } if reason.contains("unknown scheme")), "{unknown}");
    let not_a_url = ObjectStorage::open("bucket/prefix", ObjectStorageOptions::new(caches.path())).unwrap_err();
    assert!(matches!(&not_a_url, Error::Storage { reason, .. } if reason.contains("s3://")), "{not_a_url}");
    // Each store's message names its own settings.
    let no_account = ObjectStorage::open("az://container/prefix", ObjectStorageOptions::new(caches.path()));
    let no_account = no_account.unwrap_err();
    let names = |e: &Error, setting: &str| matches!(e, Error::Storage { reason, .. } if reason.contains(setting));
    assert!(names(&no_account, "azure_storage_account_name"), "{no_account}");
    let no_key_file = ObjectStorageOptions::new(caches.path()).setting("google_service_account", "/no/such/key.json");
    let no_key_file = ObjectStorage::open("gs://bucket/prefix", no_key_file).unwrap_err();
    assert!(names(&no_key_file, "google_service_account") && !names(&no_key_file, "aws_"), "{no_key_file}");

    let Some(s3) = start_s3() else { return };
    let missing = ObjectStorage::open("s3://no-such-bucket/prefix", options(&s3, caches.path())).unwrap_err();
    assert!(matches!(&missing, Error::Storage { reason, .. } if reason.contains("bucket does not exist")), "{missing}");

    // No credentials at all: the store would ask the instance metadata service, which is not
    // here (a closed port stands in for it).
    let no_credentials = ObjectStorageOptions::new(caches.path().join("anonymous"))
        .setting("aws_endpoint", &s3.endpoint)
        .setting("aws_allow_http", "true")
        .setting("aws_region", "us-east-1")
        .setting("aws_metadata_endpoint", "http://127.0.0.1:9");
    let refused = ObjectStorage::open(&format!("s3://{BUCKET}/prefix"), no_credentials).unwrap_err();
    assert!(matches!(&refused, Error::Storage { reason, .. } if reason.contains("credentials")), "{refused}");

    // No server at the endpoint (a closed port): said so, after the retries.
    let nobody = ObjectStorageOptions::new(caches.path().join("nobody"))
        .setting("aws_endpoint", "http://127.0.0.1:9")
        .setting("aws_allow_http", "true")
        .setting("aws_region", "us-east-1")
        .setting("aws_access_key_id", "test")
        .setting("aws_secret_access_key", "test");
    let unreachable = ObjectStorage::open(&format!("s3://{BUCKET}/prefix"), nobody).unwrap_err();
    assert!(names(&unreachable, "cannot be reached; check aws_endpoint"), "{unreachable}");

    // At least two generations kept.
    let mut keep_one = options(&s3, &caches.path().join("keep-one"));
    keep_one.keep_generations = 1;
    let refused = ObjectStorage::open(&format!("s3://{BUCKET}/prefix"), keep_one).unwrap_err();
    assert!(matches!(&refused, Error::Storage { reason, .. } if reason.contains("at least 2")), "{refused}");

    // A prefix holding something that is not an index.
    let storage = storage(&s3, "stranger", &caches.path().join("stranger"));
    vecindex::testing::Directory::write(&storage, "notes.txt", b"not an index").unwrap();
    let open = VectorIndex::open_from(&storage, &OpenOptions::new()).err().expect("refused");
    assert!(matches!(open, Error::NotAnIndex { .. }), "{open}");
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..2);
    let persist = index.persist_to(&storage).unwrap_err();
    assert!(matches!(persist, Error::NotAnIndex { .. }), "{persist}");
    // An empty prefix: nothing to open yet.
    let empty = self::storage(&s3, "empty", &caches.path().join("empty"));
    let open = VectorIndex::open_from(&empty, &OpenOptions::new()).err().expect("refused");
    assert!(matches!(open, Error::NoSnapshot { .. }), "{open}");

    // Credentials the server does not know (last: from here on it knows none).
    s3.refuse_every_credential();
    let wrong = ObjectStorage::open(&format!("s3://{BUCKET}/prefix"), options(&s3, &caches.path().join("wrong")));
    let wrong = wrong.unwrap_err();
    assert!(matches!(&wrong, Error::Storage { reason, .. } if reason.contains("credentials are refused")), "{wrong}");
}

#[test]
fn a_replica_follows_ten_generations_while_the_writer_keeps_adding() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    let writer_storage = storage(&s3, "follow", &caches.path().join("writer"));
    let writer = Arc::new(VectorIndex::new(config()).unwrap());
    add_docs(&writer, 0..5);
    writer.persist_to(&writer_storage).unwrap();

    let options = ReplicaOptions { poll_interval: Duration::from_millis(20), ..ReplicaOptions::default() };
    let replica = Replica::open(storage(&s3, "follow", &caches.path().join("replica")), options).unwrap();
    assert_eq!((replica.status().generation, replica.index().len()), (1, 25));

    // The writer adds a document at a time while persisting ten more generations; meanwhile a
    // searcher keeps searching the replica, which must never go back in time or fail a search.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replica = Arc::new(replica);
    let searcher = {
        let (replica, stop) = (replica.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut searches, mut last_len) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let index = replica.index();
                let len = index.len();
                assert!(len >= last_len, "a replica went back from {last_len} to {len} chunks");
                assert_eq!(index.search(&vector(3), &SearchOptions::k(5)).unwrap().len(), 5);
                (searches, last_len) = (searches + 1, len);
            }
            searches
        })
    };
    let adder = {
        let (writer, stop) = (writer.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut d = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                add_docs(&writer, d..d + 1);
                d += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    for generation in 2..=11 {
        std::thread::sleep(Duration::from_millis(30));
        let report = writer.persist_to(&writer_storage).unwrap();
        assert_eq!(report.generation, generation);
        let deadline = Instant::now() + Duration::from_secs(20);
        while replica.status().generation < generation {
            assert!(
                Instant::now() < deadline,
                "the replica did not reach generation {generation}: {:?}",
                replica.status()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // It serves exactly what that generation holds (or a later one).
        let served = replica.index();
        assert!(served.len() >= report.rows, "generation {generation}: {} < {}", served.len(), report.rows);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    adder.join().unwrap();
    let searches = searcher.join().unwrap();
    assert!(searches > 10, "the searcher ran throughout: {searches}");
    let status = replica.status();
    assert!(status.caught_up() && status.last_error.is_none(), "{status:?}");
    assert_eq!(status.behind_for, Duration::ZERO);
    // The writer's final state, persisted once more, reaches the replica whole.
    let last = writer.persist_to(&writer_storage).unwrap();
    replica.refresh().unwrap(); // or the poller got there first
    assert_eq!(replica.status().generation, last.generation);
    assert_eq!(replica.index().len(), last.rows);
    // The same documents, chunk for chunk. (Not the same answers: both build their graphs in
    // the background, each at its own pace, and a graph over these repeating vectors finds
    // other neighbours than a scan.)
    let served = replica.index();
    for doc in (0..5).chain(1000..).map(|d| format!("d{d}")) {
        let chunks = writer.chunk_ids(&doc);
        assert_eq!(served.chunk_ids(&doc), chunks, "{doc}");
        if chunks.is_empty() {
            break;
        }
    }
    // The cache holds the served generation's files only, not every generation's.
    let cached = |dir: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    };
    let replica_cache = cached(&caches.path().join("replica"));
    let manifest = format!("MANIFEST.{:020}", last.generation);
    assert!(replica_cache.contains(&manifest), "{replica_cache:?}");
    assert!(!replica_cache.iter().any(|name| name.starts_with("MANIFEST.") && *name != manifest), "{replica_cache:?}");
    let mut writer_cache = cached(&caches.path().join("writer"));
    writer_cache.insert(manifest); // committed, not cached
    assert!(replica_cache.is_subset(&writer_cache), "{replica_cache:?} holds files the writer no longer has");
    assert!(
        replica_cache.len() < writer_cache.len(),
        "{} files, the writer's cache {}",
        replica_cache.len(),
        writer_cache.len()
    );
}

#[test]
fn a_replica_stays_on_a_whole_generation_when_a_newer_one_lacks_a_file() {
    let Some(s3) = start_s3() else { return };
    let caches = tempfile::tempdir().unwrap();
    let writer_storage = storage(&s3, "lacking", &caches.path().join("writer"));
    let writer = VectorIndex::new(config()).unwrap();
    add_docs(&writer, 0..5);
    writer.persist_to(&writer_storage).unwrap();
    let options = ReplicaOptions { poll_interval: Duration::from_secs(3600), ..ReplicaOptions::default() };
    let replica = Replica::open(storage(&s3, "lacking", &caches.path().join("replica")), options).unwrap();
    let names = |storage: &ObjectStorage| -> std::collections::BTreeSet<String> {
        let listed = vecindex::testing::Directory::list(storage).unwrap();
        listed.into_iter().map(|(name, _)| name).filter(|name| name.ends_with(".rows")).collect()
    };
    let before = names(&writer_storage);

    // Generation 2 adds segments; one of its rows files goes missing from the bucket.
    add_docs(&writer, 5..40);
    writer.persist_to(&writer_storage).unwrap();
    let added: Vec<String> = names(&writer_storage).difference(&before).cloned().collect();
    assert!(!added.is_empty(), "generation 2 wrote rows files");
    vecindex::testing::Directory::remove(&writer_storage, &added[0]).unwrap();

    // The replica does not serve a generation that lost documents: it stays on generation 1,
    // whole, and says why.
    let refused = replica.refresh().unwrap_err();
    assert!(refused.to_string().contains(&added[0]), "{refused}");
    let status = replica.status();
    assert_eq!((status.generation, status.newest), (1, 2), "{status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains(&added[0])), "{status:?}");
    assert_eq!(replica.index().len(), 25);

    // The writer's next persist uploads the missing file again, and the replica catches up whole.
    let last = writer.persist_to(&writer_storage).unwrap();
    assert!(replica.refresh().unwrap());
    assert_eq!(replica.status().generation, last.generation);
    assert_eq!(replica.index().len(), 200);
    assert!(replica.status().last_error.is_none());
}

/// A proxy in front of the S3 server that answers every `nth` request itself with a 503 (a
/// transient error, as a busy S3 gives), and forwards the others one connection per request.
/// It keeps every request line it was sent.
struct FlakyProxy {
    endpoint: String,
    failed: Arc<std::sync::atomic::AtomicUsize>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FlakyProxy {
    fn start(upstream: &str, nth: usize) -> FlakyProxy {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = failed.clone();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(mut client) = client else { continue };
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let (mut head, mut length) = (String::new(), 0usize);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(value) = lower.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    if !lower.starts_with("connection:") {
                        head.push_str(&line);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                seen.lock().unwrap().push(head.lines().next().unwrap_or_default().to_owned());
                if (n + 1) % nth == 0 {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = client.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let Ok(mut server) = std::net::TcpStream::connect(&upstream) else { continue };
                let _ = server.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes());
                let _ = server.write_all(&body);
                let mut answer = Vec::new();
                let _ = server.read_to_end(&mut answer);
                let _ = client.write_all(&answer);
            }
        });
        FlakyProxy { endpoint, failed, requests }
    }

    /// How many listings of the prefix it forwarded so far.
    fn listings(&self) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.starts_with("GET ") && line.contains("list-type=2"))
            .count()
    }
}

#[test]
fn a_persist_an_open_and_a_replica_poll_each_list_the_prefix_once() {
    let Some(s3) = start_s3() else { return };
    let proxy = FlakyProxy::start(&s3.endpoint, usize::MAX);
    let caches = tempfile::tempdir().unwrap();
    let through_proxy = |cache: &str| {
        let options = options(&s3, &caches.path().join(cache)).setting("aws_endpoint", &proxy.endpoint);
        ObjectStorage::open(&format!("s3://{BUCKET}/listed"), options).unwrap()
    };
    let listed_by = |work: &mut dyn FnMut()| {
        let before = proxy.listings();
        work();
        proxy.listings() - before
    };
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..30);
    let writer = through_proxy("writer");
    assert_eq!(listed_by(&mut || drop(index.persist_to(&writer).unwrap())), 1, "{:?}", proxy.requests);
    add_docs(&index, 30..35);
    assert_eq!(listed_by(&mut || drop(index.persist_to(&writer).unwrap())), 1, "the incremental persist");
    // A writer that keeps no copy of its uploads (and a cache that starts empty) reads back
    // manifests only: every file it reuses is taken as the previous manifest records it.
    let pusher = {
        let mut options = options(&s3, &caches.path().join("pusher")).setting("aws_endpoint", &proxy.endpoint);
        options.cache_writes = false;
        ObjectStorage::open(&format!("s3://{BUCKET}/listed"), options).unwrap()
    };
    add_docs(&index, 35..36);
    let before = proxy.requests.lock().unwrap().len();
    let pushed = index.persist_to(&pusher).unwrap();
    assert!(pushed.files_reused > 3, "{pushed:?}");
    let gets: Vec<String> = proxy.requests.lock().unwrap()[before..]
        .iter()
        .filter(|line| line.starts_with("GET ") && !line.contains("list-type=2"))
        .cloned()
        .collect();
    assert!(gets.iter().all(|line| line.contains("/MANIFEST.")), "{gets:?}");
    assert!(
        !std::fs::read_dir(caches.path().join("pusher"))
            .unwrap()
            .any(|e| { !e.unwrap().file_name().to_string_lossy().starts_with("MANIFEST.") })
    );

    let reader = through_proxy("reader");
    assert_eq!(listed_by(&mut || drop(VectorIndex::open_from(&reader, &OpenOptions::new()).unwrap())), 1);
    let options = ReplicaOptions { poll_interval: Duration::from_secs(3600), ..ReplicaOptions::default() };
    let replica = Replica::open(through_proxy("replica"), options).unwrap();
    add_docs(&index, 36..40);
    index.persist_to(&pusher).unwrap(); // the writer's storage has not seen the pusher's commit
    assert_eq!(listed_by(&mut || assert!(replica.refresh().unwrap())), 1, "a poll that catches up");
    assert_eq!(replica.index().len(), index.len());
}

#[test]
fn transient_server_errors_are_retried() {
    let Some(s3) = start_s3() else { return };
    let proxy = FlakyProxy::start(&s3.endpoint, 3);
    let caches = tempfile::tempdir().unwrap();
    let flaky = |cache: &str| {
        let options = options(&s3, &caches.path().join(cache)).setting("aws_endpoint", &proxy.endpoint);
        ObjectStorage::open(&format!("s3://{BUCKET}/flaky"), options).expect("opens through the retries")
    };
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..60);
    index.maintain();
    let writer = flaky("writer");
    index.persist_to(&writer).unwrap();
    add_docs(&index, 60..70);
    assert_eq!(index.persist_to(&writer).unwrap().generation, 2);
    let (opened, report) = VectorIndex::open_from(&flaky("reader"), &OpenOptions::new().strict(true)).unwrap();
    assert!(report.is_clean());
    assert_eq!(answers(&opened), answers(&index));
    let failed = proxy.failed.load(std::sync::atomic::Ordering::Relaxed);
    assert!(failed >= 3, "the proxy answered {failed} requests with 503");
}

#[test]
fn a_file_url_works_like_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/bucket/docs", dir.path().display());
    std::fs::create_dir_all(dir.path().join("bucket/docs")).unwrap();
    let writer = ObjectStorage::open(&url, ObjectStorageOptions::new(dir.path().join("cache-w"))).unwrap();
    let index = VectorIndex::new(config()).unwrap();
    add_docs(&index, 0..30);
    assert_eq!(index.persist_to(&writer).unwrap().generation, 1);
    add_docs(&index, 30..31);
    assert_eq!(index.persist_to(&writer).unwrap().generation, 2);
    let reader = ObjectStorage::open(&url, ObjectStorageOptions::new(dir.path().join("cache-r"))).unwrap();
    let (opened, report) = VectorIndex::open_from(&reader, &OpenOptions::new().strict(true)).unwrap();
    assert_eq!((report.generation, opened.len()), (2, 155));
    assert_eq!(answers(&opened), answers(&index));
}
