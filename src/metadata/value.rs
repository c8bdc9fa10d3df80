//! Metadata values: what a chunk's metadata maps each key to, owned ([`Value`]) or borrowed from
//! wherever the row lives ([`ValueRef`]: a head row's map, or a sealed segment's archive).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rkyv::string::ArchivedString;
use rkyv::vec::ArchivedVec;

/// Metadata of a chunk (for example its source file, year, or tags), typed: see [`Value`].
/// Ordered, so equal maps compare and serialize identically.
pub type Metadata = BTreeMap<String, Value>;

/// One metadata value: JSON's scalars and a list of strings (tags, authors, categories).
///
/// Integers and floats are both numbers to a filter: `Int(3)` equals `Float(3.0)`, and ranges
/// compare them by value. A float must not be NaN (it would equal nothing, itself included, and
/// order nowhere); adding a chunk with one is an error.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// This value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::List(items) => ValueRef::List(ListRef::Owned(items)),
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The name of this value's type, as errors name it.
    pub fn type_name(&self) -> &'static str {
        self.as_ref().type_name()
    }
}

/// `value == "text"`: whether it is that string.
impl PartialEq<str> for Value {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == Some(other)
    }
}
impl PartialEq<&str> for Value {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Str(s.clone())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i64::from(i))
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<Vec<String>> for Value {
    fn from(items: Vec<String>) -> Self {
        Value::List(items)
    }
}
impl From<Vec<&str>> for Value {
    fn from(items: Vec<&str>) -> Self {
        Value::List(items.into_iter().map(str::to_owned).collect())
    }
}
impl<const N: usize> From<[&str; N]> for Value {
    fn from(items: [&str; N]) -> Self {
        Value::List(items.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// A list of strings where it is stored.
#[derive(Clone, Copy, Debug)]
pub enum ListRef<'a> {
    Owned(&'a [String]),
    Archived(&'a ArchivedVec<ArchivedString>),
}

impl<'a> ListRef<'a> {
    pub fn len(self) -> usize {
        match self {
            ListRef::Owned(items) => items.len(),
            ListRef::Archived(items) => items.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (owned, archived) = match self {
            ListRef::Owned(items) => (Some(items.iter().map(String::as_str)), None),
            ListRef::Archived(items) => (None, Some(items.iter().map(ArchivedString::as_str))),
        };
        owned.into_iter().flatten().chain(archived.into_iter().flatten())
    }

    pub fn contains(self, item: &str) -> bool {
        self.iter().any(|s| s == item)
    }
}

/// A borrowed metadata value.
#[derive(Clone, Copy, Debug)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(ListRef<'a>),
}

impl ValueRef<'_> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_owned()),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::List(items) => Value::List(items.iter().map(str::to_owned).collect()),
        }
    }

    pub fn type_name(self) -> &'static str {
        match self {
            ValueRef::Str(_) => "string",
            ValueRef::Int(_) => "integer",
            ValueRef::Float(_) => "float",
            ValueRef::Bool(_) => "bool",
            ValueRef::List(_) => "list of strings",
        }
    }

    /// Equality as filters see it: numbers by value across integer and float, lists item by item,
    /// and nothing equal across other types.
    pub fn same(self, other: ValueRef<'_>) -> bool {
        match (self, other) {
            (ValueRef::Str(a), ValueRef::Str(b)) => a == b,
            (ValueRef::Bool(a), ValueRef::Bool(b)) => a == b,
            (ValueRef::List(a), ValueRef::List(b)) => a.len() == b.len() && a.iter().eq(b.iter()),
            (a, b) => a.compare_numbers(b) == Some(Ordering::Equal),
        }
    }

    /// The order of two numbers (integers exactly; an integer against a float as the integer
    /// converted to a float); `None` unless both are numbers.
    pub fn compare_numbers(self, other: ValueRef<'_>) -> Option<Ordering> {
        match (self, other) {
            (ValueRef::Int(a), ValueRef::Int(b)) => Some(a.cmp(&b)),
            (ValueRef::Int(a), ValueRef::Float(b)) => (a as f64).partial_cmp(&b),
            (ValueRef::Float(a), ValueRef::Int(b)) => a.partial_cmp(&(b as f64)),
            (ValueRef::Float(a), ValueRef::Float(b)) => a.partial_cmp(&b),
            _ => None,
        }
    }
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value_across_integer_and_float() {
        assert!(Value::Int(3).as_ref().same(Value::Float(3.0).as_ref()));
        assert!(!Value::Int(3).as_ref().same(Value::Str("3".into()).as_ref()));
        assert_eq!(Value::Int(2).as_ref().compare_numbers(Value::Float(2.5).as_ref()), Some(Ordering::Less));
        assert_eq!(Value::Str("a".into()).as_ref().compare_numbers(Value::Int(1).as_ref()), None);
    }

    #[test]
    fn lists_are_equal_item_by_item() {
        let a = Value::from(["x", "y"]);
        assert!(a.as_ref().same(Value::from(vec!["x", "y"]).as_ref()));
        assert!(!a.as_ref().same(Value::from(["y", "x"]).as_ref()));
        assert!(matches!(a.as_ref(), ValueRef::List(l) if l.contains("y") && !l.contains("z")));
    }
}
