//! The CLI with the semantic embedder: ingest with `--embedder minilm` (ONNX Runtime) and query
//! with it and with `minilm-candle` (the same vectors), where the lexical default would find
//! nothing (no words in common), and an index made by one embedder refused to another. Needs
//! the model files (`scripts/make-minilm-onnx`) and ONNX Runtime (`scripts/fetch-onnxruntime`).
#![cfg(all(feature = "minilm", feature = "onnx"))]

use std::process::{Command, Output};

fn vecindex(args: &[&str]) -> Output {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/models/all-MiniLM-L6-v2");
    let model = std::env::var("VECINDEX_MINILM_DIR").unwrap_or_else(|_| model.to_owned());
    let runtime = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/onnxruntime/libonnxruntime.so.1.31.1");
    let runtime = std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| runtime.to_owned());
    Command::new(env!("CARGO_BIN_EXE_vecindex"))
        .args(args)
        .env("VECINDEX_MINILM_DIR", model)
        .env("ORT_DYLIB_PATH", runtime)
        .output()
        .expect("runs")
}

#[test]
fn semantic_queries_find_documents_without_shared_words() {
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    std::fs::create_dir_all(&root).unwrap();
    for (name, text) in [
        ("cars.md", "# Cars\nAutomobiles need regular oil changes and tire rotations to keep running well."),
        ("cooking.md", "# Cooking\nSimmer the tomato sauce slowly and season it with fresh basil and garlic."),
        ("astronomy.md", "# Astronomy\nTelescopes gather light from distant galaxies and nebulae."),
    ] {
        std::fs::write(root.join(name), text).unwrap();
    }
    let (r, i) = (root.to_str().unwrap(), index.to_str().unwrap());
    let out = vecindex(&["ingest", r, "--index", i, "--embedder", "minilm", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (query, expected) in
        [("vehicle maintenance", "cars.md"), ("a recipe for dinner", "cooking.md"), ("stars in space", "astronomy.md")]
    {
        for embedder in ["minilm", "minilm-candle"] {
            let out = vecindex(&["query", i, query, "-k", "1", "--embedder", embedder]);
            let printed = String::from_utf8_lossy(&out.stdout);
            assert!(printed.lines().next().unwrap_or_default().contains(expected), "{embedder}, {query:?}: {printed}");
        }
    }
    let out = vecindex(&["query", i, "vehicle", "--embedder", "minilm-int8"]);
    assert_eq!(out.status.code(), Some(1), "an int8 query on an fp32 index is refused");
    let out = vecindex(&["query", i, "vehicle", "--embedder", "hashing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("embedded with minilm-l6-v2"));
}
