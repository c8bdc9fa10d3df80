//! Words of a text, and the function words that say little about what a text is about: what the
//! hashing embedder weighs, and what decides whether a query can be searched at all.

use crate::error::{Error, Result};

/// The words of `text` (runs of letters and digits), as they appear.
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// Whether `word` (lower case) is a common English function word ("the", "how", "do", ...).
pub(crate) fn is_stop_word(word: &str) -> bool {
    const STOP: &[&str] = &[
        "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
        "could", "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it",
        "its", "me", "my", "no", "not", "of", "on", "or", "our", "should", "so", "some", "such", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when",
        "where", "which", "who", "why", "will", "with", "would", "you", "your",
    ];
    STOP.binary_search(&word).is_ok()
}

/// Checks that `query` has something to search for: at least one word that is not a function
/// word. An empty, blank or function-word-only query would otherwise match arbitrary chunks
/// with a middling score.
///
/// # Errors
/// [`Error::EmptyQuery`].
pub fn check_query(query: &str) -> Result<()> {
    let lower = query.to_lowercase();
    if words(&lower).any(|w| !is_stop_word(w)) {
        return Ok(());
    }
    Err(Error::EmptyQuery { query: query.chars().take(80).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_word_list_is_sorted() {
        // `is_stop_word` binary-searches it.
        assert!(is_stop_word("the") && is_stop_word("a") && is_stop_word("your") && !is_stop_word("file"));
    }

    #[test]
    fn queries_need_a_content_word() {
        for bad in ["", "   ", "\n\t", "!!!", "the", "How do I", "what is it?"] {
            assert!(matches!(check_query(bad), Err(Error::EmptyQuery { .. })), "{bad:?}");
        }
        for good in ["open a file", "Mutex", "HTTP 2", "why asyncio"] {
            check_query(good).unwrap();
        }
    }
}
