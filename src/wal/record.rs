//! Log records: one per mutation, framed so that replay can tell a record cut short by a crash
//! (the end of the log) from a damaged one (an error to report).
//!
//! ```text
//! offset  size  field
//!      0     4  body length n (u32)
//!      4     4  check of the length: the low 32 bits of xxh3-64 of bytes 0..4
//!      8     8  xxh3-64 of the body
//!     16     n  body: seq (u64), kind (u8), payload, then zeros to a multiple of 8 bytes
//! ```
//!
//! Bytes 0..8 are the record's commit word: the active segment stores a batch's first one last
//! (`wal::active`), so a zero there is where the written log ends.
//!
//! Payloads (integers little endian; a string is its byte length as u32, then UTF-8):
//!
//! - kind 4, a write (`add_chunk(s)`, `add_document`): replace (u8: 1 for `add_document`),
//!   documents (u32), and per document its id (string), chunks (u32), and per chunk: chunk id,
//!   text (strings), metadata entries (u32) of key (string) and value, dimension (u32) and the
//!   vector as stored (f32 each: normalized for cosine). A value is a tag (u8) and its payload:
//!   1 string; 2 integer (i64); 3 float (f64); 4 bool (u8 0 or 1); 5 list of strings (u32
//!   count, then the strings).
//! - kind 1, a write as log version 1 wrote it (read, never written): the same with every
//!   metadata value a string and no tag.
//! - kind 2, `remove_document`: the document id (string).
//! - kind 3, `remove_chunk`: the chunk id (string).

use crate::chunk::{Chunk, Metadata};
use crate::metadata::Value;
use crate::seq::SeqNo;
use crate::storage::format::checksum;

/// Bytes before the body.
pub(crate) const FRAME: usize = 16;
/// The smallest body: seq and kind.
const MIN_BODY: usize = 9;
/// Larger bodies are damage (a write of 1 GiB in one call is not something this log takes).
pub(crate) const MAX_BODY: usize = 1 << 30;

/// A write whose metadata values are strings (log version 1).
const WRITE_STRINGS: u8 = 1;
const REMOVE_DOCUMENT: u8 = 2;
const REMOVE_CHUNK: u8 = 3;
const WRITE: u8 = 4;

const STR: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 3;
const BOOL: u8 = 4;
const LIST: u8 = 5;

/// A mutation as the write path hands it to the log.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op<'a> {
    Write { replace: bool, docs: &'a [(String, Vec<Chunk>)] },
    RemoveDocument(&'a str),
    RemoveChunk(&'a str),
}

/// A mutation read back from the log.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record {
    Write { replace: bool, docs: Vec<(String, Vec<Chunk>)> },
    RemoveDocument(String),
    RemoveChunk(String),
}

/// The check of a body length (frame bytes 4..8).
fn length_check(len: [u8; 4]) -> u32 {
    checksum(&len) as u32
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The bytes [`put_value`] appends for `value`.
fn value_len(value: &Value) -> usize {
    1 + match value {
        Value::Str(s) => 4 + s.len(),
        Value::Int(_) | Value::Float(_) => 8,
        Value::Bool(_) => 1,
        Value::List(items) => 4 + items.iter().map(|s| 4 + s.len()).sum::<usize>(),
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            out.push(STR);
            put_str(out, s);
        }
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Bool(b) => {
            out.push(BOOL);
            out.push(u8::from(*b));
        }
        Value::List(items) => {
            out.push(LIST);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for item in items {
                put_str(out, item);
            }
        }
    }
}

/// The bytes [`encode`] appends for `op`, so that the buffer is allocated once.
pub(crate) fn encoded_len(op: Op<'_>) -> usize {
    let payload = match op {
        Op::Write { docs, .. } => {
            5 + docs
                .iter()
                .map(|(doc_id, chunks)| {
                    8 + doc_id.len()
                        + chunks
                            .iter()
                            .map(|c| {
                                16 + c.chunk_id.len()
                                    + c.text.len()
                                    + c.metadata.iter().map(|(k, v)| 4 + k.len() + value_len(v)).sum::<usize>()
                                    + 4 * c.vector.len()
                            })
                            .sum::<usize>()
                })
                .sum::<usize>()
        }
        Op::RemoveDocument(id) | Op::RemoveChunk(id) => 4 + id.len(),
    };
    FRAME + (MIN_BODY + payload).next_multiple_of(8)
}

/// Appends the framed record of `op` with `seq` to `out`.
pub(crate) fn encode(seq: SeqNo, op: Op<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME]);
    out.extend_from_slice(&seq.to_le_bytes());
    match op {
        Op::Write { replace, docs } => {
            out.push(WRITE);
            out.push(u8::from(replace));
            out.extend_from_slice(&(docs.len() as u32).to_le_bytes());
            for (doc_id, chunks) in docs {
                put_str(out, doc_id);
                out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
                for chunk in chunks {
                    put_str(out, &chunk.chunk_id);
                    put_str(out, &chunk.text);
                    out.extend_from_slice(&(chunk.metadata.len() as u32).to_le_bytes());
                    for (key, value) in &chunk.metadata {
                        put_str(out, key);
                        put_value(out, value);
                    }
                    out.extend_from_slice(&(chunk.vector.len() as u32).to_le_bytes());
                    // Little endian in memory as in the file (the crate builds for no other).
                    out.extend_from_slice(bytemuck::cast_slice(&chunk.vector));
                }
            }
        }
        Op::RemoveDocument(doc_id) => {
            out.push(REMOVE_DOCUMENT);
            put_str(out, doc_id);
        }
        Op::RemoveChunk(chunk_id) => {
            out.push(REMOVE_CHUNK);
            put_str(out, chunk_id);
        }
    }
    out.resize(start + FRAME + (out.len() - start - FRAME).next_multiple_of(8), 0);
    debug_assert_eq!(out.len() - start, encoded_len(op));
    frame(out, start);
}

/// Fills in the frame of the record starting at `start`, whose padded body follows it to the end.
fn frame(out: &mut [u8], start: usize) {
    let body_len = (out.len() - start - FRAME) as u32;
    let len = body_len.to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&length_check(len).to_le_bytes());
    let body_sum = checksum(&out[start + FRAME..]);
    out[start + 8..start + 16].copy_from_slice(&body_sum.to_le_bytes());
}

/// What the bytes at an offset hold.
#[derive(Debug, PartialEq)]
pub(crate) enum Framed {
    /// A whole record: its seq, what it does, and its length with the frame.
    Record { seq: SeqNo, record: Record, len: usize },
    /// The end of the written log: a zero commit word (space allocated but never committed,
    /// or a batch whose commit a crash cut off), or a frame or body cut short by the file's end.
    End,
    /// Bytes that are not a record and not a clean end.
    Damaged { reason: String },
}

/// Reads the record at the start of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Framed {
    if bytes.len() < FRAME || bytes[..8] == [0; 8] {
        return Framed::End;
    }
    let len = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let stored_check = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if stored_check != length_check(len) {
        return Framed::Damaged { reason: "the record's length fails its check".into() };
    }
    let body_len = u32::from_le_bytes(len) as usize;
    if !(MIN_BODY..=MAX_BODY).contains(&body_len) {
        return Framed::Damaged { reason: format!("a record length of {body_len} bytes") };
    }
    let Some(body) = bytes.get(FRAME..FRAME + body_len) else {
        return Framed::End; // a body cut short: the crash came mid-write
    };
    let stored_sum = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if stored_sum != checksum(body) {
        return Framed::Damaged { reason: "the record's body fails its checksum".into() };
    }
    match parse_body(body) {
        Some((seq, record)) => Framed::Record { seq, record, len: FRAME + body_len },
        None => Framed::Damaged { reason: "the record's body passes its checksum but does not parse".into() },
    }
}

/// A cursor over a body; every read checks the bounds.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn value(&mut self) -> Option<Value> {
        Some(match self.u8()? {
            STR => Value::Str(self.string()?),
            INT => Value::Int(i64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            FLOAT => Value::Float(f64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            BOOL => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return None,
            },
            LIST => {
                let mut items = Vec::with_capacity(self.count(4)?);
                for _ in 0..items.capacity() {
                    items.push(self.string()?);
                }
                Value::List(items)
            }
            _ => return None,
        })
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    /// A count of items, each at least `min_size` bytes: more than the bytes left is damage
    /// (and must not become a huge allocation).
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n.saturating_mul(min_size) <= self.0.len()).then_some(n)
    }
}

fn parse_body(body: &[u8]) -> Option<(SeqNo, Record)> {
    let mut r = Reader(body);
    let seq = r.u64()?;
    let record = match r.u8()? {
        kind @ (WRITE | WRITE_STRINGS) => {
            let replace = match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            let mut docs = Vec::with_capacity(r.count(8)?);
            for _ in 0..docs.capacity() {
                let doc_id = r.string()?;
                let mut chunks = Vec::with_capacity(r.count(16)?);
                for _ in 0..chunks.capacity() {
                    let chunk_id = r.string()?;
                    let text = r.string()?;
                    let mut metadata = Metadata::new();
                    for _ in 0..r.count(8)? {
                        let key = r.string()?;
                        let value = if kind == WRITE { r.value()? } else { Value::Str(r.string()?) };
                        metadata.insert(key, value);
                    }
                    let dim = r.count(4)?;
                    let vector = r.take(dim * 4)?.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    let vector = vector.collect();
                    chunks.push(Chunk { chunk_id, doc_id: doc_id.clone(), vector, text, metadata });
                }
                docs.push((doc_id, chunks));
            }
            Record::Write { replace, docs }
        }
        REMOVE_DOCUMENT => Record::RemoveDocument(r.string()?),
        REMOVE_CHUNK => Record::RemoveChunk(r.string()?),
        _ => return None,
    };
    // What is left is the padding to a multiple of 8: zeros.
    (r.0.len() < 8 && r.0.iter().all(|&b| b == 0)).then_some((seq, record))
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    fn docs() -> Vec<(String, Vec<Chunk>)> {
        let chunk = Chunk::new("c1", "d", vec![0.6, -0.8])
            .with_text("héllo")
            .with_meta("lang", "fr")
            .with_meta("year", 2024)
            .with_meta("score", -0.25)
            .with_meta("draft", true)
            .with_meta("tags", ["a", "bc"]);
        vec![("d".into(), vec![chunk, Chunk::new("c2", "d", vec![1.0, 0.0])])]
    }

    fn encoded() -> (Vec<u8>, Vec<usize>) {
        let docs = docs();
        let mut out = Vec::new();
        let mut ends = Vec::new();
        encode(7, Op::Write { replace: true, docs: &docs }, &mut out);
        ends.push(out.len());
        encode(8, Op::RemoveChunk("c1"), &mut out);
        ends.push(out.len());
        encode(9, Op::RemoveDocument("d"), &mut out);
        ends.push(out.len());
        (out, ends)
    }

    #[test]
    fn records_read_back_as_written() {
        let (bytes, ends) = encoded();
        let mut at = 0;
        let mut seen = Vec::new();
        while let Framed::Record { seq, record, len } = decode(&bytes[at..]) {
            seen.push((seq, record));
            at += len;
        }
        assert_eq!(at, *ends.last().unwrap());
        assert_eq!(
            seen,
            [
                (7, Record::Write { replace: true, docs: docs() }),
                (8, Record::RemoveChunk("c1".into())),
                (9, Record::RemoveDocument("d".into())),
            ]
        );
        assert_eq!(decode(&bytes[at..]), Framed::End);
    }

    #[test]
    fn a_write_as_log_version_1_wrote_it_reads_with_string_metadata() {
        let mut out = vec![0; FRAME];
        out.extend_from_slice(&5u64.to_le_bytes());
        out.extend_from_slice(&[WRITE_STRINGS, 0]);
        out.extend_from_slice(&1u32.to_le_bytes());
        put_str(&mut out, "d");
        out.extend_from_slice(&1u32.to_le_bytes());
        put_str(&mut out, "c1");
        put_str(&mut out, "text");
        out.extend_from_slice(&1u32.to_le_bytes());
        put_str(&mut out, "year");
        put_str(&mut out, "2024");
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(bytemuck::cast_slice(&[1.0f32, 0.0]));
        out.resize(FRAME + (out.len() - FRAME).next_multiple_of(8), 0);
        frame(&mut out, 0);
        let chunk = Chunk::new("c1", "d", vec![1.0, 0.0]).with_text("text").with_meta("year", "2024");
        match decode(&out) {
            Framed::Record { seq: 5, record, len } => {
                assert_eq!(len, out.len());
                assert_eq!(record, Record::Write { replace: false, docs: vec![("d".into(), vec![chunk])] });
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_record_cut_anywhere_is_the_end_and_never_a_record() {
        let (bytes, ends) = encoded();
        for cut in 0..ends[0] {
            assert_eq!(decode(&bytes[..cut]), Framed::End, "cut at {cut}");
        }
        let mut zeroed = bytes[..ends[0]].to_vec();
        zeroed.extend_from_slice(&[0; 64]);
        assert!(matches!(decode(&zeroed), Framed::Record { seq: 7, .. }));
        assert_eq!(decode(&zeroed[ends[0]..]), Framed::End);
    }

    #[test]
    fn a_batch_whose_commit_word_was_never_stored_is_the_end() {
        let (mut bytes, ends) = encoded();
        assert!(ends.iter().all(|end| end.is_multiple_of(8)), "records are multiples of 8 bytes: {ends:?}");
        bytes[..8].fill(0); // the batch's body copied, its commit word not
        assert_eq!(decode(&bytes), Framed::End);
        let mut allocated = vec![0u8; 4096]; // a segment's zeroed space
        allocated[..ends[0]].copy_from_slice(&bytes[..ends[0]]);
        assert_eq!(decode(&allocated), Framed::End);
    }

    #[test]
    fn every_flipped_bit_of_a_whole_record_is_damage() {
        let (bytes, ends) = encoded();
        for byte in 0..ends[0] {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[byte] ^= 1 << bit;
                match decode(&damaged) {
                    Framed::Damaged { .. } => {}
                    other => panic!("flip of bit {bit} in byte {byte} read as {other:?}"),
                }
            }
        }
    }
}
