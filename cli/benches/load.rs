//! Latency of the HTTP API under a bounded mixed load on loopback, with a background ingest of
//! the same corpus running: `cargo bench -p vecindex-cli --bench load` (add `-- --quick` for a
//! short run). The figures in docs/guide.md come from this.
//!
//! It starts the real `vecindex serve` (built by `cargo build --release -p vecindex-cli`), then
//! 4 client threads send requests one at a time (4 in 10 add a document, 5 search, 1 persists).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::{Server, load};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let requests = if quick { 100 } else { 600 };
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    load::corpus(&root, 2000, 10);
    let server = Server::start(&index, &["--ingest", root.to_str().unwrap()]);
    let mut outcome = load::run(&server.addr, 4, requests, None);
    let total: usize = outcome.statuses.values().sum();
    println!(
        "HTTP load: 4 clients x {requests} requests ({total} in {:.2} s, {:.0} req/s), background ingest of 2000 files running",
        outcome.elapsed.as_secs_f64(),
        total as f64 / outcome.elapsed.as_secs_f64()
    );
    println!("statuses: {:?}", outcome.statuses);
    println!("{:<14} {:>6} {:>9} {:>9} {:>9} {:>9}", "route", "n", "p50 ms", "p90 ms", "p99 ms", "max ms");
    for (route, samples) in outcome.latencies.iter_mut() {
        let n = samples.len();
        let (p50, p90, p99, max) = (
            load::quantile(samples, 0.5),
            load::quantile(samples, 0.9),
            load::quantile(samples, 0.99),
            load::quantile(samples, 1.0),
        );
        println!("{route:<14} {n:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}", ms(p50), ms(p90), ms(p99), ms(max));
    }
    let (code, printed) = server.terminate();
    println!("server exit {code:?}; {}", printed.join("; "));
}
