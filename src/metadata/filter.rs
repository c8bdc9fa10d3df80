//! Filters on a row's metadata and document id, evaluated inside the index before the top k is
//! chosen (a row a filter rejects never takes a place among the hits).
//!
//! Semantics, for every operator (the Python reference in `python/tests` states the same):
//!
//! - `Eq(key, v)`: the row has `key` and its value equals `v` (numbers by value across integer
//!   and float; lists item by item; nothing across other types). `Ne` is its negation, so a row
//!   without `key` passes `Ne`.
//! - `Gt`, `Gte`, `Lt`, `Lte` (key, number): the row's value is a number in that range. A row
//!   without `key`, or with a value that is not a number, does not pass (a range over a field
//!   that holds strings matches nothing). The bound must be a number: anything else is a
//!   [`FilterError::TypeMismatch`].
//! - `In(key, values)`: the row's value equals one of `values` (scalars; an empty list matches
//!   nothing). `Nin` is its negation.
//! - `Contains(key, s)`: the row's value is a list of strings holding `s`.
//! - `DocIn(ids)`: the row belongs to one of these documents.
//! - `And`, `Or`, `Not`: as in logic; `And([])` passes every row, `Or([])` none.
//!
//! A key nobody set is no error: it is a key no row has.

use std::collections::BTreeSet;

use crate::metadata::value::{Value, ValueRef};

/// How deep filters may nest (a filter from JSON is untrusted input; evaluation recurses).
pub const MAX_DEPTH: usize = 32;

/// A filter on rows. Build one with the constructors ([`Filter::eq`], [`Filter::gt`], ...) and
/// combine them with [`and`](Filter::and), [`or`](Filter::or) and [`not`](Filter::not), or parse
/// its JSON form ([`Filter::from_json`]).
///
/// ```
/// use vecindex::Filter;
///
/// let recent_french = Filter::eq("lang", "fr").and(Filter::gte("year", 2020));
/// let tagged = Filter::contains("tags", "rust").or(Filter::is_in("source", ["blog", "docs"]));
/// let both = recent_french.and(tagged.not());
/// assert!(both.check().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Filter {
    Eq(String, Value),
    Ne(String, Value),
    Gt(String, Value),
    Gte(String, Value),
    Lt(String, Value),
    Lte(String, Value),
    In(String, Vec<Value>),
    Nin(String, Vec<Value>),
    Contains(String, String),
    DocIn(BTreeSet<String>),
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// A filter that cannot be evaluated. Searches return it (as `Error::InvalidFilter`) before
/// looking at a row.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// An operand of the wrong type: a range bound that is not a number, a list inside `in`.
    #[error("{op} on {key:?} needs {expected}, not {found}")]
    TypeMismatch { op: &'static str, key: String, expected: &'static str, found: &'static str },
    /// A float operand that is NaN (it equals and orders against nothing).
    #[error("{op} on {key:?} compares with NaN")]
    NaN { op: &'static str, key: String },
    /// An operator the filter language does not have (from JSON).
    #[error("unknown filter operator {operator:?} at {at}")]
    UnknownOperator { operator: String, at: String },
    /// JSON that is not a filter.
    #[error("malformed filter at {at}: {reason}")]
    Malformed { at: String, reason: String },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("filter nested deeper than {limit} levels")]
    TooDeep { limit: usize },
}

/// What a filter reads of a row: its document id and its metadata values.
pub trait Fields<'a>: Copy {
    fn doc_id(self) -> &'a str;
    fn field(self, key: &str) -> Option<ValueRef<'a>>;
}

impl Filter {
    pub fn eq(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Eq(key.into(), value.into())
    }
    pub fn ne(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Ne(key.into(), value.into())
    }
    pub fn gt(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Gt(key.into(), value.into())
    }
    pub fn gte(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Gte(key.into(), value.into())
    }
    pub fn lt(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Lt(key.into(), value.into())
    }
    pub fn lte(key: impl Into<String>, value: impl Into<Value>) -> Self {
        Filter::Lte(key.into(), value.into())
    }
    /// The row's value is one of `values`.
    pub fn is_in<V: Into<Value>>(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Filter::In(key.into(), values.into_iter().map(Into::into).collect())
    }
    /// The row's value is none of `values` (or the row has no `key`).
    pub fn not_in<V: Into<Value>>(key: impl Into<String>, values: impl IntoIterator<Item = V>) -> Self {
        Filter::Nin(key.into(), values.into_iter().map(Into::into).collect())
    }
    /// The row's value is a list holding `item`.
    pub fn contains(key: impl Into<String>, item: impl Into<String>) -> Self {
        Filter::Contains(key.into(), item.into())
    }
    /// The row belongs to one of these documents.
    pub fn doc_in<S: Into<String>>(doc_ids: impl IntoIterator<Item = S>) -> Self {
        Filter::DocIn(doc_ids.into_iter().map(Into::into).collect())
    }

    /// Both this and `other` (one `And` of all their parts).
    pub fn and(self, other: Filter) -> Self {
        let parts = |f| match f {
            Filter::And(all) => Ok(all),
            other => Err(other),
        };
        Filter::And(joined(self, other, parts))
    }

    /// This or `other` (one `Or` of all their alternatives).
    pub fn or(self, other: Filter) -> Self {
        let parts = |f| match f {
            Filter::Or(any) => Ok(any),
            other => Err(other),
        };
        Filter::Or(joined(self, other, parts))
    }

    /// Not this.
    #[allow(clippy::should_implement_trait)] // also `!filter`, through `std::ops::Not`
    pub fn not(self) -> Self {
        match self {
            Filter::Not(inner) => *inner,
            other => Filter::Not(Box::new(other)),
        }
    }

    /// Checks every operand's type and the nesting depth (see the module docs).
    pub fn check(&self) -> Result<(), FilterError> {
        self.check_at(1)
    }

    fn check_at(&self, depth: usize) -> Result<(), FilterError> {
        if depth > MAX_DEPTH {
            return Err(FilterError::TooDeep { limit: MAX_DEPTH });
        }
        let not_nan = |op: &'static str, key: &str, value: &Value| match value {
            Value::Float(f) if f.is_nan() => Err(FilterError::NaN { op, key: key.to_owned() }),
            _ => Ok(()),
        };
        let number = |op: &'static str, key: &str, value: &Value| match value {
            Value::Int(_) | Value::Float(_) => not_nan(op, key, value),
            other => Err(FilterError::TypeMismatch {
                op,
                key: key.to_owned(),
                expected: "a number",
                found: other.type_name(),
            }),
        };
        let scalars = |op: &'static str, key: &str, values: &[Value]| {
            values.iter().try_for_each(|value| match value {
                Value::List(_) => Err(FilterError::TypeMismatch {
                    op,
                    key: key.to_owned(),
                    expected: "a list of scalars",
                    found: "a list of lists",
                }),
                other => not_nan(op, key, other),
            })
        };
        match self {
            Filter::Eq(key, value) => not_nan("eq", key, value),
            Filter::Ne(key, value) => not_nan("ne", key, value),
            Filter::Gt(key, value) => number("gt", key, value),
            Filter::Gte(key, value) => number("gte", key, value),
            Filter::Lt(key, value) => number("lt", key, value),
            Filter::Lte(key, value) => number("lte", key, value),
            Filter::In(key, values) => scalars("in", key, values),
            Filter::Nin(key, values) => scalars("nin", key, values),
            Filter::Contains(..) | Filter::DocIn(_) => Ok(()),
            Filter::And(all) | Filter::Or(all) => all.iter().try_for_each(|f| f.check_at(depth + 1)),
            Filter::Not(inner) => inner.check_at(depth + 1),
        }
    }

    /// Whether `row` passes. The filter must have passed [`check`](Self::check) (an unchecked
    /// one still never panics; its ill-typed parts match nothing).
    pub fn matches<'a>(&self, row: impl Fields<'a>) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let range = |key: &str, bound: &Value, wanted: &[std::cmp::Ordering]| {
            row.field(key).and_then(|v| v.compare_numbers(bound.as_ref())).is_some_and(|o| wanted.contains(&o))
        };
        let equals = |key: &str, value: &Value| row.field(key).is_some_and(|v| v.same(value.as_ref()));
        let one_of = |key: &str, values: &[Value]| {
            row.field(key).is_some_and(|v| !matches!(v, ValueRef::List(_)) && values.iter().any(|x| v.same(x.as_ref())))
        };
        match self {
            Filter::Eq(key, value) => equals(key, value),
            Filter::Ne(key, value) => !equals(key, value),
            Filter::Gt(key, bound) => range(key, bound, &[Greater]),
            Filter::Gte(key, bound) => range(key, bound, &[Greater, Equal]),
            Filter::Lt(key, bound) => range(key, bound, &[Less]),
            Filter::Lte(key, bound) => range(key, bound, &[Less, Equal]),
            Filter::In(key, values) => one_of(key, values),
            Filter::Nin(key, values) => !one_of(key, values),
            Filter::Contains(key, item) => matches!(row.field(key), Some(ValueRef::List(list)) if list.contains(item)),
            Filter::DocIn(ids) => ids.contains(row.doc_id()),
            Filter::And(all) => all.iter().all(|f| f.matches(row)),
            Filter::Or(any) => any.iter().any(|f| f.matches(row)),
            Filter::Not(inner) => !inner.matches(row),
        }
    }
}

/// The parts of `a` and then of `b`: the list `parts` finds in each, or the filter itself.
fn joined(a: Filter, b: Filter, parts: impl Fn(Filter) -> Result<Vec<Filter>, Filter>) -> Vec<Filter> {
    let mut all = parts(a).unwrap_or_else(|a| vec![a]);
    match parts(b) {
        Ok(more) => all.extend(more),
        Err(b) => all.push(b),
    }
    all
}

impl std::ops::Not for Filter {
    type Output = Filter;

    fn not(self) -> Filter {
        Filter::not(self)
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;
    use crate::chunk::Metadata;

    #[derive(Clone, Copy)]
    struct Row<'a>(&'a str, &'a Metadata);

    impl<'a> Fields<'a> for Row<'a> {
        fn doc_id(self) -> &'a str {
            self.0
        }
        fn field(self, key: &str) -> Option<ValueRef<'a>> {
            self.1.get(key).map(Value::as_ref)
        }
    }

    fn meta(pairs: &[(&str, Value)]) -> Metadata {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn every_operator_on_a_row() {
        let m = meta(&[
            ("lang", "fr".into()),
            ("year", 2021.into()),
            ("score", 0.5.into()),
            ("draft", false.into()),
            ("tags", ["rust", "db"].into()),
        ]);
        let row = Row("d1", &m);
        let yes = [
            Filter::eq("lang", "fr"),
            Filter::eq("year", 2021.0),
            Filter::ne("lang", "en"),
            Filter::ne("missing", "x"),
            Filter::gt("year", 2020),
            Filter::gte("year", 2021),
            Filter::lt("score", 1),
            Filter::lte("score", 0.5),
            Filter::is_in("lang", ["en", "fr"]),
            Filter::not_in("lang", ["en", "de"]),
            Filter::not_in("missing", ["x"]),
            Filter::contains("tags", "db"),
            Filter::doc_in(["d0", "d1"]),
            Filter::eq("draft", false),
            Filter::eq("tags", ["rust", "db"]),
            Filter::And(vec![]),
            Filter::eq("lang", "fr").and(Filter::gt("year", 2000)),
            Filter::eq("lang", "en").or(Filter::gt("year", 2000)),
            Filter::eq("lang", "en").not(),
        ];
        for f in &yes {
            assert!(f.check().is_ok(), "{f:?}");
            assert!(f.matches(row), "{f:?} should match");
        }
        let no = [
            Filter::eq("lang", "en"),
            Filter::eq("year", "2021"),
            Filter::eq("missing", "x"),
            Filter::gt("year", 2021),
            Filter::gt("lang", 1),
            Filter::lt("missing", 1),
            Filter::is_in("lang", Vec::<Value>::new()),
            Filter::is_in("tags", ["rust"]),
            Filter::contains("lang", "fr"),
            Filter::contains("tags", "go"),
            Filter::doc_in(["d0"]),
            Filter::Or(vec![]),
            Filter::eq("lang", "fr").and(Filter::gt("year", 2030)),
            Filter::eq("lang", "fr").not(),
        ];
        for f in &no {
            assert!(!f.matches(row), "{f:?} should not match");
        }
    }

    #[test]
    fn ill_typed_operands_are_errors_and_depth_is_bounded() {
        assert!(matches!(Filter::gt("year", "2020").check(), Err(FilterError::TypeMismatch { op: "gt", .. })));
        assert!(matches!(Filter::eq("x", f64::NAN).check(), Err(FilterError::NaN { .. })));
        assert!(matches!(
            Filter::In("x".into(), vec![Value::from(["a"])]).check(),
            Err(FilterError::TypeMismatch { op: "in", .. })
        ));
        let mut deep = Filter::eq("a", 1);
        for _ in 0..MAX_DEPTH {
            deep = Filter::Not(Box::new(deep));
        }
        assert_eq!(deep.check(), Err(FilterError::TooDeep { limit: MAX_DEPTH }));
    }
}
