//! The CLI with the semantic embedder: ingest with `--embedder minilm` (ONNX Runtime) and query
//! with it and with `minilm-candle` (the same vectors), where the lexical default would find
//! nothing (no words in common), and an index made by one embedder refused to another. Needs
//! the model files (`scripts/make-minilm-onnx`) and ONNX Runtime (`scripts/fetch-onnxruntime`).
#![cfg(all(feature = "minilm", feature = "onnx"))]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the model and ONNX Runtime are: the environment's, or what the scripts made here.
fn model_env() -> [(&'static str, String); 2] {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/models/all-MiniLM-L6-v2");
    let runtime = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/onnxruntime/libonnxruntime.so.1.31.1");
    [
        ("VECINDEX_MINILM_DIR", std::env::var("VECINDEX_MINILM_DIR").unwrap_or_else(|_| model.to_owned())),
        ("ORT_DYLIB_PATH", std::env::var("ORT_DYLIB_PATH").unwrap_or_else(|_| runtime.to_owned())),
    ]
}

fn vecindex(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vecindex")).args(args).envs(model_env()).output().expect("runs")
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

/// A server whose model cannot load serves its probes and says why it is not ready; one with
/// the model becomes ready.
#[test]
fn readiness_waits_for_the_model_and_names_why_it_failed() {
    let dir = tempfile::tempdir().unwrap();
    let [(model_var, model_dir), _] = model_env();
    let broken = support::Server::start_with(
        &dir.path().join("broken"),
        &["--embedder", "minilm"],
        Stdio::null(),
        &[(model_var, model_dir.as_str()), ("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    let ready = |addr: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = support::get(addr, "/readyz");
            let settled = answer.json()["model"] != "loading";
            if settled || Instant::now() > deadline {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(support::get(&broken.addr, "/livez").status, 200);
    let answer = ready(&broken.addr);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.json()["model"].as_str().unwrap().contains("no ONNX Runtime"), "{answer:?}");
    assert!(answer.header("retry-after").is_some());
    drop(broken);

    let env = model_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let good = support::Server::start_with(&dir.path().join("good"), &["--embedder", "minilm"], Stdio::inherit(), &env);
    let answer = ready(&good.addr);
    assert_eq!((answer.status, answer.json()["model"].as_str()), (200, Some("loaded")), "{answer:?}");
}
