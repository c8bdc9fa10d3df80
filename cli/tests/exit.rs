//! Exits never wait for background work whose result nobody will use: `ingest`, `verify` and
//! `serve` (after SIGTERM and its final persist) exit promptly while the background worker is
//! inserting rows into the shared graph (or, for other index kinds, running FAISS builds).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The promise: exit within this long of printing the result (or of the final persist).
const PROMPTLY: Duration = Duration::from_secs(2);

/// A corpus whose FAISS builds take seconds: 32 000 distinct sections, and one document that
/// repeats the same licence text 3 000 times (the case that used to make builds crawl).
fn corpus(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut word = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        format!("w{}", state % 5000)
    };
    for f in 0..40 {
        let mut text = String::new();
        for s in 0..800 {
            let words: Vec<String> = (0..60).map(|_| word()).collect();
            text.push_str(&format!("## Section {f} {s}\n\n{}\n\n", words.join(" ")));
        }
        std::fs::write(root.join(format!("doc{f}.md")), text).unwrap();
    }
    let licence = "Permission is hereby granted, free of charge, to any person obtaining a copy. ".repeat(8);
    let repeated: String = (0..3000).map(|_| format!("## Licence\n\n{licence}\n\n")).collect();
    std::fs::write(root.join("licence.md"), repeated).unwrap();
}

/// What a run printed, each stdout line with when it came, and when the process exited.
struct Run {
    lines: Vec<(Instant, String)>,
    exited: Instant,
    code: Option<i32>,
    stderr: String,
}

impl Run {
    /// How long after the first line starting with `prefix` the process exited.
    fn exit_after(&self, prefix: &str) -> Duration {
        let (at, _) = self
            .lines
            .iter()
            .find(|(_, line)| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?}: {:?}", self.lines));
        self.exited.duration_since(*at)
    }

    /// Background work stopped by the exit: a FAISS build, or the shared graph taking in rows.
    fn cancelled_builds(&self) -> usize {
        self.stderr.matches("FAISS build cancelled").count() + self.stderr.matches("graph insertion stopped").count()
    }
}

/// Runs `vecindex -v ARGS`; `signal_after`: sends SIGTERM once this line prefix was printed and
/// this long has passed.
fn run(args: &[&str], signal_after: Option<(&str, Duration)>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vecindex"))
        .arg("-v")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut lines = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok) {
        lines.push((Instant::now(), line.clone()));
        if let Some((prefix, wait)) = signal_after
            && line.starts_with(prefix)
        {
            std::thread::sleep(wait);
            let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            assert!(sent.success());
        }
    }
    let status = child.wait().expect("exits");
    let exited = Instant::now();
    Run { lines, exited, code: status.code(), stderr: stderr.join().unwrap() }
}

#[test]
fn ingest_verify_and_serve_exit_promptly_while_faiss_builds_run() {
    let dir = tempfile::tempdir().unwrap();
    let (root, index) = (dir.path().join("docs"), dir.path().join("index"));
    corpus(&root);
    let index = index.to_str().unwrap();

    // 4096-row heads: few segments, each a FAISS build of seconds, so the server below is inside
    // one when the signal comes (the default, smaller heads leave many quick builds).
    let ingest = run(&["ingest", root.to_str().unwrap(), "--index", index, "--quiet", "--head-capacity", "4096"], None);
    assert_eq!(ingest.code, Some(0), "{}", ingest.stderr);
    let after = ingest.exit_after("ingested ");
    assert!(after < PROMPTLY, "ingest exited {after:?} after its summary");

    let verify = run(&["verify", index], None);
    assert_eq!(verify.code, Some(0), "{:?}", verify.lines);
    let after = verify.exit_after("OK");
    assert!(after < PROMPTLY, "verify exited {after:?} after printing OK");

    // The server opens an index whose rows are in no graph yet (the graph is not persisted, and
    // the ingest stopped its worker), so its worker is inserting when the signal comes. The
    // worker starts at the open, before "listening on": the signal follows that line closely,
    // since on a quiet machine the worker can take in all 35 000 rows in under a second.
    let serve = run(&["serve", index, "--addr", "127.0.0.1:0"], Some(("listening on", Duration::from_millis(100))));
    assert_eq!(serve.code, Some(0), "{}", serve.stderr);
    let after = serve.exit_after("persisted ");
    assert!(after < PROMPTLY, "serve exited {after:?} after its final persist");
    assert!(
        serve.cancelled_builds() > 0,
        "a build was running at the signal, so the test measured what it claims: {}",
        serve.stderr
    );
    eprintln!(
        "cancelled builds: ingest {}, verify {}, serve {}",
        ingest.cancelled_builds(),
        verify.cancelled_builds(),
        serve.cancelled_builds()
    );
}
