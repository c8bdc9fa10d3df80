//! The official `openai` Python client against the real `vecindex serve`: runs
//! cli/tests/py/test_openai_client.py with pytest in the venv of scripts/openai-venv (pinned
//! `openai` from PyPI). Skipped, saying so, only when there is no python3; a venv that cannot be
//! made is a failure.

mod support;

use std::path::Path;
use std::process::Command;

use support::{Server, get};

const TOKEN: &str = "sk-vecindex-test";

#[test]
fn the_openai_python_client_embeds_through_the_server() {
    if Command::new("python3").arg("--version").output().map_or(true, |o| !o.status.success()) {
        println!("skipped: no python3 on PATH, so the openai client cannot run");
        return;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let venv = Command::new(workspace.join("scripts/openai-venv")).current_dir(workspace).output().expect("runs");
    let said = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    assert!(venv.status.success(), "scripts/openai-venv failed:\n{}", said(&venv));
    print!("{}", said(&venv));

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("index"), &["--token", TOKEN]);
    let model = request_model(&server.addr);
    let pytest = Command::new(workspace.join("target/openai-venv/bin/python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "cli/tests/py/test_openai_client.py"])
        .current_dir(workspace)
        .env("VECINDEX_URL", format!("http://{}", server.addr))
        .env("VECINDEX_TOKEN", TOKEN)
        .env("VECINDEX_MODEL", &model)
        .output()
        .expect("runs pytest");
    print!("{}", said(&pytest));
    assert!(pytest.status.success(), "pytest failed:\n{}", said(&pytest));
    let metrics = get(&server.addr, "/metrics").body;
    assert!(
        !metrics.contains("vecindex_request_seconds_count{route=\"embeddings\"} 0\n"),
        "the client reached the server"
    );
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
}

/// The server's model, as `GET /v1/models` names it.
fn request_model(addr: &str) -> String {
    let models = support::request(addr, "GET", "/v1/models", Some(TOKEN), None).unwrap().json();
    models["data"][0]["id"].as_str().expect("one model").to_owned()
}
