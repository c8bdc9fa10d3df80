//! Field columns of a sealed segment: what lets a filter test a row with an array read, and
//! count or list the rows it may pass without reading any row.
//!
//! Built once per segment (rows never change once sealed) from the rows file, on the first
//! filtered search that needs them or ahead of it by the background worker:
//!
//! - keywords (strings and bools) and document ids are dictionary-coded: a code per row, and per
//!   code the rows holding it (ascending), so `eq`, `in` and document sets are a compare per row
//!   and their rows a list already made;
//! - numbers keep their value per row, and (value, row) pairs ordered by value, so a range's rows
//!   are one slice, found by two binary searches;
//! - lists keep, per item, the rows holding it.
//!
//! [`crate::segment::prepared`] compiles a filter against these columns.

use std::collections::HashMap;

use crate::metadata::ValueRef;
use crate::rows::SealedRows;

/// A row's code in [`Keywords::code`] when it has no keyword value for that key.
pub const NO_CODE: u32 = u32::MAX;

/// One key's scalar strings and bools (or the document ids), dictionary-coded.
#[derive(Default)]
pub struct Keywords {
    strings: HashMap<Box<str>, u32>,
    /// The codes of `false` and `true`, once some row holds them.
    bools: [Option<u32>; 2],
    /// Per row: its value's code, or [`NO_CODE`].
    pub code: Vec<u32>,
    /// Per code: the rows holding it, ascending.
    pub postings: Vec<Vec<u32>>,
}

impl Keywords {
    fn with_rows(rows: usize) -> Self {
        Self { code: vec![NO_CODE; rows], ..Self::default() }
    }

    /// The code of string `s`, if some row holds it.
    pub fn string(&self, s: &str) -> Option<u32> {
        self.strings.get(s).copied()
    }

    /// The code of `b`, if some row holds it.
    pub fn boolean(&self, b: bool) -> Option<u32> {
        self.bools[usize::from(b)]
    }

    fn push_string(&mut self, row: u32, s: &str) {
        let code = match self.strings.get(s) {
            Some(&code) => code,
            None => {
                let code = self.next_code();
                self.strings.insert(s.into(), code);
                code
            }
        };
        self.set(row, code);
    }

    fn push_bool(&mut self, row: u32, b: bool) {
        let code = match self.bools[usize::from(b)] {
            Some(code) => code,
            None => {
                let code = self.next_code();
                self.bools[usize::from(b)] = Some(code);
                code
            }
        };
        self.set(row, code);
    }

    fn next_code(&mut self) -> u32 {
        self.postings.push(Vec::new());
        u32::try_from(self.postings.len() - 1).unwrap_or(NO_CODE)
    }

    fn set(&mut self, row: u32, code: u32) {
        if let (Some(slot), Some(rows)) = (self.code.get_mut(row as usize), self.postings.get_mut(code as usize)) {
            *slot = code;
            rows.push(row);
        }
    }

    fn bytes(&self) -> usize {
        self.code.len() * 4
            + self.postings.iter().map(|p| p.capacity() * 4 + 24).sum::<usize>()
            + self.strings.keys().map(|s| s.len() + 24).sum::<usize>()
    }
}

/// A number as stored: integers stay exact, as filters compare them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    pub fn of(value: ValueRef<'_>) -> Option<Self> {
        match value {
            ValueRef::Int(i) => Some(Number::Int(i)),
            ValueRef::Float(f) => Some(Number::Float(f)),
            _ => None,
        }
    }

    pub fn as_value_ref(self) -> ValueRef<'static> {
        match self {
            Number::Int(i) => ValueRef::Int(i),
            Number::Float(f) => ValueRef::Float(f),
        }
    }

    /// The value as a float: monotone in the filters' order (two numbers in order stay in
    /// order, or become equal), so a range in floats holds every row of the exact range.
    pub fn approx(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// One key's numbers.
#[derive(Default)]
pub struct Numbers {
    /// Per row: its number, if its value is one.
    pub value: Vec<Option<Number>>,
    /// (approximate value, row) of every row holding a number, ordered by value.
    pub sorted: Vec<(f64, u32)>,
}

impl Numbers {
    fn with_rows(rows: usize) -> Self {
        Self { value: vec![None; rows], sorted: Vec::new() }
    }

    /// The rows whose approximate value lies in `low..=high`: every row of the exact range, and
    /// perhaps a few integers beside its ends that floats cannot tell apart.
    pub fn rows_between(&self, low: f64, high: f64) -> &[(f64, u32)] {
        let from = self.sorted.partition_point(|&(v, _)| v < low);
        let to = self.sorted.partition_point(|&(v, _)| v <= high);
        self.sorted.get(from..to.max(from)).unwrap_or(&[])
    }
}

/// One key's values across the segment, by type (a key may hold different types in different
/// rows).
#[derive(Default)]
pub struct Column {
    pub keywords: Option<Keywords>,
    pub numbers: Option<Numbers>,
    /// Per list item: the rows whose list holds it, ascending.
    pub items: Option<HashMap<Box<str>, Vec<u32>>>,
}

/// Every key's column and the document ids of one sealed segment. See the module docs.
pub struct FieldIndex {
    columns: HashMap<Box<str>, Column>,
    docs: Keywords,
}

impl FieldIndex {
    /// Reads every row of `rows` once.
    pub fn build(rows: &SealedRows) -> Self {
        let n = rows.len();
        let mut columns: HashMap<Box<str>, Column> = HashMap::new();
        let mut docs = Keywords::with_rows(n);
        for (index, row) in rows.rows().iter().enumerate() {
            let Ok(at) = u32::try_from(index) else { break };
            docs.push_string(at, row.doc_id.as_str());
            for pair in row.metadata.iter() {
                let key = pair.key.as_str();
                if !columns.contains_key(key) {
                    columns.insert(key.into(), Column::default());
                }
                let Some(column) = columns.get_mut(key) else { continue };
                match pair.value.as_value_ref() {
                    ValueRef::Str(s) => {
                        column.keywords.get_or_insert_with(|| Keywords::with_rows(n)).push_string(at, s)
                    }
                    ValueRef::Bool(b) => column.keywords.get_or_insert_with(|| Keywords::with_rows(n)).push_bool(at, b),
                    value @ (ValueRef::Int(_) | ValueRef::Float(_)) => {
                        let numbers = column.numbers.get_or_insert_with(|| Numbers::with_rows(n));
                        if let (Some(number), Some(slot)) = (Number::of(value), numbers.value.get_mut(index)) {
                            *slot = Some(number);
                            numbers.sorted.push((number.approx(), at));
                        }
                    }
                    ValueRef::List(list) => {
                        let items = column.items.get_or_insert_with(HashMap::new);
                        for item in list.iter() {
                            if !items.contains_key(item) {
                                items.insert(item.into(), Vec::new());
                            }
                            let Some(rows) = items.get_mut(item) else { continue };
                            // A list may repeat an item: the row once.
                            if rows.last() != Some(&at) {
                                rows.push(at);
                            }
                        }
                    }
                }
            }
        }
        for numbers in columns.values_mut().filter_map(|c| c.numbers.as_mut()) {
            // No NaN is ever stored (adds reject it), so the order is total.
            numbers.sorted.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        }
        Self { columns, docs }
    }

    /// The column of `key`, if some row has it.
    pub fn column(&self, key: &str) -> Option<&Column> {
        self.columns.get(key)
    }

    /// The document ids.
    pub fn docs(&self) -> &Keywords {
        &self.docs
    }

    /// Memory held, roughly.
    pub fn bytes(&self) -> usize {
        let column = |c: &Column| {
            c.keywords.as_ref().map_or(0, Keywords::bytes)
                + c.numbers.as_ref().map_or(0, |n| n.value.len() * 16 + n.sorted.len() * 16)
                + c.items.as_ref().map_or(0, |items| items.iter().map(|(k, v)| k.len() + v.len() * 4 + 48).sum())
        };
        self.docs.bytes() + self.columns.iter().map(|(k, c)| k.len() + column(c)).sum::<usize>()
    }
}
