//! Python's own tools against the real `vecindex serve`, with pytest in the venv of
//! scripts/openai-venv (every package pinned, from PyPI): the official `openai` client
//! (cli/tests/py/test_openai_client.py), and validators of the OpenAPI document and the
//! metrics (cli/tests/py/test_operations.py). Skipped, saying so, only when there is no
//! python3; a venv that cannot be made is a failure.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Server, get, metric};

const TOKEN: &str = "sk-vecindex-test";

/// The venv of scripts/openai-venv, made or checked; `None` (saying so) when there is no python3.
fn venv() -> Option<PathBuf> {
    if Command::new("python3").arg("--version").output().map_or(true, |o| !o.status.success()) {
        println!("skipped: no python3 on PATH, so the Python clients and validators cannot run");
        return None;
    }
    let venv = Command::new(workspace().join("scripts/openai-venv")).current_dir(workspace()).output().expect("runs");
    assert!(venv.status.success(), "scripts/openai-venv failed:\n{}", said(&venv));
    print!("{}", said(&venv));
    Some(workspace().join("target/openai-venv/bin/python"))
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn said(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs the pytest file `test` (in cli/tests/py) with `python` against `server`, with `env`.
fn pytest(python: &Path, test: &str, server: &Server, env: &[(&str, &str)]) {
    let run = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &format!("cli/tests/py/{test}")])
        .current_dir(workspace())
        .env("VECINDEX_URL", format!("http://{}", server.addr))
        .envs(env.iter().copied())
        .output()
        .expect("runs pytest");
    print!("{}", said(&run));
    assert!(run.status.success(), "pytest {test} failed:\n{}", said(&run));
}

#[test]
fn the_openai_python_client_embeds_through_the_server() {
    let Some(python) = venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", TOKEN]);
    let model = request_model(&server.addr);
    pytest(&python, "test_openai_client.py", &server, &[("VECINDEX_TOKEN", TOKEN), ("VECINDEX_MODEL", &model)]);
    let metrics = get(&server.addr, "/metrics").body;
    let embedded = metric(&metrics, "vecindex_http_requests_total", &[("route", "/v1/embeddings"), ("status", "200")]);
    assert!(embedded > 0.0, "the client reached the server");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

/// The OpenAPI document, and each answer against it, checked by openapi-spec-validator; the
/// metrics read by prometheus_client's OpenMetrics parser (cli/tests/py/test_operations.py).
#[test]
fn the_openapi_document_and_the_metrics_pass_third_party_validators() {
    let Some(python) = venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", TOKEN, "--read-key", "read-only"]);
    pytest(&python, "test_operations.py", &server, &[("VECINDEX_TOKEN", TOKEN), ("VECINDEX_READ_KEY", "read-only")]);
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

fn request_model(addr: &str) -> String {
    let models = support::request(addr, "GET", "/v1/models", Some(TOKEN), None).unwrap().json();
    models["data"][0]["id"].as_str().expect("one model").to_owned()
}
