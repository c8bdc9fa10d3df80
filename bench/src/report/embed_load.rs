//! The embedding server under load (`cargo bench -p vecindex-cli --bench embed_load`).

use std::fmt::Write as _;

use super::*;

/// What `cli/benches/embed_load.rs` writes (the parts the report reads).
#[derive(serde::Deserialize)]
struct Load {
    model: String,
    seconds_per_cell: u64,
    cpu: String,
    cells: Vec<LoadCell>,
}

#[derive(serde::Deserialize)]
struct LoadCell {
    mode: String,
    clients: usize,
    requests: usize,
    errors: usize,
    throughput_rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    mean_batch_texts: f64,
}

pub(super) fn write(r: &mut Report) -> Result<(), Error> {
    let files = matching(r.out, "embed-load-");
    if files.is_empty() {
        return Ok(());
    }
    let md = &mut r.md;
    writeln!(md, "## The embedding server under load\n")?;
    writeln!(
        md,
        "`cargo bench -p vecindex-cli --bench embed_load`: the real `vecindex serve` on loopback, with dynamic batching (the defaults: up to 32 texts a call, no wait) and with `--no-batching`; 1, 8 and 32 clients, each a thread with one kept-alive connection sending one short text per `POST /v1/embeddings` and waiting for the answer. The clients share the machine's cores with the server.\n"
    )?;
    for file in files {
        let Some(load) = read::<Load>(&file)? else { continue };
        writeln!(md, "{} ({} s a cell, {}):\n", load.model, load.seconds_per_cell, load.cpu)?;
        writeln!(md, "| mode | clients | requests | errors | req/s | p50 ms | p99 ms | texts per call |")?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for c in &load.cells {
            writeln!(
                md,
                "| {} | {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.1} |",
                c.mode, c.clients, c.requests, c.errors, c.throughput_rps, c.p50_ms, c.p99_ms, c.mean_batch_texts
            )?;
        }
        let rate = |mode: &str, clients: usize| {
            load.cells.iter().find(|c| c.mode == mode && c.clients == clients).map(|c| c.throughput_rps)
        };
        let ratios: Vec<String> = [1, 8, 32]
            .iter()
            .filter_map(|&n| Some(format!("{:.2}x at {n}", rate("batching", n)? / rate("no-batching", n)?)))
            .collect();
        writeln!(md, "\nBatching against none, requests per second: {}.\n", ratios.join(", "))?;
    }
    Ok(())
}
