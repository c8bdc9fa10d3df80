//! Splitting a document into chunks sized for the embedder: by headings, then by size with overlap.
//!
//! A section runs from one heading to the next. Markdown is parsed (CommonMark with GitHub's
//! extensions, by pulldown-cmark), so a `#` line inside a fenced or indented code block or an HTML
//! block is no heading: the ATX (`## Title`) and setext (`Title` over `---`) headings of the
//! document's top level start sections, and their levels make the heading path.
//! reStructuredText titles are found by their underline of punctuation (the order in which the
//! underline characters first appear gives the levels); plain text has no headings.
//!
//! Each section is then cut to size by text-splitter: its Markdown splitter for Markdown (a code
//! block, list or paragraph stays whole when it fits, else it is cut at the largest unit that
//! fits: lines, sentences, words), its text splitter for the others (paragraphs, lines,
//! sentences, words). Consecutive chunks of a section repeat `overlap` units. Sizes are in the
//! embedder's unit ([`Embedder::count_tokens`]: word pieces, `[CLS]` and `[SEP]` included, for a
//! model with a window; characters for an embedder without one), measured on what is embedded:
//! the heading path, a newline, then the chunk ([`Piece::embedded`]). So no chunk is cut off by
//! the model's window. A word too long for a chunk is cut by graphemes; a chunk the splitter left
//! too long (it assumes a text has no more units than bytes) is cut again until it fits.

use std::cell::RefCell;
use std::collections::HashMap;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use text_splitter::{ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use vecindex::embed::Embedder;

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

/// How large chunks are, in the embedder's unit (see [`Embedder::count_tokens`]): word pieces
/// for a model with a window, characters for an embedder without one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSize {
    /// The most units of what is embedded for a chunk (heading path included).
    pub max: usize,
    /// Units a chunk repeats from the one before it in the same section.
    pub overlap: usize,
}

impl Default for ChunkSize {
    /// For an embedder without a window: 1200 characters, overlap 150.
    fn default() -> Self {
        Self { max: Self::DEFAULT_MAX_CHARS, overlap: Self::DEFAULT_MAX_CHARS / 8 }
    }
}

impl ChunkSize {
    /// The smallest chunk in characters: a few words; smaller chunks carry no meaning of their own.
    pub const MIN_CHARS: usize = 64;
    /// The smallest chunk in word pieces (about as much text as [`ChunkSize::MIN_CHARS`]).
    pub const MIN_TOKENS: usize = 32;
    /// `--max-chars` when not given.
    pub const DEFAULT_MAX_CHARS: usize = 1200;

    /// The size from the command line: `--max-tokens` (default: the window, and never more) for
    /// an embedder with a window, `--max-chars` (default 1200) for one without, and `--overlap`
    /// (default an eighth of the largest chunk, at most half of it).
    pub fn for_embedder(
        embedder: &dyn Embedder,
        max_tokens: Option<usize>,
        max_chars: Option<usize>,
        overlap: Option<usize>,
    ) -> Result<Self, String> {
        let name = embedder.name();
        let (max, flag) = match (embedder.window(), max_tokens, max_chars) {
            (Some(window), _, Some(_)) => {
                return Err(format!(
                    "--max-chars is for embedders without a window; {name} counts word pieces: \
                     use --max-tokens (at most {window})"
                ));
            }
            (None, Some(_), _) => {
                return Err(format!(
                    "--max-tokens is for embedders with a window of word pieces; {name} measures \
                     characters: use --max-chars"
                ));
            }
            (Some(window), tokens, None) => {
                let max = tokens.unwrap_or(window);
                if max > window {
                    return Err(format!(
                        "--max-tokens {max} is more than the window of {name}: {window} word pieces \
                         ([CLS] and [SEP] included); the rest would be cut off before embedding"
                    ));
                }
                if max < Self::MIN_TOKENS {
                    return Err(format!(
                        "--max-tokens {max} is too small: chunks need at least {} word pieces",
                        Self::MIN_TOKENS
                    ));
                }
                (max, "--max-tokens")
            }
            (None, None, chars) => {
                let max = chars.unwrap_or(Self::DEFAULT_MAX_CHARS);
                if max < Self::MIN_CHARS {
                    return Err(format!(
                        "--max-chars {max} is too small: chunks need at least {} characters",
                        Self::MIN_CHARS
                    ));
                }
                (max, "--max-chars")
            }
        };
        let overlap = overlap.unwrap_or(max / 8);
        if overlap > max / 2 {
            return Err(format!(
                "--overlap {overlap} is more than half of {flag} {max}: at most {} (or every chunk would \
                 mostly repeat the last)",
                max / 2
            ));
        }
        Ok(Self { max, overlap })
    }
}

/// One piece of a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// Headings above it, outermost first, joined by " > ".
    pub heading: String,
    pub text: String,
}

impl Piece {
    /// What is embedded for it: the heading path, a newline and the text (the text alone when
    /// there is no heading). Chunks are sized on this.
    pub fn embedded(&self) -> String {
        embedded(&self.heading, &self.text)
    }
}

fn embedded(heading: &str, text: &str) -> String {
    if heading.is_empty() { text.to_owned() } else { format!("{heading}\n{text}") }
}

/// Sections shorter than this (in characters) are joined to the next one: a lone label or
/// directive (`.. _datamodel:`), or a heading with no text under it, makes a poor chunk of its own.
const MIN_SECTION_CHARS: usize = 80;

/// `text` in pieces of at most `size.max` characters (what is embedded, heading path included).
/// Empty and whitespace-only sections make none.
#[allow(dead_code)] // for the benchmarks' corpus (bench/src/corpus.rs), which has no embedder
pub fn chunk(text: &str, format: Format, size: ChunkSize) -> Vec<Piece> {
    split(text, format, size, &Chars)
}

/// `text` in pieces of at most `size.max` of `embedder`'s unit ([`Embedder::count_tokens`]) for
/// what is embedded ([`Piece::embedded`]).
///
/// # Errors
/// The embedder cannot count (its tokenizer does not load).
pub fn chunk_for(text: &str, format: Format, size: ChunkSize, embedder: &dyn Embedder) -> Result<Vec<Piece>, String> {
    // A model that does not load fails here, once.
    let empty = embedder.count_tokens("").map_err(|e| e.to_string())?;
    let words = embedder.window().map(|_| RefCell::new(HashMap::new()));
    let tokens = Tokens { embedder, empty, words, error: RefCell::new(None) };
    let pieces = split(text, format, size, &tokens);
    match tokens.error.into_inner() {
        Some(e) => Err(e),
        None => Ok(pieces),
    }
}

/// How chunks are measured.
trait Measure {
    /// The size of `text`.
    fn count(&self, text: &str) -> usize;
    /// The size of `text` as the splitter sees it, cheaper than [`Measure::count`] (by default
    /// the same). What is embedded for every chunk is measured with `count` in the end.
    fn estimate(&self, text: &str) -> usize {
        self.count(text)
    }
}

/// Characters.
#[allow(dead_code)] // see `chunk`
struct Chars;

impl Measure for Chars {
    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }
}

/// An embedder's [`Embedder::count_tokens`]; the first failure is kept (and characters counted
/// instead) for [`chunk_for`] to return.
///
/// The splitter measures many overlapping candidate chunks, and a tokenizer is slow (the Python
/// documentation would be tokenized about nine times over), so for an embedder with a window
/// (whose unit is word pieces) the estimate counts each distinct word once: a text's size is that
/// of an empty text (`[CLS]` and `[SEP]`) plus the word pieces of each of its whitespace-separated
/// words. That is exact for BERT's word pieces (its tokenizer splits at whitespace first and never
/// joins across it), and for another tokenizer only an estimate: [`fit`] checks every chunk with
/// the real count. An embedder without a window counts characters, whitespace included: its
/// estimate is its count.
struct Tokens<'a> {
    embedder: &'a dyn Embedder,
    /// The size of an empty text.
    empty: usize,
    /// Word pieces of each word seen, without the empty text's (for an embedder with a window).
    words: Option<RefCell<HashMap<String, usize>>>,
    error: RefCell<Option<String>>,
}

impl Measure for Tokens<'_> {
    fn count(&self, text: &str) -> usize {
        self.embedder.count_tokens(text).unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert_with(|| e.to_string());
            text.chars().count()
        })
    }

    fn estimate(&self, text: &str) -> usize {
        let Some(words) = &self.words else { return self.count(text) };
        let mut words = words.borrow_mut();
        let mut total = self.empty;
        for word in text.split_whitespace() {
            total += match words.get(word) {
                Some(&n) => n,
                None => {
                    let n = self.count(word).saturating_sub(self.empty);
                    words.insert(word.to_owned(), n);
                    n
                }
            };
        }
        total
    }
}

/// text-splitter's measure of a chunk: its units without those of an empty text (a model's
/// `[CLS]` and `[SEP]`), so that, like the splitter assumes, a text has no more units than bytes.
struct Sizer<'m, M> {
    measure: &'m M,
    empty: usize,
}

impl<M: Measure> ChunkSizer for Sizer<'_, M> {
    fn size(&self, chunk: &str) -> usize {
        self.measure.estimate(chunk).saturating_sub(self.empty)
    }
}

fn split<M: Measure>(text: &str, format: Format, size: ChunkSize, measure: &M) -> Vec<Piece> {
    let empty = measure.count("");
    let max = size.max.max(empty + 16);
    let sections = match format {
        Format::Markdown => markdown_sections(text),
        Format::Rst => rst_sections(text),
        Format::Text => vec![(Vec::new(), text.to_owned())],
    };
    let last = sections.len().saturating_sub(1);
    let mut pieces = Vec::new();
    let mut carried = String::new();
    for (i, (path, body)) in sections.into_iter().enumerate() {
        let body =
            if carried.is_empty() { body } else { format!("{}\n\n{}", std::mem::take(&mut carried).trim(), body) };
        if body.trim().chars().count() < MIN_SECTION_CHARS && i < last {
            carried = body;
            continue;
        }
        // The heading path takes at most half of the room; the section's text the rest.
        let heading = fit_heading(&path, (max - empty) / 2, measure, empty);
        let prefix = if heading.is_empty() { 0 } else { measure.count(&format!("{heading}\n")).saturating_sub(empty) };
        let capacity = (max - empty).saturating_sub(prefix).max(1);
        for chunk in cut(&body, format, capacity, size.overlap, &Sizer { measure, empty }) {
            for text in fit(chunk, &heading, max, measure) {
                pieces.push(Piece { heading: heading.clone(), text });
            }
        }
    }
    pieces
}

/// `body` in chunks of at most `capacity` by `sizer` (so far as text-splitter's estimate goes),
/// each repeating up to `overlap` of the one before. A short chunk (a title over a paragraph too
/// long for one chunk, a line that leads into a long code block) runs on into the next one: when
/// both do not fit together, the rest of the section is cut again with room left for it.
fn cut<'b, S: ChunkSizer>(body: &'b str, format: Format, capacity: usize, overlap: usize, sizer: &S) -> Vec<&'b str> {
    let split = |from: usize, capacity: usize| -> Vec<(usize, &'b str)> {
        let config = ChunkConfig::new(capacity)
            .with_overlap(overlap.min(capacity / 2))
            .unwrap_or_else(|_| ChunkConfig::new(capacity))
            .with_sizer(sizer);
        let text = body.get(from..).unwrap_or_default();
        let chunks: Vec<(usize, &str)> = match format {
            Format::Markdown => MarkdownSplitter::new(config).chunk_indices(text).collect(),
            Format::Rst | Format::Text => TextSplitter::new(config).chunk_indices(text).collect(),
        };
        chunks.into_iter().map(|(at, chunk)| (from + at, chunk)).collect()
    };
    let mut out = Vec::new();
    let mut chunks = split(0, capacity).into_iter().peekable();
    while let Some((start, chunk)) = chunks.next() {
        let short = chunk.chars().count() < MIN_SECTION_CHARS;
        let (Some(&(next, next_chunk)), true) = (chunks.peek(), short) else {
            out.push(chunk);
            continue;
        };
        let both = body.get(start..next + next_chunk.len()).unwrap_or(chunk);
        if sizer.size(both) <= capacity {
            out.push(both);
            chunks.next();
            continue;
        }
        let lead = sizer.size(body.get(start..next).unwrap_or(chunk));
        let room = capacity.saturating_sub(lead);
        let mut rest = if room >= capacity / 2 { split(next, room) } else { Vec::new() };
        match rest.first().copied() {
            Some((first, first_chunk)) if first >= next => {
                out.push(body.get(start..first + first_chunk.len()).unwrap_or(chunk));
                chunks = rest.split_off(1).into_iter().peekable();
            }
            _ => out.push(chunk),
        }
    }
    out
}

/// `chunk` (trimmed) as it is if what is embedded for it fits in `max` by the real count, else cut
/// where the longest prefix that fits ends (at a whitespace if one is near), and again for the
/// rest. The splitter's chunks all fit but for rare texts with more units than bytes, a single
/// grapheme too large for a chunk, or a tokenizer the word-by-word estimate undercounts.
fn fit<M: Measure>(chunk: &str, heading: &str, max: usize, measure: &M) -> Vec<String> {
    let mut rest = chunk.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        if measure.count(&embedded(heading, rest)) <= max {
            out.push(rest.to_owned());
            break;
        }
        let cut = longest_prefix(rest, |prefix| measure.count(&embedded(heading, prefix)) <= max);
        // At the last whitespace in it if there is one in its second half, so no word is cut.
        let cut = match rest[..cut].rfind(char::is_whitespace) {
            Some(space) if space > cut / 2 => space,
            _ => cut,
        };
        // At least one character, so that it ends: a single character over the limit (it takes a
        // heading of more than half of it and a character of more than the other half) is kept.
        let cut = if cut == 0 { rest.chars().next().map_or(rest.len(), char::len_utf8) } else { cut };
        let piece = rest[..cut].trim();
        if !piece.is_empty() {
            out.push(piece.to_owned());
        }
        rest = rest[cut..].trim_start();
    }
    out
}

/// The byte length of the longest prefix of `text`, at a character boundary, that `fits`
/// (binary search: `fits` is taken to hold for every prefix of one it holds for). 0 if none.
fn longest_prefix(text: &str, fits: impl Fn(&str) -> bool) -> usize {
    let ends: Vec<usize> = text.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
    let (mut lo, mut hi) = (0, ends.len()); // ends[..lo] fit; ends[hi..] do not
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(&text[..ends[mid]]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 { 0 } else { ends[lo - 1] }
}

/// The heading path joined by " > ", in at most `budget` units with its newline: the outermost
/// headings are left out while it is longer, and the innermost one cut if it alone is.
fn fit_heading<M: Measure>(path: &[String], budget: usize, measure: &M, empty: usize) -> String {
    let cost = |heading: &str| measure.count(&format!("{heading}\n")).saturating_sub(empty);
    for from in 0..path.len() {
        let heading = path[from..].join(" > ");
        if cost(&heading) <= budget {
            return heading;
        }
    }
    let Some(last) = path.last() else { return String::new() };
    let cut = longest_prefix(last, |prefix| cost(prefix) <= budget);
    last[..cut].trim().to_owned()
}

/// The options Markdown is parsed with (GitHub's extensions, front matter as metadata, heading
/// attributes), for the headings; text-splitter parses each section for its own units.
fn markdown_options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
        | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS
        | Options::ENABLE_GFM
}

/// (heading path, section source from its heading to the next) in document order, for the
/// headings at the top level of a Markdown document (not in a list or block quote; never in a
/// code block or HTML block, which have none). A heading without text starts no section.
fn markdown_sections(text: &str) -> Vec<(Vec<String>, String)> {
    let mut headings: Vec<(usize, usize, String)> = Vec::new(); // (level, start byte, title)
    let mut open: Option<(usize, usize, String)> = None;
    let mut depth = 0usize;
    for (event, range) in Parser::new_ext(text, markdown_options()).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) if depth == 0 => {
                open = Some((level as usize, range.start, String::new()));
                depth += 1;
            }
            Event::Start(_) => depth += 1,
            Event::End(TagEnd::Heading(_)) if depth == 1 => {
                depth = 0;
                if let Some((level, start, title)) = open.take() {
                    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
                    if !title.is_empty() {
                        headings.push((level, start, title));
                    }
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                if let Some((_, _, title)) = open.as_mut() {
                    title.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((_, _, title)) = open.as_mut() {
                    title.push(' ');
                }
            }
            _ => {}
        }
    }
    let slice = |from: usize, to: usize| text.get(from..to.max(from)).unwrap_or_default().to_owned();
    let mut out = vec![(Vec::new(), slice(0, headings.first().map_or(text.len(), |h| h.1)))];
    let mut path: Vec<(usize, String)> = Vec::new();
    for (i, (level, start, title)) in headings.iter().enumerate() {
        let end = headings.get(i + 1).map_or(text.len(), |h| h.1);
        path.retain(|(l, _)| l < level);
        path.push((*level, title.clone()));
        out.push((path.iter().map(|(_, t)| t.clone()).collect(), slice(*start, end)));
    }
    out.retain(|(_, body)| !body.trim().is_empty());
    out
}

/// (heading path, section text starting with its title) in document order, for reStructuredText.
fn rst_sections(text: &str) -> Vec<(Vec<String>, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut path: Vec<(usize, String)> = Vec::new(); // (level, title)
    let mut levels: Vec<char> = Vec::new(); // underline characters in order of appearance
    let mut out: Vec<(Vec<String>, String)> = Vec::new();
    let mut current = String::new();
    let titles = |path: &[(usize, String)]| path.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some((title, mark)) = rst_heading(line, lines.get(i + 1).copied()) {
            let level = levels.iter().position(|&c| c == mark).unwrap_or_else(|| {
                levels.push(mark);
                levels.len() - 1
            }) + 1;
            out.push((titles(&path), std::mem::take(&mut current)));
            path.retain(|(l, _)| *l < level);
            path.push((level, title.clone()));
            current.push_str(&title);
            current.push('\n');
            i += 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
        i += 1;
    }
    out.push((titles(&path), current));
    out.retain(|(_, body)| !body.trim().is_empty());
    out
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// The words (runs of letters and digits) of a text.
    fn words(text: &str) -> impl Iterator<Item = &str> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
    }

    /// The words of `text` no piece holds whole, at most `longest` characters long.
    fn lost_words(text: &str, pieces: &[Piece], longest: usize) -> Vec<String> {
        let kept: HashSet<&str> = pieces.iter().flat_map(|p| words(&p.text)).collect();
        let mut lost: Vec<String> =
            words(text).filter(|w| w.chars().count() <= longest && !kept.contains(w)).map(str::to_owned).collect();
        lost.dedup();
        lost
    }

    const CODE_DOC: &str = "\
Intro text before any heading, long enough to be a section of its own: it says what the guide is.

# Guide

The guide starts here and explains how to build the program and how to use it well.

## Build

Run the build script; it compiles everything:

```sh
# a shell comment, not a heading
## neither is this
make all
```

```c
#include <stdio.h>
# define DEBUG 1
int main(void) { return 0; }
```

~~~python
# Python comment
def main():
    ## still code
    pass
~~~

    # an indented code block
    echo indented

<div>
# inside an HTML block
</div>

> # a heading inside a block quote does not start a section

Usage
-----

Call the program with a file name, and it prints what it found in that file, line by line.

### Deep

Options that few people need: verbosity, colours and the like, each with its own flag.

Other
=====

The last part, a first-level setext heading, with text that is long enough on its own.
";

    #[test]
    fn markdown_sections_start_at_real_headings_only() {
        let pieces = chunk(CODE_DOC, Format::Markdown, ChunkSize::default());
        let got: Vec<(&str, &str)> =
            pieces.iter().map(|p| (p.heading.as_str(), p.text.lines().next().unwrap_or(""))).collect();
        assert_eq!(
            got,
            [
                (
                    "",
                    "Intro text before any heading, long enough to be a section of its own: it says what the guide is."
                ),
                ("Guide", "# Guide"),
                ("Guide > Build", "## Build"),
                ("Guide > Usage", "Usage"),
                ("Guide > Usage > Deep", "### Deep"),
                ("Other", "Other"),
            ],
            "{pieces:#?}"
        );
        let build = &pieces[2].text;
        for code in [
            "```sh\n# a shell comment, not a heading\n## neither is this\nmake all\n```",
            "```c\n#include <stdio.h>\n# define DEBUG 1\nint main(void) { return 0; }\n```",
            "~~~python\n# Python comment\ndef main():\n    ## still code\n    pass\n~~~",
            "    # an indented code block\n    echo indented",
            "<div>\n# inside an HTML block\n</div>",
            "> # a heading inside a block quote does not start a section",
        ] {
            assert!(build.contains(code), "{code:?} whole in the Build section:\n{build}");
        }
        assert!(lost_words(CODE_DOC, &pieces, usize::MAX).is_empty());
    }

    #[test]
    fn a_code_block_that_fits_stays_whole_when_its_section_is_cut() {
        let code = "```python\n# load the file\nimport json\n\n# parse it\ndata = json.load(open('x.json'))\n\n\
                    # print each key\nfor key in data:\n    print(key)\n```";
        let prose = |what: &str| format!("{what} {}", "and some more words about it ".repeat(6));
        let doc = format!(
            "# Title\n\n{}\n\n{code}\n\n{}\n\n~~~\n#include <x.h>\n# not a heading\n~~~\n\n{}\n",
            prose("First"),
            prose("Second"),
            prose("Third")
        );
        let size = ChunkSize { max: 300, overlap: 0 };
        let pieces = chunk(&doc, Format::Markdown, size);
        assert!(pieces.len() >= 3, "the section is cut: {pieces:#?}");
        assert!(pieces.iter().all(|p| p.heading == "Title"), "{pieces:#?}");
        assert!(pieces.iter().any(|p| p.text.contains(code)), "the code block whole in one chunk: {pieces:#?}");
        assert!(pieces.iter().any(|p| p.text.contains("~~~\n#include <x.h>\n# not a heading\n~~~")), "{pieces:#?}");
        for piece in &pieces {
            assert!(piece.embedded().chars().count() <= 300, "{piece:?}");
        }
    }

    #[test]
    fn markdown_heading_paths_nest_by_level() {
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
            pieces.iter().map(|p| (p.heading.as_str(), p.text.split_whitespace().nth(2).unwrap_or(""))).collect();
        assert_eq!(got, [("", "words"), ("Install", "run"), ("Install > Linux", "apt"), ("Use", "call")]);
        assert!(pieces[1].text.starts_with("# Install\n"), "a section starts with its heading");
        assert_eq!(pieces[2].embedded(), format!("Install > Linux\n{}", pieces[2].text));
    }

    #[test]
    fn short_sections_join_the_next_one() {
        let doc = format!(".. _label:\n\nTitle\n=====\n\n{}\n", "body text ".repeat(20));
        let pieces = chunk(&doc, Format::Rst, ChunkSize::default());
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        assert!(pieces[0].text.starts_with(".. _label:") && pieces[0].text.contains("body text"));
        assert_eq!(pieces[0].heading, "Title");
        // A Markdown heading with no text under it joins the next section.
        let doc = format!("# Install\n\n## Linux\n\n{}\n", "apt words ".repeat(20));
        let pieces = chunk(&doc, Format::Markdown, ChunkSize::default());
        assert_eq!(pieces.len(), 1, "{pieces:?}");
        assert_eq!(pieces[0].heading, "Install > Linux");
        assert!(pieces[0].text.starts_with("# Install\n\n## Linux"), "{pieces:?}");
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
    fn long_sections_are_cut_with_overlap_within_the_limit() {
        let text: String = (0..400).map(|i| format!("word{i} ")).collect();
        for format in [Format::Text, Format::Rst, Format::Markdown] {
            for (heading, doc) in
                [("", text.clone()), ("Some heading", format!("Some heading\n============\n\n{text}"))]
            {
                let size = ChunkSize { max: 200, overlap: 40 };
                let pieces = chunk(&doc, format, size);
                assert!(pieces.len() > 10, "{format:?}");
                let heading = if format == Format::Text { "" } else { heading };
                for piece in &pieces {
                    assert_eq!(piece.heading, heading, "{format:?}");
                    assert!(piece.embedded().chars().count() <= 200, "{format:?} {piece:?}");
                }
                for (a, b) in pieces.iter().zip(pieces.iter().skip(1)) {
                    let last_word = a.text.split_whitespace().last().unwrap();
                    assert!(last_word.starts_with("word"), "{format:?}: a title runs on into the text: {a:?}");
                    assert!(b.text.contains(last_word), "{format:?} overlap: {last_word} not in the next window");
                }
                let all: HashSet<&str> = pieces.iter().flat_map(|p| p.text.split_whitespace()).collect();
                for i in 0..400 {
                    assert!(all.contains(format!("word{i}").as_str()), "{format:?}: word{i} lost or cut in two");
                }
            }
        }
    }

    #[test]
    fn a_long_heading_path_takes_at_most_half_of_a_chunk() {
        let title = "very long title ".repeat(40);
        let doc = format!("# {title}\n\n## second {title}\n\n{}", "body words ".repeat(100));
        let size = ChunkSize { max: 100, overlap: 10 };
        let pieces = chunk(&doc, Format::Markdown, size);
        assert!(!pieces.is_empty());
        for piece in &pieces {
            assert!(piece.heading.chars().count() < 50, "{piece:?}");
            assert!(piece.embedded().chars().count() <= 100, "{piece:?}");
        }
    }

    /// Odd documents made of odd fragments, from a fixed seed.
    fn adversarial_documents(count: usize) -> Vec<String> {
        const FRAGMENTS: &[&str] = &[
            "# heading\n",
            "## \n",
            "#\n",
            "####### seven\n",
            "```\n",
            "```python\n",
            "~~~\n",
            "    # indented\n",
            "#include <stdio.h>\n",
            "Title\n=====\n",
            "-----\n",
            "====\n",
            "\r\n",
            "\n\n",
            "é",
            "日本語の文章。",
            "🦀🦀",
            "a\u{0}b",
            " \t ",
            "word ",
            "a sentence of several words. ",
            "> # quoted\n",
            "<div>\n",
            "</div>\n",
            "* item\n",
            "1. one\n",
            "| a | b |\n|---|---|\n| 1 | 2 |\n",
            "[link](http://example.com/x)",
            "`code`",
            ".. _label:\n",
            "::\n\n    literal\n",
            "e\u{301}\u{302}\u{303}",
            "\u{200b}",
            "---\ntitle: x\n---\n",
            "<!-- comment\n# not a heading\n-->\n",
            "\\# escaped\n",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        (0..count)
            .map(|_| {
                let mut doc = String::new();
                for _ in 0..next(60) {
                    match next(20) {
                        0 => doc.push_str(&"x".repeat(next(3000))),
                        1 => doc.push_str(&"ab ".repeat(next(1000))),
                        _ => doc.push_str(FRAGMENTS[next(FRAGMENTS.len())]),
                    }
                }
                doc
            })
            .collect()
    }

    #[test]
    fn odd_inputs_never_panic_and_respect_the_limit() {
        let mut docs: Vec<String> = [
            "",
            "\n\n\n",
            "#",
            "# \n",
            "# Only\n## Headings\n### Here\n",
            "Title\n=====\n",
            "```\n# code only\n```\n",
            "```\nunclosed fence\n# x\n",
            "====\n====\n",
            "# Heading\r\n\r\nCRLF text\r\n## Sub\r\nmore\r\n",
            "a\u{0}b",
        ]
        .map(str::to_owned)
        .into();
        docs.push("é".repeat(5000));
        docs.push("x".repeat(10_000));
        docs.push(format!("# {}\n{}", "h".repeat(3000), "y".repeat(3000)));
        docs.extend(adversarial_documents(150));
        for doc in &docs {
            for format in [Format::Markdown, Format::Rst, Format::Text] {
                for size in
                    [ChunkSize { max: 64, overlap: 30 }, ChunkSize { max: 300, overlap: 40 }, ChunkSize::default()]
                {
                    let pieces = chunk(doc, format, size);
                    for piece in &pieces {
                        assert!(!piece.text.trim().is_empty(), "{doc:?} {format:?}");
                        let n = piece.embedded().chars().count();
                        assert!(n <= size.max, "{n} > {} characters: {piece:?} of {doc:?} {format:?}", size.max);
                    }
                    let lost = lost_words(doc, &pieces, 10);
                    assert!(lost.is_empty(), "{lost:?} lost from {doc:?} {format:?} {size:?}: {pieces:#?}");
                }
            }
        }
        assert_eq!(Format::of("a/b/README.md.gz"), Some(Format::Markdown));
        assert_eq!(Format::of("x.RST"), Some(Format::Rst));
        assert_eq!(Format::of("_sources/library/os.rst.txt"), Some(Format::Rst));
        assert_eq!(Format::of("image.png"), None);
    }

    #[test]
    fn an_embedder_without_a_window_chunks_by_characters() {
        let hashing = vecindex::embed::HashingEmbedder::default();
        let mut docs = vec![CODE_DOC.to_owned(), "word ".repeat(2000)];
        docs.extend(adversarial_documents(20));
        for doc in &docs {
            for format in [Format::Markdown, Format::Rst, Format::Text] {
                for size in [ChunkSize { max: 200, overlap: 40 }, ChunkSize::default()] {
                    let by_embedder = chunk_for(doc, format, size, &hashing).unwrap();
                    assert_eq!(by_embedder, chunk(doc, format, size), "{format:?} {size:?}");
                }
            }
        }
    }

    #[test]
    fn sizes_from_the_command_line() {
        let hashing = vecindex::embed::HashingEmbedder::default();
        let size = |tokens, chars, overlap| ChunkSize::for_embedder(&hashing, tokens, chars, overlap);
        assert_eq!(size(None, None, None), Ok(ChunkSize { max: 1200, overlap: 150 }));
        assert_eq!(size(None, Some(400), None), Ok(ChunkSize { max: 400, overlap: 50 }));
        assert_eq!(size(None, Some(64), Some(32)), Ok(ChunkSize { max: 64, overlap: 32 }));
        for (tokens, chars, overlap, message) in [
            (Some(100), None, None, "--max-tokens is for embedders with a window"),
            (None, Some(63), None, "--max-chars 63 is too small"),
            (None, Some(200), Some(101), "--overlap 101 is more than half of --max-chars 200"),
            (None, None, Some(1200), "more than half"),
        ] {
            let got = size(tokens, chars, overlap).unwrap_err();
            assert!(got.contains(message), "{got}");
        }
    }

    /// An embedder with a window of word pieces, counted as words plus two: the rules for
    /// `--max-tokens`, without a model.
    struct Windowed;

    impl Embedder for Windowed {
        fn name(&self) -> &str {
            "windowed"
        }
        fn dim(&self) -> usize {
            1
        }
        fn embed(&self, texts: &[&str]) -> vecindex::Result<Vec<Vec<f32>>> {
            Ok(texts.iter().map(|_| vec![1.0]).collect())
        }
        fn window(&self) -> Option<usize> {
            Some(256)
        }
        fn count_tokens(&self, text: &str) -> vecindex::Result<usize> {
            Ok(2 + words(text).count() + text.chars().filter(|c| c.is_ascii_punctuation()).count())
        }
    }

    #[test]
    fn sizes_for_an_embedder_with_a_window() {
        let size = |tokens, chars, overlap| ChunkSize::for_embedder(&Windowed, tokens, chars, overlap);
        assert_eq!(size(None, None, None), Ok(ChunkSize { max: 256, overlap: 32 }));
        assert_eq!(size(Some(128), None, Some(0)), Ok(ChunkSize { max: 128, overlap: 0 }));
        for (tokens, chars, overlap, message) in [
            (Some(257), None, None, "--max-tokens 257 is more than the window of windowed: 256 word pieces"),
            (Some(31), None, None, "--max-tokens 31 is too small"),
            (None, Some(1000), None, "--max-chars is for embedders without a window"),
            (Some(100), None, Some(51), "--overlap 51 is more than half of --max-tokens 100"),
        ] {
            let got = size(tokens, chars, overlap).unwrap_err();
            assert!(got.contains(message), "{got}");
        }
        // Pieces fit the window in its unit, heading included.
        let doc = format!("# Title words here\n\n{}", "many small words, with commas. ".repeat(300));
        let pieces = chunk_for(&doc, Format::Markdown, ChunkSize { max: 64, overlap: 8 }, &Windowed).unwrap();
        assert!(pieces.len() > 10);
        for (i, piece) in pieces.iter().enumerate() {
            let n = Windowed.count_tokens(&piece.embedded()).unwrap();
            assert!(n <= 64, "{n}: {piece:?}");
            assert!(n >= 48 || i == pieces.len() - 1, "chunks are filled, not tiny: {n}: {piece:?}");
        }
    }
}
