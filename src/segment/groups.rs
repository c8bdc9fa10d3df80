//! One graph node per distinct vector: rows whose vectors are equal, or equal to within float
//! precision, share one node of a segment's HNSW graph.
//!
//! # Why
//!
//! Real corpora repeat text (licences, navigation, boilerplate), and an embedder maps repeated
//! text to the same vector, or to vectors that differ only in their last bits. HNSW construction
//! handles such points badly: every distance among them ties, so each new copy links to the same
//! few earlier copies, whose full neighbour lists are then pruned again on every insert (a
//! quadratic cost per hub). Measured here on 4 096 rows of 384 dimensions with FAISS HNSW32:
//! 0.4 s for distinct rows, 10 s when every row is the same vector, 5 s when the copies differ
//! by noise of 1e-5 per component, 1.3 s at 1e-3, and no slower than distinct rows from 3e-3.
//! A graph over one representative per group is as fast to build as one over distinct rows, and
//! a search expands each representative it finds into its rows, every one re-scored exactly.
//!
//! # What counts as a duplicate
//!
//! Row `b` joins the group of an earlier representative `a` when
//! `|a - b|^2 <= TOLERANCE * max(|a|^2, |b|^2)`: for normalized (cosine) vectors a cosine
//! similarity above `1 - TOLERANCE / 2` = 0.999995, where the single-precision distances FAISS
//! sums over a few hundred dimensions hardly order the points any more. A query's score for two
//! such rows differs by at most `|q| * sqrt(TOLERANCE) * |a|`, and each is re-scored exactly. Candidates are found by an exact hash of the bits
//! (every exact duplicate) and by a 16-bit sign-of-projection key (near duplicates almost always
//! share it), comparing against the few most recent representatives with that key; a near
//! duplicate missed that way becomes a node of its own, which costs build time, never a result.
//! The grouping depends only on the vectors and their order, so it is the same every time.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::metric::{dot, l2_squared};

/// Squared distance, relative to the larger squared norm, under which two rows share a node.
pub(crate) const TOLERANCE: f32 = 1e-5;
/// Projections in the near-duplicate key.
const KEY_BITS: usize = 16;
/// Representatives with the same key that a row is compared with, most recent first.
const RECENT: usize = 8;
/// Marks the groups section after FAISS's bytes in a FAISS file (`docs/format.md`).
const MAGIC: &[u8; 8] = b"VIGROUPS";

/// Rows by graph node ("label"): label `l` holds rows `members[starts[l]..starts[l + 1]]`,
/// in increasing order; the first is the representative whose vector the graph holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Groups {
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl Groups {
    /// Groups the rows of `vectors` (rows of `dim` values). `None` when every row is distinct
    /// (the graph then holds every row under its own row number).
    pub(crate) fn find(vectors: &[f32], dim: usize) -> Option<Self> {
        let dim = dim.max(1);
        let rows = vectors.len() / dim;
        let row = |r: usize| &vectors[r * dim..(r + 1) * dim];
        let planes = Planes::new(dim);
        let mut label_of: Vec<u32> = Vec::with_capacity(rows);
        let mut leaders: Vec<u32> = Vec::new();
        let mut exact: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut near: HashMap<u16, Vec<u32>> = HashMap::new();
        for r in 0..rows {
            let v = row(r);
            let bits = xxhash_rust::xxh3::xxh3_64(bytemuck::cast_slice(v));
            let same = exact.get(&bits).and_then(|labels| {
                labels.iter().copied().find(|&l| bitwise_equal(row(leaders[l as usize] as usize), v))
            });
            if let Some(label) = same {
                label_of.push(label);
                continue;
            }
            let key = planes.key(v);
            let norm = dot(v, v);
            let close = near.get(&key).and_then(|labels| {
                labels.iter().rev().take(RECENT).copied().find(|&l| {
                    let leader = row(leaders[l as usize] as usize);
                    l2_squared(v, leader) <= TOLERANCE * norm.max(dot(leader, leader))
                })
            });
            let label = match close {
                Some(label) => label,
                None => {
                    let label = leaders.len() as u32;
                    leaders.push(r as u32);
                    exact.entry(bits).or_default().push(label);
                    near.entry(key).or_default().push(label);
                    label
                }
            };
            label_of.push(label);
        }
        if leaders.len() == rows {
            return None;
        }
        Some(Self::from_labels(&label_of, leaders.len()))
    }

    /// Counting sort of rows by label; rows stay in increasing order within a label.
    fn from_labels(label_of: &[u32], labels: usize) -> Self {
        let mut starts = vec![0u32; labels + 1];
        for &l in label_of {
            starts[l as usize + 1] += 1;
        }
        for l in 0..labels {
            starts[l + 1] += starts[l];
        }
        let mut next = starts.clone();
        let mut members = vec![0u32; label_of.len()];
        for (r, &l) in label_of.iter().enumerate() {
            members[next[l as usize] as usize] = r as u32;
            next[l as usize] += 1;
        }
        Self { starts, members }
    }

    /// The grouping of `base_rows` rows grouped by `base` (`None`: one node per row) followed
    /// by `added_rows` rows grouped by `added`, whose nodes come after the base's: what a graph
    /// over the base extended with the added rows' nodes holds. `None` when every row has its
    /// own node.
    pub(crate) fn appended(
        base: Option<&Self>,
        base_rows: usize,
        added: Option<&Self>,
        added_rows: usize,
    ) -> Option<Self> {
        if base.is_none() && added.is_none() {
            return None;
        }
        let label_of = |groups: Option<&Self>, rows: usize, offset: usize| -> (Vec<u32>, usize) {
            match groups {
                None => ((0..rows).map(|r| (offset + r) as u32).collect(), rows),
                Some(groups) => {
                    let mut label_of = vec![0u32; rows];
                    for label in 0..groups.labels() {
                        for &row in groups.members(label) {
                            label_of[row as usize] = (offset + label) as u32;
                        }
                    }
                    (label_of, groups.labels())
                }
            }
        };
        let (mut labels, base_labels) = label_of(base, base_rows, 0);
        let (added_labels, added_count) = label_of(added, added_rows, base_labels);
        labels.extend(added_labels);
        Some(Self::from_labels(&labels, base_labels + added_count))
    }

    /// Rows, in all nodes.
    pub(crate) fn rows(&self) -> usize {
        self.members.len()
    }

    /// Graph nodes.
    pub(crate) fn labels(&self) -> usize {
        self.starts.len() - 1
    }

    /// The rows of node `label` (empty for a label out of range).
    pub(crate) fn members(&self, label: usize) -> &[u32] {
        match (self.starts.get(label), self.starts.get(label + 1)) {
            (Some(&from), Some(&to)) => &self.members[from as usize..to as usize],
            _ => &[],
        }
    }

    /// The row whose vector stands for each node, by label.
    pub(crate) fn representatives(&self) -> impl Iterator<Item = usize> + '_ {
        self.starts[..self.labels()].iter().map(|&start| self.members[start as usize] as usize)
    }

    /// Bytes in memory.
    pub(crate) fn bytes(&self) -> usize {
        (self.starts.len() + self.members.len()) * 4
    }

    /// The section written after FAISS's bytes: magic, labels (u64), rows (u64), `starts`
    /// (labels + 1 u32) and `members` (rows u32), little endian.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.labels() as u64).to_le_bytes());
        out.extend_from_slice(&(self.members.len() as u64).to_le_bytes());
        for word in self.starts.iter().chain(&self.members) {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }

    /// Reads [`Groups::encode`]'s section for a graph of `labels` nodes over `rows` rows,
    /// checking that it is one: every row in exactly one node, every node non-empty, rows in
    /// increasing order within a node.
    pub(crate) fn decode(bytes: &[u8], labels: usize, rows: usize) -> Result<Self> {
        let bad = |reason: String| Err(Error::Faiss { reason: format!("duplicate groups: {reason}") });
        let expected = MAGIC.len() + 16 + (labels + 1 + rows) * 4;
        if bytes.len() != expected || !bytes.starts_with(MAGIC) {
            return bad(format!("{} bytes, expected {expected} starting with {MAGIC:?}", bytes.len()));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        if u64_at(8) != labels as u64 || u64_at(16) != rows as u64 {
            return bad(format!(
                "for {} nodes over {} rows, the index has {labels} over {rows}",
                u64_at(8),
                u64_at(16)
            ));
        }
        let words: Vec<u32> =
            bytes[24..].chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
        let (starts, members) = words.split_at(labels + 1);
        if starts[0] != 0 || starts[labels] as usize != rows || starts.windows(2).any(|w| w[0] >= w[1]) {
            return bad("node boundaries out of order".into());
        }
        let mut seen = vec![false; rows];
        for label in 0..labels {
            let group = &members[starts[label] as usize..starts[label + 1] as usize];
            if group.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!("node {label}'s rows out of order"));
            }
            for &r in group {
                match seen.get_mut(r as usize) {
                    Some(s) if !*s => *s = true,
                    _ => return bad(format!("row {r} out of range or in two nodes")),
                }
            }
        }
        Ok(Self { starts: starts.to_vec(), members: members.to_vec() })
    }
}

fn bitwise_equal(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// `KEY_BITS` fixed pseudo-random sign vectors: a row's key is which side of each hyperplane it
/// lies on, so rows at a tiny angle share it unless one of them sits on a plane.
struct Planes {
    dim: usize,
    signs: Vec<f32>,
}

impl Planes {
    fn new(dim: usize) -> Self {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let signs = (0..KEY_BITS * dim)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if state & 1 == 0 { 1.0 } else { -1.0 }
            })
            .collect();
        Self { dim, signs }
    }

    fn key(&self, v: &[f32]) -> u16 {
        let mut key = 0u16;
        for (bit, plane) in self.signs.chunks_exact(self.dim).enumerate() {
            if dot(plane, v) >= 0.0 {
                key |= 1 << bit;
            }
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(state: &mut u64) -> f32 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    #[test]
    fn distinct_rows_need_no_groups() {
        let mut state = 7;
        let vectors: Vec<f32> = (0..64 * 300).map(|_| noise(&mut state)).collect();
        assert_eq!(Groups::find(&vectors, 64), None);
    }

    #[test]
    fn exact_and_near_copies_share_a_node_in_row_order() {
        let dim = 48;
        let mut state = 11;
        let bases: Vec<Vec<f32>> = (0..3).map(|_| (0..dim).map(|_| noise(&mut state)).collect()).collect();
        let mut vectors = Vec::new();
        let mut expected: Vec<Vec<u32>> = vec![Vec::new(); 4];
        for r in 0..40u32 {
            let group = (r % 4) as usize;
            let v: Vec<f32> = match group {
                3 => (0..dim).map(|_| noise(&mut state)).collect(), // distinct each time
                g if r % 3 == 0 => bases[g].clone(),
                g => bases[g].iter().map(|x| x + noise(&mut state) * 1e-6).collect(),
            };
            vectors.extend(v);
            expected[group].push(r);
        }
        let groups = Groups::find(&vectors, dim).expect("copies");
        assert_eq!(groups.labels(), 3 + 10, "three repeated vectors and ten distinct ones");
        for rows in expected.iter().take(3) {
            let label = (0..groups.labels()).find(|&l| groups.members(l)[0] == rows[0]).unwrap();
            assert_eq!(groups.members(label), rows.as_slice());
        }
        let reps: Vec<usize> = groups.representatives().collect();
        assert_eq!(reps.len(), groups.labels());
        assert!(reps.windows(2).all(|w| w[0] < w[1]), "labels in order of their first row");
    }

    #[test]
    fn appended_groups_number_the_added_nodes_after_the_base() {
        let base = Groups::from_labels(&[0, 1, 0], 2); // rows 0 and 2 share node 0
        let added = Groups::from_labels(&[0, 0], 1); // both added rows share one node
        let both = Groups::appended(Some(&base), 3, Some(&added), 2).unwrap();
        assert_eq!(both.labels(), 3);
        assert_eq!((both.members(0), both.members(1), both.members(2)), (&[0, 2][..], &[1][..], &[3, 4][..]));
        let plain_base = Groups::appended(None, 2, Some(&added), 2).unwrap();
        assert_eq!((plain_base.members(1), plain_base.members(2)), (&[1][..], &[2, 3][..]));
        let plain_added = Groups::appended(Some(&base), 3, None, 2).unwrap();
        assert_eq!((plain_added.labels(), plain_added.members(3)), (4, &[4][..]));
        assert_eq!(Groups::appended(None, 3, None, 2), None);
    }

    #[test]
    fn a_vector_and_its_multiple_are_not_duplicates() {
        let v = [0.6f32, 0.8, 0.0];
        let vectors: Vec<f32> = v.iter().chain(v.iter().map(|x| x * 2.0).collect::<Vec<_>>().iter()).copied().collect();
        assert_eq!(Groups::find(&vectors, 3), None, "same direction, other norm: distinct under L2 and IP");
    }

    #[test]
    fn encoding_round_trips_and_damage_is_refused() {
        let dim = 4;
        let vectors: Vec<f32> = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]].concat();
        let groups = Groups::find(&vectors, dim).unwrap();
        assert_eq!((groups.labels(), groups.members(0), groups.members(1)), (2, &[0u32, 2][..], &[1u32][..]));
        let mut bytes = Vec::new();
        groups.encode(&mut bytes);
        assert_eq!(Groups::decode(&bytes, 2, 3).unwrap(), groups);
        assert!(Groups::decode(&bytes, 3, 3).is_err(), "wrong node count");
        assert!(Groups::decode(&bytes[..bytes.len() - 1], 2, 3).is_err(), "truncated");
        for at in 24..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(Groups::decode(&damaged, 2, 3).is_err(), "a flipped bit at {at} is caught");
        }
    }
}
