//! `vecindex push` and `vecindex serve --replica-of` against moto's S3 server on 127.0.0.1
//! (scripts/s3-venv): a replica serves what was pushed, refuses writes, follows new
//! generations, and stays on the last complete one when a push is killed mid-upload; the
//! next push succeeds; `serve --push-to` pushes a serving writer's writes, the last one at
//! shutdown, after the background ingest stopped; a replica started before the first push
//! waits for it. Real processes throughout.
#![cfg(feature = "object-store")]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::json;
use support::s3::{BUCKET, S3};
use support::{Server, get, metric, post_json};
use vecindex::{Chunk, IndexConfig, SegmentKind, VectorIndex};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The store's settings as the environment gives them to the tool (and a quiet log).
fn env(s3: &S3) -> Vec<(String, String)> {
    let settings = s3.settings().into_iter().map(|(k, v)| (k.to_ascii_uppercase(), v));
    settings.chain([("RUST_LOG".to_owned(), "warn".to_owned())]).collect()
}

fn vecindex(s3: &S3, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecindex")).args(args).envs(env(s3)).output().expect("runs")
}

/// An index of `docs` documents of 5 chunks each, made with the hashing embedder's dimension.
fn make_index(path: &Path, docs: std::ops::Range<usize>) {
    let index = match path.exists() {
        true => VectorIndex::open(path).unwrap(),
        false => {
            // Exact segments: a big index is quick to make (no graph to build), and big files to upload.
            let mut config = IndexConfig::new(384);
            config.segment_index.kind = SegmentKind::Exact;
            VectorIndex::create(path, config).unwrap()
        }
    };
    for d in docs {
        let chunks = (0..5)
            .map(|c| {
                let vector = (0..384).map(|i| ((d * 31 + c * 7 + i) % 97) as f32 / 97.0 + 0.01).collect();
                Chunk::new(format!("d{d}#{c}"), format!("d{d}"), vector).with_text(format!("document {d} part {c}"))
            })
            .collect();
        index.add_document(&format!("d{d}"), chunks).unwrap();
    }
    index.persist(path).unwrap();
}

fn wait_for_generation(addr: &str, generation: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = get(addr, "/readyz");
        let json = ready.json();
        if ready.status == 200 && json["replica"]["generation"] == generation {
            return json;
        }
        assert!(Instant::now() < deadline, "the replica did not reach generation {generation}: {json}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_replica_serves_what_was_pushed_and_follows_the_next_push() {
    let Some(s3) = S3::start(workspace()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (local, url) = (dir.path().join("writer"), format!("s3://{BUCKET}/follow"));
    make_index(&local, 0..20);
    let pushed = vecindex(&s3, &["push", local.to_str().unwrap(), &url, "--json"]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let report: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!((report["generation"].as_u64(), report["chunks"].as_u64()), (Some(1), Some(100)), "{report}");

    let env = env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = ["--replica-of", url.as_str(), "--poll-secs", "0.05"];
    let replica = Server::start_with(&dir.path().join("cache"), &args, std::process::Stdio::inherit(), &env);
    let addr = replica.addr.clone();
    let ready = wait_for_generation(&addr, 1);
    assert_eq!(ready["replica"]["newest"], 1);
    let hits = post_json(&addr, "/search", None, &json!({ "text": "document 3 part 1", "k": 3 }));
    assert_eq!(hits.json()["hits"].as_array().map(Vec::len), Some(3), "{hits:?}");
    let refused = post_json(&addr, "/documents", None, &json!({ "doc_id": "x", "text": "t" }));
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(refused.json()["error"].as_str().unwrap().contains("read-only replica"));

    // The writer adds and pushes again; the replica follows.
    make_index(&local, 20..30);
    let pushed = vecindex(&s3, &["push", local.to_str().unwrap(), &url]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    wait_for_generation(&addr, 2);
    assert_eq!(get(&addr, "/stats").json()["chunks"], 150);
    let metrics = get(&addr, "/metrics").body;
    assert_eq!(metric(&metrics, "vecindex_replica_generation", &[]), 2.0);
    assert_eq!(metric(&metrics, "vecindex_replica_lag_generations", &[]), 0.0);
    let (code, printed) = replica.terminate();
    assert_eq!(code, Some(0), "{printed:?}");
    assert!(!printed.iter().any(|l| l.starts_with("persisted")), "a replica persists nothing: {printed:?}");
}

#[test]
fn a_push_killed_mid_upload_leaves_replicas_on_the_last_whole_generation() {
    let Some(s3) = S3::start(workspace()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let (local, url) = (dir.path().join("writer"), format!("s3://{BUCKET}/killed"));
    make_index(&local, 0..10);
    assert!(vecindex(&s3, &["push", local.to_str().unwrap(), &url]).status.success());
    let env = env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = ["--replica-of", url.as_str(), "--poll-secs", "0.05"];
    let replica = Server::start_with(&dir.path().join("cache"), &args, std::process::Stdio::inherit(), &env);
    wait_for_generation(&replica.addr, 1);

    // Enough new rows that the upload takes a while (tens of megabytes), killed in the middle.
    make_index(&local, 10..20_010);
    let mut push = Command::new(env!("CARGO_BIN_EXE_vecindex"))
        .args(["push", local.to_str().unwrap(), &url])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    push.kill().unwrap();
    let status = push.wait().unwrap();
    assert!(status.code().is_none(), "the push was killed, not finished: the test needs a bigger upload ({status})");

    // The replica stays on generation 1 and serves it.
    std::thread::sleep(Duration::from_millis(300));
    let ready = get(&replica.addr, "/readyz").json();
    assert_eq!((ready["replica"]["generation"].as_u64(), ready["replica"]["newest"].as_u64()), (Some(1), Some(1)));
    assert_eq!(get(&replica.addr, "/stats").json()["chunks"], 50);

    // The next push commits generation 2, and the replica reaches it whole.
    let pushed = vecindex(&s3, &["push", local.to_str().unwrap(), &url]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    wait_for_generation(&replica.addr, 2);
    assert_eq!(get(&replica.addr, "/stats").json()["chunks"], 100_050);
}

#[test]
fn a_replica_started_before_the_first_push_waits_for_it() {
    let Some(s3) = S3::start(workspace()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{BUCKET}/later");
    let starting = {
        let (cache, url, env) = (dir.path().join("cache"), url.clone(), env(&s3));
        std::thread::spawn(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let args = ["--replica-of", url.as_str(), "--poll-secs", "0.1"];
            Server::start_with(&cache, &args, std::process::Stdio::inherit(), &env)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    assert!(!starting.is_finished(), "the replica neither exits nor listens before the first push");
    make_index(&dir.path().join("local"), 0..10);
    let pushed = vecindex(&s3, &["push", dir.path().join("local").to_str().unwrap(), &url]);
    assert!(pushed.status.success(), "{}", String::from_utf8_lossy(&pushed.stderr));
    let replica = starting.join().expect("the replica starts once something was pushed");
    assert_eq!(get(&replica.addr, "/stats").json()["chunks"], 50);
    assert_eq!(wait_for_generation(&replica.addr, 1)["replica"]["last_error"], serde_json::Value::Null);
}

#[test]
fn a_serving_writer_pushes_its_writes_and_a_replica_follows_them() {
    let Some(s3) = S3::start(workspace()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("s3://{BUCKET}/served");
    let env = env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = ["--push-to", url.as_str(), "--push-every-secs", "0.1"];
    let writer = Server::start_with(&dir.path().join("writer"), &args, std::process::Stdio::inherit(), &env);
    // The first push is made at start: a replica has a generation to open.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&get(&writer.addr, "/metrics").body, "vecindex_push_generation", &[]) < 1.0 {
        assert!(Instant::now() < deadline, "no first push");
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = ["--replica-of", url.as_str(), "--poll-secs", "0.05"];
    let replica = Server::start_with(&dir.path().join("cache"), &args, std::process::Stdio::inherit(), &env);

    // Writes reach the replica through the pushes, with no `vecindex push`.
    for d in 0..3 {
        let doc = json!({ "doc_id": format!("d{d}"), "text": format!("the pushed document number {d}") });
        assert_eq!(post_json(&writer.addr, "/documents", None, &doc).status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&replica.addr, "/documents/d2").status != 200 {
        assert!(Instant::now() < deadline, "the replica never saw d2: {}", get(&replica.addr, "/readyz").body);
        std::thread::sleep(Duration::from_millis(50));
    }
    let metrics = get(&writer.addr, "/metrics").body;
    assert!(metric(&metrics, "vecindex_pushes_total", &[]) >= 2.0, "{metrics}");
    assert_eq!(metric(&metrics, "vecindex_push_failures_total", &[]), 0.0);

    let (code, printed) = writer.terminate();
    assert_eq!(code, Some(0), "{printed:?}");

    // Restarted with pushes far apart: after the push at start, a write reaches the storage
    // only through the final push at shutdown.
    let args = ["--push-to", url.as_str(), "--push-every-secs", "3600"];
    let writer = Server::start_with(&dir.path().join("writer"), &args, std::process::Stdio::inherit(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&get(&writer.addr, "/metrics").body, "vecindex_pushes_total", &[]) < 1.0 {
        assert!(Instant::now() < deadline, "no push at start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = json!({ "doc_id": "last", "text": "written right before the writer stops" });
    assert_eq!(post_json(&writer.addr, "/documents", None, &last).status, 200);
    let (code, printed) = writer.terminate();
    assert_eq!(code, Some(0), "{printed:?}");
    assert!(printed.iter().any(|l| l.starts_with("pushed 4 chunks")), "{printed:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&replica.addr, "/documents/last").status != 200 {
        assert!(Instant::now() < deadline, "the final push did not reach the replica");
        std::thread::sleep(Duration::from_millis(50));
    }
    let args = ["--replica-of", url.as_str()];
    let refused = Command::new(env!("CARGO_BIN_EXE_vecindex"))
        .args(["serve", dir.path().join("x").to_str().unwrap(), "--push-to", &url])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "--push-to and --replica-of conflict");
}

#[test]
fn the_final_push_holds_what_the_background_ingest_added_last() {
    let Some(s3) = S3::start(workspace()) else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("docs");
    const FILES: usize = 4000;
    support::load::corpus(&root, FILES, 8);
    let url = format!("s3://{BUCKET}/ingested");
    let env = env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args = ["--ingest", root.to_str().unwrap(), "--push-to", url.as_str(), "--push-every-secs", "3600"];
    let writer = Server::start_with(&dir.path().join("writer"), &args, std::process::Stdio::inherit(), &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&get(&writer.addr, "/metrics").body, "vecindex_pushes_total", &[]) < 1.0 {
        assert!(Instant::now() < deadline, "no push at start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let during = get(&writer.addr, "/stats").json()["documents"].as_u64().unwrap() as usize;
    assert!(during < FILES, "the ingest is still running when the signal comes ({during} documents)");

    // The ingest keeps adding while the server persists on its way out; the push comes after
    // the ingest stopped, so it holds every document the writer kept.
    let (code, printed) = writer.terminate();
    assert_eq!(code, Some(0), "{printed:?}");
    let stopped = printed.iter().find(|l| l.starts_with("background ingest")).expect("the ingest reports");
    let added: u64 = stopped.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(printed.iter().any(|l| l.starts_with("pushed ")), "{printed:?}");
    let args = ["--replica-of", url.as_str()];
    let replica = Server::start_with(&dir.path().join("cache"), &args, std::process::Stdio::inherit(), &env);
    let stats = get(&replica.addr, "/stats").json();
    assert_eq!(stats["documents"].as_u64(), Some(added), "{stopped}");
}
