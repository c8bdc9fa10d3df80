//! Splitting a document into chunks: by headings, then by size with overlap.
//!
//! A section runs from one heading to the next (Markdown `#` headings, reStructuredText titles
//! underlined with punctuation; plain text has none). A section longer than `max_chars` is cut
//! into windows of at most `max_chars`, each starting `overlap` characters before the previous one
//! ended, at a paragraph, line or word boundary where there is one. Every chunk keeps the path of
//! headings above it, so a hit can say where it comes from.

/// Markup of a document, from its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Rst,
    Text,
}

impl Format {
    /// From a file name (a trailing `.gz` is ignored); `None` for files that are not documents.
    pub fn of(name: &str) -> Option<Format> {
        let name = name.strip_suffix(".gz").unwrap_or(name).to_ascii_lowercase();
        if name.ends_with(".rst.txt") {
            return Some(Format::Rst); // Sphinx's copies of its sources (`_sources/*.rst.txt`)
        }
        let ext = name.rsplit_once('.')?.1;
        match ext {
            "md" | "markdown" => Some(Format::Markdown),
            "rst" => Some(Format::Rst),
            "txt" => Some(Format::Text),
            _ => None,
        }
    }
}

/// How to chunk.
#[derive(Clone, Copy, Debug)]
pub struct ChunkSize {
    pub max_chars: usize,
    pub overlap: usize,
}

impl Default for ChunkSize {
    fn default() -> Self {
        Self { max_chars: 1200, overlap: 150 }
    }
}

impl ChunkSize {
    /// The smallest chunk allowed: a few words; smaller chunks carry no meaning of their own.
    pub const MIN_CHARS: usize = 64;

    /// Chunks of at most `max_chars` characters (at least [`ChunkSize::MIN_CHARS`]), each
    /// repeating `overlap` characters of the one before (at most half of `max_chars`, or every
    /// window would mostly repeat the last).
    pub fn new(max_chars: usize, overlap: usize) -> Result<Self, String> {
        if max_chars < Self::MIN_CHARS {
            return Err(format!(
                "--max-chars {max_chars} is too small: chunks need at least {} characters",
                Self::MIN_CHARS
            ));
        }
        if overlap > max_chars / 2 {
            return Err(format!(
                "--overlap {overlap} is more than half of --max-chars {max_chars}: at most {} characters",
                max_chars / 2
            ));
        }
        Ok(Self { max_chars, overlap })
    }
}

/// One piece of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Headings above it, outermost first, joined by " > ".
    pub heading: String,
    pub text: String,
}

/// Sections shorter than this (in characters) are joined to the next one: a lone label or
/// directive (`.. _datamodel:`) makes a poor chunk of its own.
const MIN_SECTION_CHARS: usize = 80;

/// `text` in pieces. Empty and whitespace-only sections make none.
pub fn chunk(text: &str, format: Format, size: ChunkSize) -> Vec<Piece> {
    let size = ChunkSize { max_chars: size.max_chars.max(16), overlap: size.overlap.min(size.max_chars / 2) };
    let sections = sections(text, format);
    let last = sections.len().saturating_sub(1);
    let mut pieces = Vec::new();
    let mut carried = String::new();
    for (i, (heading, body)) in sections.into_iter().enumerate() {
        let body =
            if carried.is_empty() { body } else { format!("{}\n\n{}", std::mem::take(&mut carried).trim(), body) };
        if body.trim().chars().count() < MIN_SECTION_CHARS && i < last {
            carried = body;
            continue;
        }
        for window in windows(body.trim(), size) {
            pieces.push(Piece { heading: heading.clone(), text: window.to_owned() });
        }
    }
    pieces
}

/// (heading path, section text including its heading line) in document order.
fn sections(text: &str, format: Format) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut path: Vec<(usize, String)> = Vec::new(); // (level, title)
    let mut rst_levels: Vec<char> = Vec::new(); // underline characters in order of appearance
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let heading = match format {
            Format::Markdown => markdown_heading(line),
            Format::Rst => rst_heading(line, lines.get(i + 1).copied()).map(|(title, mark)| {
                let level = rst_levels.iter().position(|&c| c == mark).unwrap_or_else(|| {
                    rst_levels.push(mark);
                    rst_levels.len() - 1
                });
                (level + 1, title)
            }),
            Format::Text => None,
        };
        if let Some((level, title)) = heading {
            let joined = path.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" > ");
            out.push((joined, std::mem::take(&mut current)));
            path.retain(|(l, _)| *l < level);
            path.push((level, title.clone()));
            current.push_str(&title);
            current.push('\n');
            i += if format == Format::Rst { 2 } else { 1 };
            continue;
        }
        current.push_str(line);
        current.push('\n');
        i += 1;
    }
    out.push((path.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" > "), current));
    out.retain(|(_, body)| !body.trim().is_empty());
    out
}

/// `# Title` (up to six `#`, then a space).
fn markdown_heading(line: &str) -> Option<(usize, String)> {
    let level = line.bytes().take_while(|&b| b == b'#').count();
    let rest = &line[level..];
    ((1..=6).contains(&level) && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| (level, rest.trim().trim_end_matches('#').trim().to_owned()))
        .filter(|(_, t)| !t.is_empty())
}

/// A title line followed by an underline of one punctuation character, at least as long.
fn rst_heading(line: &str, next: Option<&str>) -> Option<(String, char)> {
    let next = next?.trim_end();
    let title = line.trim();
    let mark = next.chars().next()?;
    let underline = "=-~^\"'`#*+:.".contains(mark) && next.chars().all(|c| c == mark);
    (underline && !title.is_empty() && next.chars().count() >= title.chars().count() && next.len() >= 3)
        .then(|| (title.to_owned(), mark))
}

/// Windows of at most `size.max_chars` characters over `text`, overlapping by `size.overlap`,
/// cut at the last paragraph, line, sentence or word boundary inside each window.
fn windows(text: &str, size: ChunkSize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let limit = byte_after_chars(&text[start..], size.max_chars) + start;
        if limit >= text.len() {
            out.push(text[start..].trim());
            break;
        }
        let window = &text[start..limit];
        let floor = byte_after_chars(window, size.max_chars / 2);
        let cut = ["\n\n", "\n", ". ", " "]
            .iter()
            .filter_map(|sep| window.rfind(sep).map(|at| at + sep.len()).filter(|&at| at > floor))
            .next()
            .unwrap_or(window.len());
        out.push(text[start..start + cut].trim());
        // Step back by the overlap, then forward to a word start, so no word is cut in two.
        let next = start + cut;
        let mut back = next - byte_before_chars(&text[start..next], size.overlap);
        if let Some(space) = text[back..next].find(char::is_whitespace) {
            back += space;
        }
        start = if back > start { back } else { next };
        start += text[start..].len() - text[start..].trim_start().len();
    }
    out.retain(|w| !w.is_empty());
    out
}

/// The byte offset after the first `n` characters of `s` (or its length).
fn byte_after_chars(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

/// How many bytes the last `n` characters of `s` take.
fn byte_before_chars(s: &str, n: usize) -> usize {
    s.char_indices().rev().nth(n.saturating_sub(1)).map_or(s.len(), |(i, _)| s.len() - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_sections_carry_their_heading_path() {
        let long = |s: &str| format!("{s} {}", "words ".repeat(20));
        let doc = format!(
            "{}\n# Install\n{}\n## Linux\n{}\n# Use\n{}\n",
            long("intro"),
            long("run it"),
            long("apt install"),
            long("call it")
        );
        let pieces = chunk(&doc, Format::Markdown, ChunkSize::default());
        let got: Vec<(&str, &str)> =
            pieces.iter().map(|p| (p.heading.as_str(), p.text.split_whitespace().nth(1).unwrap_or(""))).collect();
        assert_eq!(got, [("", "words"), ("Install", "run"), ("Install > Linux", "apt"), ("Use", "call")]);
        assert!(pieces[1].text.starts_with("Install\n"), "a section starts with its heading");
    }

    #[test]
    fn short_sections_join_the_next_one() {
        let doc = format!(".. _label:\n\nTitle\n=====\n\n{}\n", "body text ".repeat(20));
        let pieces = chunk(&doc, Format::Rst, ChunkSize::default());
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        assert!(pieces[0].text.starts_with(".. _label:") && pieces[0].text.contains("body text"));
        assert_eq!(pieces[0].heading, "Title");
    }

    #[test]
    fn rst_titles_by_underline_order() {
        let body = "text ".repeat(30);
        let doc = format!("Guide\n=====\n\n{body}\n\nPart\n----\n\n{body}\n\nOther\n=====\n\n{body}\n");
        let pieces = chunk(&doc, Format::Rst, ChunkSize::default());
        let headings: Vec<&str> = pieces.iter().map(|p| p.heading.as_str()).collect();
        assert_eq!(headings, ["Guide", "Guide > Part", "Other"]);
    }

    #[test]
    fn long_sections_are_windowed_with_overlap_at_word_boundaries() {
        let text: String = (0..400).map(|i| format!("word{i} ")).collect();
        let size = ChunkSize { max_chars: 200, overlap: 40 };
        let pieces = chunk(&text, Format::Text, size);
        assert!(pieces.len() > 10);
        for (a, b) in pieces.iter().zip(pieces.iter().skip(1)) {
            assert!(a.text.chars().count() <= 200);
            let last_word = a.text.split_whitespace().last().unwrap();
            assert!(b.text.contains(last_word), "overlap: {last_word} not in the next window");
            assert!(b.text.split_whitespace().all(|w| w.starts_with("word")), "no word cut in two");
        }
        let all: String = pieces.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join(" ");
        assert!(all.contains("word0 ") && all.contains("word399"), "nothing lost");
    }

    #[test]
    fn odd_inputs_make_no_empty_pieces_and_never_panic() {
        for doc in ["", "\n\n\n", "#", "# \n", "====\n====\n", "é".repeat(5000).as_str(), "a\u{0}b"] {
            for format in [Format::Markdown, Format::Rst, Format::Text] {
                for piece in chunk(doc, format, ChunkSize { max_chars: 100, overlap: 30 }) {
                    assert!(!piece.text.trim().is_empty(), "{doc:?} {format:?}");
                }
            }
        }
        assert_eq!(Format::of("a/b/README.md.gz"), Some(Format::Markdown));
        assert_eq!(Format::of("x.RST"), Some(Format::Rst));
        assert_eq!(Format::of("_sources/library/os.rst.txt"), Some(Format::Rst));
        assert_eq!(Format::of("image.png"), None);
    }
}
