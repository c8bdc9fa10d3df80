//! A minimal HTTP/1.1 client that keeps its connection open (as real clients do), and shows the
//! headers of the answers: for load (no connection setup per request) and for `Retry-After`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An answer: status, headers (names lower-cased), body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// One kept-alive connection; requests on it go one after another.
pub struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Connection { addr: addr.to_owned(), reader: BufReader::new(stream) })
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
    ) -> std::io::Result<Reply> {
        let body = body.unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        // One write: a request split in two small writes waits for a delayed ACK on Linux.
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.reader.get_mut().write_all(&bytes)?;
        self.read_reply()
    }

    pub fn post_json(&mut self, path: &str, token: Option<&str>, value: &serde_json::Value) -> std::io::Result<Reply> {
        self.send("POST", path, token, Some(value.to_string().as_bytes()))
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let broken = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let status = line.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| broken(&line))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').ok_or_else(|| broken(trimmed))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let mut body = Vec::new();
        if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim_end(), 16).map_err(|_| broken(&line))?;
                let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let length: usize =
                find("content-length").and_then(|v| v.parse().ok()).ok_or_else(|| broken("no length"))?;
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}
