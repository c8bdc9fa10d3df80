//! A search's filters compiled against one sealed segment's field columns ([`super::fields`]).
//!
//! Compiling turns each part of the filter into a test on a column (a code compared, a number
//! ordered against a bound) and knows, from the same columns, how many rows each part lets
//! through and which: a keyword's rows are listed, a range's are a slice of the sorted numbers.
//! A search uses that to choose between walking the graph with the test as its filter callback
//! and scoring only the rows the columns list (when they are few, that is both exact and
//! cheaper). Parts the columns cannot answer (equality with a whole list) test the row itself
//! with [`Filter::matches`], so a compiled filter passes exactly the rows the filter does.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::metadata::{Filter, Value};
use crate::query::SearchOptions;
use crate::rows::{RowRef, SealedRows};
use crate::segment::fields::{FieldIndex, Keywords, Number};
use crate::sync::Arc;

/// Which orders of (row value, bound) pass a range test.
#[derive(Clone, Copy)]
struct Wanted {
    less: bool,
    equal: bool,
    greater: bool,
}

impl Wanted {
    fn admits(self, order: Ordering) -> bool {
        match order {
            Ordering::Less => self.less,
            Ordering::Equal => self.equal,
            Ordering::Greater => self.greater,
        }
    }
}

/// One compiled part of a filter.
enum Test<'a> {
    Const(bool),
    /// The row's code is one of `set` (ascending); `postings` are the rows of those codes.
    Codes {
        codes: &'a [u32],
        set: Vec<u32>,
        postings: Vec<&'a [u32]>,
    },
    /// The row's number compares with `bound` as `wanted`; `candidates` hold every row that may.
    Number {
        values: &'a [Option<Number>],
        bound: Number,
        wanted: Wanted,
        candidates: &'a [(f64, u32)],
    },
    /// Tested on the row itself; `listed`, if known, holds every row that may pass.
    Row {
        filter: &'a Filter,
        listed: Option<&'a [u32]>,
    },
    And(Vec<Test<'a>>),
    Or(Vec<Test<'a>>),
    Not(Box<Test<'a>>),
}

/// See the module docs.
pub struct SegmentFilter<'a> {
    rows: &'a Arc<SealedRows>,
    test: Test<'a>,
}

impl<'a> SegmentFilter<'a> {
    /// `options`' filters (metadata filter and excluded documents) against `fields`, the columns
    /// of `rows`; `None` if they accept every row.
    pub fn new(rows: &'a Arc<SealedRows>, fields: &'a FieldIndex, options: &'a SearchOptions) -> Option<Self> {
        if options.accepts_all() {
            return None;
        }
        let mut parts = Vec::with_capacity(2);
        if let Some(filter) = &options.filter {
            parts.push(compile(filter, fields));
        }
        if !options.exclude_docs.is_empty() {
            let excluded = codes(fields.docs(), options.exclude_docs.iter().filter_map(|d| fields.docs().string(d)));
            parts.push(not(excluded));
        }
        Some(Self { rows, test: and(parts) })
    }

    /// Whether row `row` passes (visibility and deletes aside).
    #[inline]
    pub fn passes(&self, row: usize) -> bool {
        self.test.passes(row, self.rows)
    }

    /// Whether no row can pass.
    pub fn rejects_all(&self) -> bool {
        matches!(self.test, Test::Const(false))
    }

    /// How many rows are expected to pass (parts taken as independent).
    pub fn expected(&self) -> f64 {
        self.test.expected(self.rows.len() as f64)
    }

    /// How many rows the columns list as possibly passing, or `None` if they cannot narrow it
    /// (then every row may).
    pub fn listed(&self) -> Option<usize> {
        self.test.listed()
    }

    /// The rows that may pass, ascending, each once: those [`listed`](Self::listed) counts, or
    /// every row. One keyword's rows are its list as it is.
    pub fn candidates(&self) -> Cow<'a, [u32]> {
        if let Test::Codes { postings, .. } = &self.test
            && let [only] = postings.as_slice()
        {
            return Cow::Borrowed(only);
        }
        let mut rows = Vec::new();
        if self.test.listed().is_some() {
            self.test.collect(&mut rows);
            rows.sort_unstable();
            rows.dedup();
        } else {
            rows.extend(0..u32::try_from(self.rows.len()).unwrap_or(u32::MAX));
        }
        Cow::Owned(rows)
    }
}

impl Test<'_> {
    fn passes(&self, row: usize, rows: &Arc<SealedRows>) -> bool {
        match self {
            Test::Const(pass) => *pass,
            Test::Codes { codes, set, .. } => codes.get(row).is_some_and(|code| match set.as_slice() {
                [only] => code == only,
                set => set.binary_search(code).is_ok(),
            }),
            Test::Number { values, bound, wanted, .. } => values
                .get(row)
                .copied()
                .flatten()
                .and_then(|value| value.as_value_ref().compare_numbers(bound.as_value_ref()))
                .is_some_and(|order| wanted.admits(order)),
            Test::Row { filter, .. } => RowRef::sealed(rows, row).is_some_and(|r| filter.matches(r)),
            Test::And(all) => all.iter().all(|t| t.passes(row, rows)),
            Test::Or(any) => any.iter().any(|t| t.passes(row, rows)),
            Test::Not(inner) => !inner.passes(row, rows),
        }
    }

    fn listed(&self) -> Option<usize> {
        match self {
            Test::Const(false) => Some(0),
            Test::Const(true) | Test::Not(_) => None,
            Test::Codes { postings, .. } => Some(postings.iter().map(|p| p.len()).sum()),
            Test::Number { candidates, .. } => Some(candidates.len()),
            Test::Row { listed, .. } => listed.map(<[u32]>::len),
            Test::And(all) => all.iter().filter_map(Test::listed).min(),
            Test::Or(any) => any.iter().map(Test::listed).sum(),
        }
    }

    /// Appends the rows [`Test::listed`] counts (only called where it is `Some`).
    fn collect(&self, out: &mut Vec<u32>) {
        match self {
            Test::Const(_) | Test::Not(_) => {}
            Test::Codes { postings, .. } => postings.iter().for_each(|p| out.extend_from_slice(p)),
            Test::Number { candidates, .. } => out.extend(candidates.iter().map(|&(_, row)| row)),
            Test::Row { listed, .. } => out.extend_from_slice(listed.unwrap_or(&[])),
            Test::And(all) => {
                if let Some(narrowest) = all.iter().filter(|t| t.listed().is_some()).min_by_key(|t| t.listed()) {
                    narrowest.collect(out);
                }
            }
            Test::Or(any) => any.iter().for_each(|t| t.collect(out)),
        }
    }

    fn expected(&self, rows: f64) -> f64 {
        match self {
            Test::Const(pass) => f64::from(u8::from(*pass)) * rows,
            // Equality with a whole list: unknown, say half.
            Test::Row { listed: None, .. } => rows / 2.0,
            Test::Codes { .. } | Test::Number { .. } | Test::Row { .. } => self.listed().unwrap_or(0) as f64,
            Test::And(all) => {
                all.iter().fold(rows, |kept, t| if rows > 0.0 { kept * (t.expected(rows) / rows) } else { 0.0 })
            }
            Test::Or(any) => any.iter().map(|t| t.expected(rows)).sum::<f64>().min(rows),
            Test::Not(inner) => (rows - inner.expected(rows)).max(0.0),
        }
    }
}

fn and(parts: Vec<Test<'_>>) -> Test<'_> {
    if parts.iter().any(|t| matches!(t, Test::Const(false))) {
        return Test::Const(false);
    }
    let mut parts: Vec<_> = parts.into_iter().filter(|t| !matches!(t, Test::Const(true))).collect();
    match parts.len() {
        0 => Test::Const(true),
        1 => parts.pop().unwrap_or(Test::Const(true)),
        _ => Test::And(parts),
    }
}

fn or(parts: Vec<Test<'_>>) -> Test<'_> {
    if parts.iter().any(|t| matches!(t, Test::Const(true))) {
        return Test::Const(true);
    }
    let mut parts: Vec<_> = parts.into_iter().filter(|t| !matches!(t, Test::Const(false))).collect();
    match parts.len() {
        0 => Test::Const(false),
        1 => parts.pop().unwrap_or(Test::Const(false)),
        _ => Test::Or(parts),
    }
}

fn not(test: Test<'_>) -> Test<'_> {
    match test {
        Test::Const(pass) => Test::Const(!pass),
        Test::Not(inner) => *inner,
        other => Test::Not(Box::new(other)),
    }
}

/// A row whose code in `keywords` is one of `found`.
fn codes(keywords: &Keywords, found: impl Iterator<Item = u32>) -> Test<'_> {
    let mut set: Vec<u32> = found.collect();
    set.sort_unstable();
    set.dedup();
    if set.is_empty() {
        return Test::Const(false);
    }
    let postings = set.iter().map(|&c| keywords.postings.get(c as usize).map_or(&[][..], Vec::as_slice)).collect();
    Test::Codes { codes: &keywords.code, set, postings }
}

fn compile<'a>(filter: &'a Filter, fields: &'a FieldIndex) -> Test<'a> {
    let range = |key: &str, bound: &Value, less, equal, greater| {
        number_test(fields, key, bound, Wanted { less, equal, greater })
    };
    match filter {
        // Equality with a whole list: tested on the row.
        Filter::Eq(_, Value::List(_)) | Filter::Ne(_, Value::List(_)) => Test::Row { filter, listed: None },
        Filter::Eq(key, value) => equal(fields, key, value),
        Filter::Ne(key, value) => not(equal(fields, key, value)),
        Filter::Gt(key, bound) => range(key, bound, false, false, true),
        Filter::Gte(key, bound) => range(key, bound, false, true, true),
        Filter::Lt(key, bound) => range(key, bound, true, false, false),
        Filter::Lte(key, bound) => range(key, bound, true, true, false),
        Filter::In(key, values) => one_of(fields, key, values),
        Filter::Nin(key, values) => not(one_of(fields, key, values)),
        Filter::Contains(key, item) => {
            match fields.column(key).and_then(|c| c.items.as_ref()).and_then(|items| items.get(item.as_str())) {
                Some(rows) => Test::Row { filter, listed: Some(rows) },
                None => Test::Const(false),
            }
        }
        Filter::DocIn(ids) => codes(fields.docs(), ids.iter().filter_map(|id| fields.docs().string(id))),
        Filter::And(all) => and(all.iter().map(|f| compile(f, fields)).collect()),
        Filter::Or(any) => or(any.iter().map(|f| compile(f, fields)).collect()),
        Filter::Not(inner) => not(compile(inner, fields)),
    }
}

/// A row whose value equals `value` (a scalar), as [`ValueRef::same`](crate::metadata::ValueRef::same) has it.
fn equal<'a>(fields: &'a FieldIndex, key: &str, value: &Value) -> Test<'a> {
    let Some(column) = fields.column(key) else { return Test::Const(false) };
    let keyword = |code: Option<u32>| match (&column.keywords, code) {
        (Some(keywords), Some(code)) => codes(keywords, std::iter::once(code)),
        _ => Test::Const(false),
    };
    match value {
        Value::Str(s) => keyword(column.keywords.as_ref().and_then(|k| k.string(s))),
        Value::Bool(b) => keyword(column.keywords.as_ref().and_then(|k| k.boolean(*b))),
        Value::Int(_) | Value::Float(_) => {
            number_test(fields, key, value, Wanted { less: false, equal: true, greater: false })
        }
        // Lists are compiled by the caller; inside `in` they match nothing.
        Value::List(_) => Test::Const(false),
    }
}

/// A row whose value (a scalar) equals one of `values`.
fn one_of<'a>(fields: &'a FieldIndex, key: &str, values: &[Value]) -> Test<'a> {
    let Some(column) = fields.column(key) else { return Test::Const(false) };
    let mut parts = Vec::new();
    if let Some(keywords) = &column.keywords {
        let found = values.iter().filter_map(|v| match v {
            Value::Str(s) => keywords.string(s),
            Value::Bool(b) => keywords.boolean(*b),
            _ => None,
        });
        parts.push(codes(keywords, found));
    }
    for value in values.iter().filter(|v| matches!(v, Value::Int(_) | Value::Float(_))) {
        parts.push(equal(fields, key, value));
    }
    or(parts)
}

/// A row holding a number that compares with `bound` as `wanted`; nothing if `bound` is not a
/// number (an unchecked filter's ill-typed part matches nothing).
fn number_test<'a>(fields: &'a FieldIndex, key: &str, bound: &Value, wanted: Wanted) -> Test<'a> {
    let Some(bound) = Number::of(bound.as_ref()) else { return Test::Const(false) };
    let Some(numbers) = fields.column(key).and_then(|c| c.numbers.as_ref()) else { return Test::Const(false) };
    let at = bound.approx();
    let low = if wanted.less { f64::NEG_INFINITY } else { at };
    let high = if wanted.greater { f64::INFINITY } else { at };
    Test::Number { values: &numbers.value, bound, wanted, candidates: numbers.rows_between(low, high) }
}

/// With at most this many rows left to score after filters, scoring them beats any index, and is
/// exact.
pub const EXACT_BELOW: usize = 1024;

/// How a filtered search finds its hits among rows a graph indexes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Route {
    /// Score the rows the field columns list (or every row), exactly.
    Score,
    /// Walk the graph with the filter as its callback and a pool of `pool` nodes: the pool a
    /// query without filters would use, widened by how few rows pass, so that about as many
    /// passing nodes are met.
    Walk { pool: usize },
}

/// The cheaper [`Route`] for a query with pool `ef` over a graph of `rows` nodes with `degree`
/// links each, of which about `expected` pass and `listed` are what the columns list (`None`:
/// every row). A walk meets passing nodes at their share, so it needs a pool of `ef / share` to
/// find `ef` of them, and scores about `degree` neighbors per node of its pool; scoring the
/// listed rows costs one exact distance each. Counted in distances, whichever is fewer wins.
pub fn route(rows: usize, listed: Option<usize>, expected: f64, ef: usize, degree: usize) -> Route {
    let listed = listed.unwrap_or(rows);
    if listed <= EXACT_BELOW {
        return Route::Score;
    }
    let rows_f = rows.max(1) as f64;
    let share = (expected / rows_f).clamp(1.0 / rows_f, 1.0);
    let pool = (ef.max(1) as f64 / share).ceil();
    if listed as f64 <= pool * degree.max(1) as f64 {
        Route::Score
    } else {
        Route::Walk { pool: (pool as usize).clamp(ef.max(1), rows.max(1)) }
    }
}

#[cfg(all(test, not(vecindex_loom), not(vecindex_shuttle)))]
#[allow(clippy::disallowed_types)] // proptest's macros name std's Arc
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;
    use crate::chunk::{Chunk, Metadata};
    use crate::rows::RowMeta;

    /// Numbers where an integer and its float disagree, and where floats cannot tell integers apart.
    const BIG: i64 = (1 << 53) + 1;

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(vec!["x", "y", "z"]).prop_map(Value::from),
            (-3i64..3).prop_map(Value::Int),
            prop::sample::select(vec![BIG, BIG - 1, BIG + 1, i64::MAX, i64::MIN]).prop_map(Value::Int),
            prop::sample::select(vec![-1.5, 0.0, 2.0, 9_007_199_254_740_992.0, f64::INFINITY]).prop_map(Value::Float),
            any::<bool>().prop_map(Value::Bool),
            prop::sample::subsequence(vec!["x", "y"], 0..=2).prop_map(Value::from),
        ]
    }

    fn metadata() -> impl Strategy<Value = (u8, Metadata)> {
        let pair = (prop::sample::select(vec!["a", "b"]), value());
        (0u8..4, prop::collection::vec(pair, 0..3))
            .prop_map(|(doc, pairs)| (doc, pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    fn filter() -> impl Strategy<Value = Filter> {
        let key = prop::sample::select(vec!["a", "b", "unset"]).prop_map(str::to_owned);
        let leaf = prop_oneof![
            (key.clone(), value()).prop_map(|(k, v)| Filter::Eq(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Filter::Ne(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Filter::Gt(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Filter::Gte(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Filter::Lt(k, v)),
            (key.clone(), value()).prop_map(|(k, v)| Filter::Lte(k, v)),
            (key.clone(), prop::collection::vec(value(), 0..3)).prop_map(|(k, v)| Filter::In(k, v)),
            (key.clone(), prop::collection::vec(value(), 0..3)).prop_map(|(k, v)| Filter::Nin(k, v)),
            (key, prop::sample::select(vec!["x", "y", "w"])).prop_map(|(k, i)| Filter::contains(k, i)),
            prop::collection::btree_set(prop::sample::select(vec!["d0", "d2", "d9"]), 0..3).prop_map(Filter::doc_in),
        ];
        leaf.prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::And),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Filter::Or),
                inner.prop_map(|f| Filter::Not(Box::new(f))),
            ]
        })
    }

    fn sealed(rows: &[(u8, Metadata)]) -> Arc<SealedRows> {
        let metas: Vec<Arc<RowMeta>> = rows
            .iter()
            .enumerate()
            .map(|(i, (doc, metadata))| {
                let mut chunk = Chunk::new(format!("c{i}"), format!("d{doc}"), vec![i as f32]);
                chunk.metadata = metadata.clone();
                Arc::new(RowMeta::from_chunk(chunk, 1, i as u32).0)
            })
            .collect();
        let vectors: Vec<f32> = (0..rows.len()).map(|i| i as f32).collect();
        SealedRows::encode(1, metas.iter().map(RowRef::Owned).zip(vectors.chunks_exact(1)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A compiled filter passes exactly the rows `Filter::matches` does, and the rows it lists
        /// hold every one of them.
        #[test]
        fn compiled_filters_pass_what_the_filter_matches(
            rows in prop::collection::vec(metadata(), 0..40),
            filter in filter(),
            exclude in prop::collection::hash_set(prop::sample::select(vec!["d1", "d3"]), 0..2),
        ) {
            let sealed = sealed(&rows);
            let fields = FieldIndex::build(&sealed);
            let mut options = SearchOptions::k(1).filter(filter.clone());
            options.exclude_docs = exclude.iter().map(|d| (*d).to_owned()).collect();
            let compiled = SegmentFilter::new(&sealed, &fields, &options).unwrap();
            let candidates: HashSet<u32> = compiled.candidates().iter().copied().collect();
            if let Some(listed) = compiled.listed() {
                prop_assert!(candidates.len() <= listed);
            }
            for (row, written) in rows.iter().enumerate() {
                let r = RowRef::sealed(&sealed, row).unwrap();
                let expected = filter.matches(r) && !options.exclude_docs.contains(r.doc_id());
                prop_assert_eq!(compiled.passes(row), expected, "row {} {:?}", row, written);
                if expected {
                    prop_assert!(candidates.contains(&(row as u32)), "row {} passes but is not listed", row);
                }
            }
            prop_assert!(compiled.expected() <= rows.len() as f64 + 1e-9);
            if compiled.rejects_all() {
                prop_assert!((0..rows.len()).all(|row| !filter.matches(RowRef::sealed(&sealed, row).unwrap())));
            }
        }
    }

    #[test]
    fn few_listed_rows_are_scored_and_many_walked() {
        // 1% of a million rows pass: 10 000 distances against a walk of 640 000.
        assert_eq!(route(1_000_000, Some(10_000), 10_000.0, 64, 32), Route::Score);
        // Half pass: a walk with twice the pool.
        assert_eq!(route(1_000_000, Some(500_000), 500_000.0, 64, 32), Route::Walk { pool: 128 });
        // Unlisted rows (a negation) that most rows pass: walked.
        assert_eq!(route(1_000_000, None, 900_000.0, 64, 32), Route::Walk { pool: 72 });
        // Few rows at all: scored.
        assert_eq!(route(500, None, 500.0, 64, 32), Route::Score);
    }
}
