//! The concept vocabulary: how often each term occurs in indexed text, bounded in size.
//!
//! Writers register a chunk's terms after their mutation is complete, outside every critical
//! section of the index. Once `limit` distinct terms are known, new terms are no longer admitted
//! (known terms keep counting), so memory stays bounded whatever is indexed.

use crate::sync::ShardedMap;

/// Bounded concurrent term counts.
pub struct Vocabulary {
    counts: ShardedMap<String, u64>,
    limit: usize,
}

impl Vocabulary {
    pub fn new(limit: usize) -> Self {
        Self { counts: ShardedMap::new(), limit }
    }

    /// Counts the terms of `text`: lower-cased alphanumeric words of 3 to 32 characters.
    pub fn register(&self, text: &str) {
        for term in terms(text) {
            if let Some(mut count) = self.counts.get_mut(term.as_str()) {
                *count += 1;
            } else if self.counts.len() < self.limit {
                *self.counts.entry(term).or_insert(0) += 1;
            }
        }
    }

    /// Grows the shards about to fill, off the write path ([`crate::maps::grow_ahead`]).
    pub fn grow_ahead(&self) -> usize {
        crate::maps::grow_ahead(&self.counts)
    }

    /// Distinct terms known.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// The `n` most frequent terms, most frequent first (ties by term).
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self.counts.iter().map(|e| (e.key().clone(), *e.value())).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| (3..=32).contains(&w.chars().count())).map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_terms_and_stays_bounded() {
        let v = Vocabulary::new(3);
        v.register("Lock-free lock free, the of a");
        v.register("alpha beta gamma delta");
        assert_eq!(v.len(), 3);
        assert_eq!(v.top(1), vec![("free".to_owned(), 2)]);
        v.register("lock lock");
        assert_eq!(v.top(1), vec![("lock".to_owned(), 4)]);
    }
}
