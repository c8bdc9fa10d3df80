//! Helpers for tests and benchmarks that drive the real `vecindex` binary: start a server and
//! read the address it chose, and a minimal HTTP/1.1 client (one request per connection).
#![allow(dead_code)]

pub mod client;
pub mod load;
pub mod s3;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

/// A response: status code, headers and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    pub body: String,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> std::io::Result<Response> {
    request_with(addr, method, path, token, body, &[])
}

/// `request`, with more headers.
pub fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) and close before reading a large body: that is not our error.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok(Response { status, head: head.to_owned(), body: body.to_owned() })
}

/// The sum of the samples of metric `name` (as printed: `vecindex_http_requests_total`) whose
/// labels include all of `labels`, in the text of `/metrics`; panics if there is none.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (set, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.split_once("} ") {
                Some((set, value)) => (set, value),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(value) => ("", value),
                None => continue,
            },
        };
        if labels.iter().all(|(k, v)| set.split(',').any(|pair| pair == format!("{k}=\"{v}\""))) {
            let value: f64 = value.split(' ').next().and_then(|v| v.parse().ok()).expect("a number");
            *found.get_or_insert(0.0) += value;
        }
    }
    found.unwrap_or_else(|| panic!("no {name} with {labels:?} in\n{text}"))
}

/// Flips one byte in the middle of a rows file of the index at `index`; returns that file.
pub fn damage_a_rows_file(index: &Path) -> std::path::PathBuf {
    let rows = std::fs::read_dir(index)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "rows"))
        .expect("a rows file");
    let mut bytes = std::fs::read(&rows).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&rows, bytes).unwrap();
    rows
}

pub fn post_json(addr: &str, path: &str, token: Option<&str>, value: &serde_json::Value) -> Response {
    request(addr, "POST", path, token, Some(value.to_string().as_bytes())).expect("request")
}

pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, None, None).expect("request")
}

/// A running `vecindex serve`.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Lines the server printed after "listening on".
    pub lines: Receiver<String>,
}

impl Server {
    /// Starts `vecindex serve INDEX --addr 127.0.0.1:0 EXTRA...` and waits until it listens.
    /// Its log goes to the test's stderr, warnings only: not a line per request.
    pub fn start(index: &Path, extra: &[&str]) -> Server {
        Self::start_with(index, extra, Stdio::inherit(), &[("RUST_LOG", "warn")])
    }

    /// `start`, with the server's stderr (its log) sent to `stderr` and `env` set.
    pub fn start_with(index: &Path, extra: &[&str], stderr: Stdio, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vecindex"))
            .args(["serve", index.to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("starts");
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(60)).expect("the server prints its address");
        let addr = first.strip_prefix("listening on http://").unwrap_or_else(|| panic!("{first}")).to_owned();
        Server { child, addr, lines: rx }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and what it printed.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success());
        let status = self.child.wait().expect("exits");
        let printed: Vec<String> = self.lines.try_iter().collect();
        (status.code(), printed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
