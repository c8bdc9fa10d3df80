//! moto's S3 server (`moto_server`, installed by scripts/s3-venv) on 127.0.0.1 with one bucket,
//! for the object-storage tests of the library and of the CLI.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "vecindex-test";

/// A running moto server with [`BUCKET`]; stopped when dropped.
pub struct S3 {
    child: Child,
    pub endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    /// Starts one, making the venv first; `None` (saying so) when there is no python3.
    pub fn start(workspace: &Path) -> Option<S3> {
        if Command::new("python3").arg("--version").output().map_or(true, |o| !o.status.success()) {
            println!("skipped: no python3 on PATH, so moto's S3 server cannot run");
            return None;
        }
        let venv = Command::new(workspace.join("scripts/s3-venv")).current_dir(workspace).output().expect("runs");
        assert!(venv.status.success(), "scripts/s3-venv failed: {}", String::from_utf8_lossy(&venv.stderr));
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(workspace.join("target/s3-venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let addr = format!("127.0.0.1:{port}");
        let s3 = S3 { child, endpoint: format!("http://{addr}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(&addr, "GET", "/").is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(http(&addr, "PUT", &format!("/{BUCKET}")).unwrap(), 200, "the bucket is made");
        Some(s3)
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
}

/// One HTTP request without a body; the status.
fn http(addr: &str, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0))
}
