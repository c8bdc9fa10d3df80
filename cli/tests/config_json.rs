//! The real `vecindex` binary: `--json` for `query`, `stats` and `verify`, and `--config FILE`
//! with its precedence (command line, then environment, then file) and its errors.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use serde_json::Value;

/// `vecindex ARGS` with `env` set, and none of the variables that would change its flags
/// inherited from whoever runs the tests.
fn vecindex_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vecindex"));
    command.args(args).env_remove("VECINDEX_CONFIG").env_remove("VECINDEX_TOKEN");
    command.envs(env.iter().copied()).output().expect("runs")
}

fn vecindex(args: &[&str]) -> Output {
    vecindex_env(args, &[])
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout as one line holding one JSON document.
fn json(out: &Output) -> Value {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text:?} ({})", stderr(out));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Four one-section documents (so four chunks), ingested into `dir/index`.
fn indexed(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    write(&docs.join("files.md"), "# Reading files\nOpen a file, read its lines, and close the file when done.\n");
    write(&docs.join("locks.md"), "# Locks\nA mutex serializes writers; contention slows the file writers down.\n");
    write(&docs.join("net.md"), "# Networking\nSockets carry bytes between hosts; a server accepts connections.\n");
    write(&docs.join("gc.txt"), "Garbage collection frees unreachable objects in cycles, file handles too.\n");
    let index = dir.join("index");
    let out = vecindex(&["ingest", docs.to_str().unwrap(), "--index", index.to_str().unwrap(), "--quiet"]);
    assert!(out.status.success() && stdout(&out).contains("4 added") && stdout(&out).contains(" 4 chunks"), "{out:?}");
    index
}

#[test]
fn stats_query_and_verify_print_json() {
    let dir = tempfile::tempdir().unwrap();
    let index = indexed(dir.path());
    let i = index.to_str().unwrap();

    let stats = json(&vecindex(&["stats", i, "--json"]));
    assert_eq!((stats["documents"].as_u64(), stats["chunks"].as_u64()), (Some(4), Some(4)), "{stats}");
    assert_eq!((stats["index"].as_str(), stats["metric"].as_str()), (Some(i), Some("Cosine")), "{stats}");
    assert_eq!(stats["dim"], 384);
    let segments = stats["segments"].as_array().expect("segments");
    let live: u64 = segments.iter().map(|g| g["live_rows"].as_u64().expect("live_rows")).sum();
    assert_eq!(live, 4, "{stats}");
    assert!(segments.iter().all(|g| g["kind"].is_string() && g["mapped"].is_boolean()), "{stats}");
    let text = stdout(&vecindex(&["stats", i]));
    assert!(text.starts_with(&format!("{i}: 4 documents, 4 chunks, dimension 384, Cosine\n")), "unchanged: {text}");

    let query = json(&vecindex(&["query", i, "open and read a file", "-k", "3", "--json"]));
    assert_eq!((query["k"].as_u64(), query["query"].as_str()), (Some(3), Some("open and read a file")));
    let hits = query["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 3, "{query}");
    let first = &hits[0];
    assert_eq!((first["rank"].as_u64(), first["doc_id"].as_str()), (Some(1), Some("files.md")), "{query}");
    assert_eq!(first["heading"], "Reading files");
    assert!(first["text"].as_str().is_some_and(|t| t.contains("close the file when done")), "{query}");
    assert!(first["chunk_id"].as_str().is_some_and(|c| c.starts_with("files.md")), "{query}");
    assert_eq!(first["metadata"]["heading"], "Reading files");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().expect("score")).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] > 0.0, "best first: {scores:?}");
    let text = stdout(&vecindex(&["query", i, "open and read a file", "-k", "3"]));
    assert_eq!(text.lines().count(), 6, "unchanged: {text}");
    assert!(text.starts_with(" 1. ") && text.lines().next().unwrap().ends_with("files.md  [Reading files]"), "{text}");

    let out = vecindex(&["verify", i, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let verify = json(&out);
    assert_eq!((verify["status"].as_str(), verify["ok"].as_bool()), (Some("ok"), Some(true)), "{verify}");
    assert!(verify["error"].is_null());
    let report = &verify["report"];
    assert_eq!((report["chunks"].as_u64(), report["stale_mappings"].as_u64()), (Some(4), Some(0)), "{verify}");
    assert_eq!(report["manifest"], "MANIFEST");
    assert!(report["log"]["damage"].is_null() && report["quarantined"].as_array().is_some_and(Vec::is_empty));

    // A flipped byte in a rows file: exit 2 as without --json, and the JSON says what.
    let rows = support::damage_a_rows_file(&index);
    let out = vecindex(&["verify", i, "--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let verify = json(&out);
    assert_eq!((verify["status"].as_str(), verify["ok"].as_bool()), (Some("damaged"), Some(false)), "{verify}");
    let report = &verify["report"];
    let quarantined = report["quarantined"].as_array().expect("quarantined");
    assert!(!quarantined.is_empty() || !report["fell_back"].is_null(), "{verify}");
    assert!(rows.exists() && !index.join("quarantine").exists(), "verify changes nothing");
}

#[test]
fn verify_json_keeps_its_exit_codes_when_there_is_nothing_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir_all(&index).unwrap();
    std::fs::write(index.join("LOCK"), b"").unwrap();
    std::fs::write(index.join(".MANIFEST.tmp-77"), b"half").unwrap();
    let out = vecindex(&["verify", index.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let verify = json(&out);
    assert_eq!((verify["status"].as_str(), verify["ok"].as_bool()), (Some("no_snapshot"), Some(false)), "{verify}");
    assert!(verify["report"].is_null() && verify["error"].is_string(), "{verify}");

    let missing = dir.path().join("missing");
    let out = vecindex(&["verify", missing.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let verify = json(&out);
    assert!(matches!(verify["status"].as_str(), Some("not_an_index" | "error")), "{verify}");
    assert!(stderr(&out).contains("error:"), "errors still go to stderr: {out:?}");
}

/// A config file in `dir`.
fn config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    write(&path, text);
    path
}

fn hits(out: &Output) -> usize {
    assert!(out.status.success(), "{out:?}");
    json(out)["hits"].as_array().expect("hits").len()
}

#[test]
fn the_command_line_beats_the_environment_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let index = indexed(dir.path());
    let i = index.to_str().unwrap();
    let file = config(dir.path(), "vecindex.toml", "k = 3\n[query]\nk = 2\njson = true\n");
    let f = file.to_str().unwrap();
    let query = ["query", i, "file"];

    assert_eq!(hits(&vecindex(&[&query[..], &["--config", f]].concat())), 2, "only in the file: used");
    assert_eq!(hits(&vecindex(&[&query[..], &["--config", f, "-k", "1"]].concat())), 1, "the command line wins");
    let top = config(dir.path(), "top.toml", "k = 3\njson = true\n");
    assert_eq!(hits(&vecindex(&[&query[..], &["--config", top.to_str().unwrap()]].concat())), 3, "top level");
    // The file's path from the environment; a --config on the command line replaces it.
    assert_eq!(hits(&vecindex_env(&query, &[("VECINDEX_CONFIG", f)])), 2);
    let other = vecindex_env(&[&query[..], &["--config", top.to_str().unwrap()]].concat(), &[("VECINDEX_CONFIG", f)]);
    assert_eq!(hits(&other), 3);

    // A required flag from the file: `ingest --index`.
    let more = dir.path().join("more");
    write(&more.join("x.md"), "# X\nsomething about sockets\n");
    let file = config(dir.path(), "ingest.toml", &format!("[ingest]\nindex = {i:?}\nquiet = true\n"));
    let out = vecindex(&["ingest", more.to_str().unwrap(), "--config", file.to_str().unwrap()]);
    assert!(out.status.success() && stdout(&out).contains("1 added"), "{out:?}");
    // The index mirrors the tree it was last given: `more`'s one document.
    assert_eq!(json(&vecindex(&["stats", i, "--json"]))["documents"], 1);

    // `serve --token` also reads VECINDEX_TOKEN: the token that opens POST /persist tells
    // which source won. The file's address (port 0) is used too, or it would listen on 8080.
    let file = config(dir.path(), "serve.toml", "[serve]\naddr = \"127.0.0.1:0\"\ntoken = \"from-file\"\n");
    let f = file.to_str().unwrap();
    for (env, cli, wins) in [
        (None, None, "from-file"),
        (Some("from-env"), None, "from-env"),
        (Some("from-env"), Some("from-cli"), "from-cli"),
    ] {
        let served = tempfile::tempdir().unwrap();
        let mut args = vec!["serve", served.path().to_str().unwrap(), "--config", f];
        args.extend(cli.map(|token| ["--token", token]).into_iter().flatten());
        let server = Served::start(&args, env.map(|token| ("VECINDEX_TOKEN", token)));
        for token in ["from-file", "from-env", "from-cli"] {
            let status = support::request(&server.addr, "POST", "/persist", Some(token), None).expect("request").status;
            assert_eq!(status == 200, token == wins, "{token} with env {env:?} and cli {cli:?}: {status}");
        }
    }
}

/// A `vecindex serve` with its own environment; killed on drop.
struct Served {
    child: Child,
    addr: String,
    /// Kept open: a server writing to a closed pipe would fail.
    _stdout: BufReader<ChildStdout>,
}

impl Served {
    fn start(args: &[&str], env: Option<(&str, &str)>) -> Served {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vecindex"));
        command.args(args).env_remove("VECINDEX_CONFIG").env_remove("VECINDEX_TOKEN");
        command.envs(env).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().expect("starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("reads");
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_owned();
        Served { child, addr, _stdout: stdout }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_wrong_config_file_is_a_usage_error_naming_the_file_the_table_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let index = indexed(dir.path());
    let i = index.to_str().unwrap();
    for (name, text, says) in [
        ("unknown.toml", "[query]\nk = 2\nbogus = 1\n", "[query] bogus: unknown key"),
        ("type.toml", "[query]\njson = \"yes\"\n", "[query] json: expected true or false, found string"),
        ("value.toml", "[query]\nk = \"many\"\n", "[query] k: invalid value 'many'"),
        ("table.toml", "[qeury]\nk = 2\n", "[qeury]: no such subcommand"),
        ("positional.toml", "[query]\nindex = \"x\"\n", "[query] index: a positional argument"),
        ("elsewhere.toml", "[serve]\nadr = \"127.0.0.1:0\"\n", "[serve] adr: unknown key"),
        ("syntax.toml", "[query\nk = 2\n", "not valid TOML"),
    ] {
        let file = config(dir.path(), name, text);
        let out = vecindex(&["query", i, "file", "--config", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        let message = stderr(&out);
        assert!(message.contains(&format!("config file {}: ", file.display())) && message.contains(says), "{message}");
        assert!(stdout(&out).is_empty() && !message.contains("panicked"), "{out:?}");
    }
    let out = vecindex(&["stats", i, "--config", dir.path().join("absent.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("absent.toml: cannot read it"), "{out:?}");
}
