//! Group commit: many writers, one append (and at most one fsync) per batch.
//!
//! # Protocol
//!
//! A writer hands its encoded record to the group and gets the ticket of the batch being
//! formed. Then, until its ticket is complete:
//!
//! - if the sink is free, it becomes the leader: it takes the batch being formed (its own record
//!   and every record handed in since the last leader took one), opens the next batch, and
//!   writes its batch to the sink, with an fsync if the group syncs every batch, outside the
//!   mutex; then puts the sink back, marks the ticket complete with its outcome and wakes the
//!   waiters;
//! - else it waits: the current leader's completion wakes it, and then either its ticket is
//!   complete or the sink is free for it to lead.
//!
//! While a leader writes, the records handed in meanwhile form the next batch, so under load
//! one copy (and one fsync) serves many writers; a writer alone leads its own batch of one.
//!
//! # Invariants
//!
//! - G1: at most one thread holds the sink (`sink` is `None` while it is taken), so batches
//!   reach it one after another, each whole or, on an error, not at all (the sink's promise).
//! - G2: a ticket is complete only after the batch holding its record was written (and synced
//!   if the group syncs); its outcome is that batch's.
//! - G3: tickets complete in order: a leader takes the oldest open batch, the one being formed.
//! - G4: when a writer finds the sink free and its ticket incomplete, its record is in the batch
//!   being formed (a batch is taken only by a leader holding the sink until it completes the
//!   ticket), so a leader's batch always holds its own record.
//!
//! The mutex guards only the hand-over of bytes (a copy) and the bookkeeping; no I/O runs under
//! it, and writers never wait for searches or persists here. A persist's rotation takes the sink
//! as a leader would ([`Group::with_sink`]).

use std::io;

use crate::sync::{Condvar, Mutex, MutexGuard, bug};

/// Where batches go: the active log segment, or memory in the models.
pub trait Sink: Send {
    /// Appends `bytes` whole, or on an error leaves the sink as it was before the call.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes what was appended durable. On an error, the batch appended last is taken back (its
    /// members fail, so it must not be replayed); those before it were synced already when the
    /// group syncs every batch.
    fn sync(&mut self) -> io::Result<()>;
}

struct Failure {
    ticket: u64,
    /// Members of the batch that have not read the failure yet.
    unread: usize,
    kind: io::ErrorKind,
    message: String,
}

struct State<S> {
    /// The batch being formed.
    batch: Vec<u8>,
    /// Its ticket.
    ticket: u64,
    /// Records in it.
    members: usize,
    /// Every ticket up to this one is complete.
    completed: u64,
    /// Outcomes of failed batches until each member has read it.
    failures: Vec<Failure>,
    /// `None` while a leader (or a rotation) holds it.
    sink: Option<S>,
    /// A spare buffer, so that batches reuse their allocation.
    spare: Vec<u8>,
    /// Threads waiting for a completion: with none, a leader skips the wake-up (a syscall).
    waiting: usize,
}

/// See the module docs.
pub struct Group<S> {
    state: Mutex<State<S>>,
    completions: Condvar,
    sync_each_batch: bool,
}

impl<S: Sink> Group<S> {
    pub fn new(sink: S, sync_each_batch: bool) -> Self {
        let state = State {
            batch: Vec::new(),
            ticket: 1,
            members: 0,
            completed: 0,
            failures: Vec::new(),
            sink: Some(sink),
            spare: Vec::new(),
            waiting: 0,
        };
        Self { state: Mutex::new(state), completions: Condvar::new(), sync_each_batch }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, mut guard: MutexGuard<'a, State<S>>) -> MutexGuard<'a, State<S>> {
        guard.waiting += 1;
        let mut guard = self.completions.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.waiting -= 1;
        guard
    }

    /// Wakes the waiters, if any (under the mutex, so none can start waiting unseen).
    fn wake(&self, state: &State<S>) {
        if state.waiting > 0 {
            self.completions.notify_all();
        }
    }

    /// Appends one encoded record; returns once the batch holding it was written (and synced if
    /// the group syncs every batch), with that batch's outcome.
    pub fn append(&self, record: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        let ticket = state.ticket;
        // Alone with a free sink: a batch of our record alone, written from the caller's buffer
        // rather than copied into the batch first (the common case with one writer).
        let alone = state.sink.is_some() && state.members == 0;
        if !alone {
            state.batch.extend_from_slice(record);
        }
        state.members += 1;
        loop {
            if state.completed >= ticket {
                return Self::outcome(&mut state, ticket);
            }
            if let Some(mut sink) = state.sink.take() {
                // G4: our record is in the batch being formed; take it.
                let spare = std::mem::take(&mut state.spare);
                let mut batch = std::mem::replace(&mut state.batch, spare);
                let (taken, members) = (state.ticket, state.members);
                state.ticket += 1;
                state.members = 0;
                // An injected bug for the loom models: the batch's members are told it is
                // written before it is.
                if bug!("group_complete_before_write") {
                    state.completed = taken;
                    self.wake(&state);
                }
                drop(state);
                let bytes = if alone { record } else { &batch[..] };
                let result = sink.append(bytes).and_then(|()| if self.sync_each_batch { sink.sync() } else { Ok(()) });
                state = self.lock();
                state.sink = Some(sink);
                if let Err(e) = result {
                    state.failures.push(Failure {
                        ticket: taken,
                        unread: members,
                        kind: e.kind(),
                        message: e.to_string(),
                    });
                }
                state.completed = taken;
                batch.clear();
                state.spare = batch;
                self.wake(&state);
            } else {
                state = self.wait(state);
            }
        }
    }

    /// The outcome of a complete ticket, read once by each of its batch's members.
    fn outcome(state: &mut State<S>, ticket: u64) -> io::Result<()> {
        let Some(at) = state.failures.iter().position(|f| f.ticket == ticket) else { return Ok(()) };
        let failure = &mut state.failures[at];
        let error = io::Error::new(failure.kind, failure.message.clone());
        failure.unread -= 1;
        if failure.unread == 0 {
            state.failures.swap_remove(at);
        }
        Err(error)
    }

    /// Runs `f` on the sink between batches, as a leader would (waiting for the current one).
    pub fn with_sink<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut state = self.lock();
        let mut sink = loop {
            match state.sink.take() {
                Some(sink) => break sink,
                None => state = self.wait(state),
            }
        };
        drop(state);
        let result = f(&mut sink);
        let mut state = self.lock();
        state.sink = Some(sink);
        // Writers that found the sink taken wait for a completion: one of them leads next.
        self.wake(&state);
        result
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::sync::Arc;

    #[derive(Default)]
    struct Memory {
        bytes: Vec<u8>,
        appends: usize,
        fail_next: bool,
    }

    impl Sink for Memory {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.appends += 1;
            if std::mem::take(&mut self.fail_next) {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "no space"));
            }
            self.bytes.extend_from_slice(bytes);
            Ok(())
        }

        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_record_lands_once_and_batches_form_under_load() {
        let group = Arc::new(Group::new(Memory::default(), true));
        let writers: Vec<_> = (0..4u8)
            .map(|w| {
                let group = group.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u16 {
                        let [a, b] = i.to_le_bytes();
                        group.append(&[w, a, b]).unwrap();
                    }
                })
            })
            .collect();
        writers.into_iter().for_each(|w| w.join().unwrap());
        let (records, appends) =
            group.with_sink(|m| (m.bytes.chunks(3).map(<[u8]>::to_vec).collect::<Vec<_>>(), m.appends));
        assert_eq!(records.len(), 8000);
        for w in 0..4u8 {
            let mine: Vec<u16> =
                records.iter().filter(|r| r[0] == w).map(|r| u16::from_le_bytes([r[1], r[2]])).collect();
            assert_eq!(mine, (0..2000).collect::<Vec<_>>(), "writer {w}'s records in order, each once");
        }
        assert!(appends <= 8000);
    }

    #[test]
    fn a_failed_batch_fails_its_members_only() {
        let group = Group::new(Memory::default(), false);
        group.append(b"a").unwrap();
        group.with_sink(|m| m.fail_next = true);
        let err = group.append(b"b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        group.append(b"c").unwrap();
        assert_eq!(group.with_sink(|m| m.bytes.clone()), b"ac");
    }
}
