//! A SIGTERM sent the moment `vecindex serve` says it listens is a graceful shutdown (exit 0 and
//! a final persist), not the default death: the handlers exist before the announcement.

mod support;

use support::Server;

#[test]
fn sigterm_right_after_listening_is_graceful() {
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("index"), &[]);
        let (code, printed) = server.terminate();
        assert_eq!(code, Some(0), "round {round}: {printed:?}");
        assert!(printed.iter().any(|l| l.starts_with("persisted ")), "round {round}: {printed:?}");
    }
}
