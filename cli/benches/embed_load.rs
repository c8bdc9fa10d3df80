//! Throughput and latency of `POST /v1/embeddings` with dynamic batching on and off:
//! `cargo bench -p vecindex-cli --bench embed_load [-- --quick] [-- --embedder NAME ...]`.
//!
//! It starts the real `vecindex serve` twice (defaults, then `--no-batching`), and for 1, 8 and
//! 32 clients, each a thread with one kept-alive connection sending one short text per request
//! and waiting for the answer, measures for a fixed time (10 s a cell, 2 s with `--quick`) the
//! requests per second, the p50 and p99 latency and the mean texts per embedder call. It prints a
//! table and writes JSON to `--out PATH`, or `$VECINDEX_BENCH_OUT`, or
//! target/bench-results/embed-load.json.
//!
//! Arguments it does not know go to `vecindex serve` as they are (`--embedder minilm`,
//! `--batch-wait-ms 5`, ...); relative paths are relative to the workspace. With the hashing
//! embedder (the default) embedding costs microseconds and this measures the server's own path;
//! with a model it measures what batching buys. The clients run on the same cores as the server.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::client::Connection;
use support::{Server, load::quantile};

const CLIENTS: [usize; 3] = [1, 8, 32];
const WARM_UP: Duration = Duration::from_millis(300);

struct Args {
    quick: bool,
    out: PathBuf,
    serve: Vec<String>,
}

fn args() -> Args {
    let mut args = Args {
        quick: false,
        out: std::env::var_os("VECINDEX_BENCH_OUT")
            .map_or_else(|| PathBuf::from("target/bench-results/embed-load.json"), PathBuf::from),
        serve: Vec::new(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--bench" => {} // what `cargo bench` passes to every bench
            "--out" => args.out = given.next().expect("--out needs a path").into(),
            _ => args.serve.push(arg),
        }
    }
    args
}

/// What one cell measured.
struct Cell {
    mode: &'static str,
    clients: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_batch_texts: f64,
}

/// `vecindex_embed_batch_texts` sum and count, from `/metrics`.
fn batch_texts(addr: &str) -> (f64, f64) {
    let metrics = support::get(addr, "/metrics").body;
    let value = |name| support::metric(&metrics, name, &[]);
    (value("vecindex_embed_batch_texts_sum"), value("vecindex_embed_batch_texts_count"))
}

/// `clients` threads sending single texts until `until`; the latencies of the 200s and the
/// number of other answers (or broken connections).
fn drive(addr: &str, model: &str, clients: usize, until: Instant) -> (Vec<Duration>, usize) {
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                scope.spawn(move || {
                    let (mut latencies, mut errors) = (Vec::new(), 0);
                    let mut connection = Connection::open(addr).expect("connects");
                    let mut i = 0;
                    while Instant::now() < until {
                        let text = format!("client {c} asks question {i}: how do I unpack the archive and run it");
                        let body = json!({ "input": text, "model": model });
                        let began = Instant::now();
                        match connection.post_json("/v1/embeddings", None, &body) {
                            Ok(reply) if reply.status == 200 => latencies.push(began.elapsed()),
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                connection = Connection::open(addr).expect("reconnects");
                            }
                        }
                        i += 1;
                    }
                    (latencies, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client")).collect()
    });
    let mut all = Vec::new();
    let mut errors = 0;
    for (mut latencies, e) in results {
        all.append(&mut latencies);
        errors += e;
    }
    (all, errors)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find_map(|l| l.strip_prefix("model name")).and_then(|l| l.split_once(':'));
    model.map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_owned())
}

fn main() {
    let args = args();
    // Relative paths (the output, a model directory) are the workspace's, as in the scripts.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    std::env::set_current_dir(workspace).expect("cd to the workspace");
    let per_cell = Duration::from_secs(if args.quick { 2 } else { 10 });
    let modes: [(&str, &[&str]); 2] = [("batching", &[]), ("no-batching", &["--no-batching"])];
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "embed_load: POST /v1/embeddings, one short text per request, {} s per cell, {} cores ({}), serve args {:?}",
        per_cell.as_secs(),
        cores,
        cpu_model(),
        args.serve
    );
    println!(
        "{:<12} {:>7} {:>9} {:>7} {:>9} {:>8} {:>8} {:>11}",
        "mode", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "texts/call"
    );
    let mut cells = Vec::new();
    let mut model = String::new();
    for (mode, flags) in modes {
        let dir = tempfile::tempdir().unwrap();
        let mut serve_args: Vec<&str> = flags.to_vec();
        serve_args.extend(args.serve.iter().map(String::as_str));
        let server = Server::start(&dir.path().join("index"), &serve_args);
        let addr = server.addr.clone();
        let models = support::get(&addr, "/v1/models").json();
        model = models["data"][0]["id"].as_str().expect("a model").to_owned();
        for clients in CLIENTS {
            drive(&addr, &model, clients, Instant::now() + WARM_UP);
            let (sum_before, count_before) = batch_texts(&addr);
            let started = Instant::now();
            let (mut latencies, errors) = drive(&addr, &model, clients, started + per_cell);
            let seconds = started.elapsed().as_secs_f64();
            let (sum_after, count_after) = batch_texts(&addr);
            let requests = latencies.len();
            assert!(requests > 0, "{mode}, {clients} clients: no request succeeded ({errors} errors)");
            let cell = Cell {
                mode,
                clients,
                requests,
                errors,
                seconds,
                p50_ms: ms(quantile(&mut latencies, 0.5)),
                p99_ms: ms(quantile(&mut latencies, 0.99)),
                mean_batch_texts: (sum_after - sum_before) / (count_after - count_before).max(1.0),
            };
            println!(
                "{:<12} {:>7} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>11.2}",
                cell.mode,
                cell.clients,
                cell.requests,
                cell.errors,
                cell.requests as f64 / cell.seconds,
                cell.p50_ms,
                cell.p99_ms,
                cell.mean_batch_texts
            );
            cells.push(cell);
        }
        let (code, _) = server.terminate();
        assert_eq!(code, Some(0), "the {mode} server exits cleanly");
    }

    let report = json!({
        "bench": "embed_load",
        "route": "POST /v1/embeddings",
        "model": model,
        "serve_args": args.serve,
        "quick": args.quick,
        "seconds_per_cell": per_cell.as_secs(),
        "cpu": cpu_model(),
        "cores": cores,
        "cells": cells.iter().map(|c| json!({
            "mode": c.mode,
            "clients": c.clients,
            "requests": c.requests,
            "errors": c.errors,
            "seconds": c.seconds,
            "throughput_rps": c.requests as f64 / c.seconds,
            "p50_ms": c.p50_ms,
            "p99_ms": c.p99_ms,
            "mean_batch_texts": c.mean_batch_texts,
        })).collect::<Vec<Value>>(),
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).expect("creates the output directory");
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report).unwrap() + "\n").expect("writes the report");
    println!("wrote {}", args.out.display());
}
