//! moto's S3 server on 127.0.0.1 with one bucket, started by scripts/s3-server (which makes
//! its venv first), for the object-storage tests of the library and of the CLI.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};

pub const BUCKET: &str = "vecindex-test";

/// A running moto server with [`BUCKET`]; stopped when dropped.
pub struct S3 {
    child: Child,
    /// Held open: the server stops when it closes, even if this process dies without dropping.
    _stdin: ChildStdin,
    pub endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// Starts one; `None` (saying so) when there is no python3.
    pub fn start(workspace: &Path) -> Option<S3> {
        if Command::new("python3").arg("--version").output().map_or(true, |o| !o.status.success()) {
            println!("skipped: no python3 on PATH, so moto's S3 server cannot run");
            return None;
        }
        let mut child = Command::new(workspace.join("scripts/s3-server"))
            .args(["--bucket", BUCKET, "--until-stdin-closes"])
            .current_dir(workspace)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("scripts/s3-server starts");
        // Drained all along, so that the server never blocks on a full pipe.
        let said = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let drain = {
            let said = said.clone();
            std::thread::spawn(move || {
                let mut chunk = [0; 4096];
                while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                    said.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            })
        };
        let mut line = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        let Some(endpoint) = line.trim().strip_prefix("endpoint ").map(str::to_owned) else {
            let status = child.wait();
            let _ = drain.join();
            panic!("scripts/s3-server failed ({status:?}): {}", said.lock().unwrap());
        };
        let stdin = child.stdin.take().unwrap();
        Some(S3 { child, _stdin: stdin, endpoint })
    }

    /// The store's settings, as `object_store` names them (also the environment's, upper-cased).
    pub fn settings(&self) -> [(&'static str, String); 5] {
        [
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", "test".into()),
            ("aws_secret_access_key", "test".into()),
            ("aws_region", "us-east-1".into()),
        ]
    }

    /// From now on the server checks credentials, and knows none: every request is refused as
    /// a real S3 refuses a key it does not know.
    #[allow(dead_code)] // the CLI's tests do not use it
    pub fn refuse_every_credential(&self) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        let request = format!(
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200"), "{answer}");
    }
}
