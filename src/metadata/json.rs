//! The JSON forms of metadata and filters, shared by the HTTP server and the Python package.
//!
//! A metadata value is a JSON string, number, boolean, or array of strings (`null` is not a
//! value: leave the key out). A filter is an object in the style of MongoDB's query language:
//!
//! ```text
//! {"lang": "fr"}                                  eq (a value, not an object)
//! {"year": {"$gte": 2020, "$lt": 2024}}           operators on one key, all must hold
//! {"tags": {"$contains": "rust"}}                 $eq $ne $gt $gte $lt $lte $in $nin $contains
//! {"$doc_id": {"$in": ["a", "b"]}}                document ids ($in, $nin, or one id)
//! {"$and": [f, ...]}  {"$or": [f, ...]}  {"$not": f}
//! {"lang": "fr", "year": {"$gt": 2020}}           several keys: all must hold
//! ```

use serde_json::{Map, Value as Json};

use crate::metadata::filter::{Filter, FilterError, MAX_DEPTH};
use crate::metadata::value::Value;

/// A metadata value from JSON; `Err` says why it is not one.
pub fn value_from_json(json: &Json) -> Result<Value, String> {
    match json {
        Json::String(s) => Ok(Value::Str(s.clone())),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Value::Int(i)),
            (None, Some(f)) => Ok(Value::Float(f)),
            (None, None) => Err(format!("{n} is not a number vecindex stores")),
        },
        Json::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_owned).ok_or_else(|| format!("a list holds only strings, not {item}"))
            })
            .collect::<Result<_, _>>()
            .map(Value::List),
        Json::Null => Err("null is not a metadata value (leave the key out)".to_owned()),
        Json::Object(_) => Err("an object is not a metadata value".to_owned()),
    }
}

/// The JSON of a metadata value.
pub fn value_to_json(value: &Value) -> Json {
    match value {
        Value::Str(s) => Json::String(s.clone()),
        Value::Int(i) => Json::from(*i),
        // Finite by construction (NaN is refused; infinities have no JSON form: null).
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Bool(b) => Json::Bool(*b),
        Value::List(items) => Json::Array(items.iter().cloned().map(Json::String).collect()),
    }
}

impl Filter {
    /// Parses the JSON form of a filter (see [`crate::metadata`]'s `json` docs) and checks it.
    ///
    /// ```
    /// use vecindex::Filter;
    ///
    /// let json = serde_json::json!({"lang": "fr", "year": {"$gte": 2020}});
    /// let filter = Filter::from_json(&json).unwrap();
    /// assert_eq!(filter, Filter::eq("lang", "fr").and(Filter::gte("year", 2020)));
    /// assert!(Filter::from_json(&serde_json::json!({"year": {"$near": 1}})).is_err());
    /// ```
    pub fn from_json(json: &Json) -> Result<Filter, FilterError> {
        let filter = parse(json, "$", 1)?;
        filter.check()?;
        Ok(filter)
    }

    /// Parses a filter from JSON text.
    pub fn from_json_str(text: &str) -> Result<Filter, FilterError> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| FilterError::Malformed { at: "$".to_owned(), reason: format!("not JSON: {e}") })?;
        Filter::from_json(&json)
    }

    /// The JSON form of this filter (which [`from_json`](Self::from_json) reads back as it is).
    pub fn to_json(&self) -> Json {
        let op = |key: &str, op: &str, value: Json| {
            let mut ops = Map::new();
            ops.insert(op.to_owned(), value);
            let mut object = Map::new();
            object.insert(key.to_owned(), Json::Object(ops));
            Json::Object(object)
        };
        let list = |values: &[Value]| Json::Array(values.iter().map(value_to_json).collect());
        let all = |filters: &[Filter]| Json::Array(filters.iter().map(Filter::to_json).collect());
        match self {
            Filter::Eq(k, v) => op(k, "$eq", value_to_json(v)),
            Filter::Ne(k, v) => op(k, "$ne", value_to_json(v)),
            Filter::Gt(k, v) => op(k, "$gt", value_to_json(v)),
            Filter::Gte(k, v) => op(k, "$gte", value_to_json(v)),
            Filter::Lt(k, v) => op(k, "$lt", value_to_json(v)),
            Filter::Lte(k, v) => op(k, "$lte", value_to_json(v)),
            Filter::In(k, vs) => op(k, "$in", list(vs)),
            Filter::Nin(k, vs) => op(k, "$nin", list(vs)),
            Filter::Contains(k, item) => op(k, "$contains", Json::String(item.clone())),
            Filter::DocIn(ids) => op("$doc_id", "$in", Json::Array(ids.iter().cloned().map(Json::String).collect())),
            Filter::And(fs) => serde_json::json!({ "$and": all(fs) }),
            Filter::Or(fs) => serde_json::json!({ "$or": all(fs) }),
            Filter::Not(inner) => serde_json::json!({ "$not": inner.to_json() }),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        value_to_json(self).serialize(serializer)
    }
}

/// From the JSON forms above (through `serde_json::Value`, so from self-describing formats).
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        value_from_json(&json).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// From the JSON form above, checked ([`Filter::from_json`]).
impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Filter::from_json(&json).map_err(serde::de::Error::custom)
    }
}

/// One filter that all of `parts` must pass (the part itself if there is one).
fn all_of(mut parts: Vec<Filter>) -> Filter {
    if parts.len() == 1 { parts.pop().expect("one part") } else { Filter::And(parts) }
}

fn malformed(at: &str, reason: impl Into<String>) -> FilterError {
    FilterError::Malformed { at: at.to_owned(), reason: reason.into() }
}

fn parse(json: &Json, at: &str, depth: usize) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(FilterError::TooDeep { limit: MAX_DEPTH });
    }
    let Json::Object(object) = json else { return Err(malformed(at, format!("a filter is an object, not {json}"))) };
    let mut parts = Vec::with_capacity(object.len());
    for (key, value) in object {
        let here = format!("{at}.{key}");
        let part = match key.as_str() {
            "$and" | "$or" => {
                let Json::Array(items) = value else { return Err(malformed(&here, "takes a list of filters")) };
                let filters = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse(item, &format!("{here}[{i}]"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "$and" { Filter::And(filters) } else { Filter::Or(filters) }
            }
            "$not" => Filter::Not(Box::new(parse(value, &here, depth + 1)?)),
            "$doc_id" => parse_doc_ids(value, &here)?,
            other if other.starts_with('$') => {
                return Err(FilterError::UnknownOperator { operator: other.to_owned(), at: at.to_owned() });
            }
            _ => parse_key(key, value, &here)?,
        };
        parts.push(part);
    }
    Ok(all_of(parts))
}

fn parse_doc_ids(value: &Json, at: &str) -> Result<Filter, FilterError> {
    let ids = |json: &Json| match json {
        Json::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| malformed(at, "document ids are strings")))
            .collect::<Result<std::collections::BTreeSet<_>, _>>(),
        _ => Err(malformed(at, "takes a list of document ids")),
    };
    match value {
        Json::String(id) => Ok(Filter::doc_in([id.clone()])),
        Json::Object(ops) if ops.len() == 1 => match ops.iter().next().expect("one") {
            (op, list) if op == "$in" => Ok(Filter::DocIn(ids(list)?)),
            (op, list) if op == "$nin" => Ok(Filter::Not(Box::new(Filter::DocIn(ids(list)?)))),
            (op, _) => Err(FilterError::UnknownOperator { operator: op.clone(), at: at.to_owned() }),
        },
        _ => Err(malformed(at, "takes one id, or {\"$in\": [ids]} or {\"$nin\": [ids]}")),
    }
}

fn parse_key(key: &str, value: &Json, at: &str) -> Result<Filter, FilterError> {
    let operand = |json: &Json, at: &str| value_from_json(json).map_err(|reason| malformed(at, reason));
    let Json::Object(ops) = value else { return Ok(Filter::Eq(key.to_owned(), operand(value, at)?)) };
    if ops.is_empty() {
        return Err(malformed(at, "no operator"));
    }
    let mut parts = Vec::with_capacity(ops.len());
    for (op, json) in ops {
        let here = format!("{at}.{op}");
        let k = key.to_owned();
        let list = |json: &Json| match json {
            Json::Array(items) => items.iter().map(|item| operand(item, &here)).collect::<Result<Vec<_>, _>>(),
            _ => Err(malformed(&here, "takes a list of values")),
        };
        parts.push(match op.as_str() {
            "$eq" => Filter::Eq(k, operand(json, &here)?),
            "$ne" => Filter::Ne(k, operand(json, &here)?),
            "$gt" => Filter::Gt(k, operand(json, &here)?),
            "$gte" => Filter::Gte(k, operand(json, &here)?),
            "$lt" => Filter::Lt(k, operand(json, &here)?),
            "$lte" => Filter::Lte(k, operand(json, &here)?),
            "$in" => Filter::In(k, list(json)?),
            "$nin" => Filter::Nin(k, list(json)?),
            "$contains" => match json {
                Json::String(item) => Filter::Contains(k, item.clone()),
                _ => return Err(malformed(&here, "takes a string")),
            },
            other => return Err(FilterError::UnknownOperator { operator: other.to_owned(), at: at.to_owned() }),
        });
    }
    Ok(all_of(parts))
}

#[cfg(all(test, not(vecindex_loom)))]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_form_parses_and_round_trips() {
        let cases = [
            (json!({"lang": "fr"}), Filter::eq("lang", "fr")),
            (json!({"tags": ["a", "b"]}), Filter::eq("tags", ["a", "b"])),
            (json!({"year": {"$gte": 2020, "$lt": 2024}}), Filter::gte("year", 2020).and(Filter::lt("year", 2024))),
            (json!({"score": {"$gt": 0.5}}), Filter::gt("score", 0.5)),
            (json!({"lang": {"$in": ["en", "fr"]}}), Filter::is_in("lang", ["en", "fr"])),
            (json!({"lang": {"$nin": ["en"]}}), Filter::not_in("lang", ["en"])),
            (json!({"tags": {"$contains": "x"}}), Filter::contains("tags", "x")),
            (json!({"draft": {"$ne": true}}), Filter::ne("draft", true)),
            (json!({"$doc_id": {"$in": ["a", "b"]}}), Filter::doc_in(["a", "b"])),
            (json!({"$doc_id": {"$nin": ["a"]}}), Filter::doc_in(["a"]).not()),
            (json!({"$doc_id": "a"}), Filter::doc_in(["a"])),
            (json!({"$or": [{"a": 1}, {"$not": {"b": 2}}]}), Filter::eq("a", 1).or(Filter::eq("b", 2).not())),
            (json!({"$and": []}), Filter::And(vec![])),
        ];
        for (json, filter) in cases {
            assert_eq!(Filter::from_json(&json).as_ref(), Ok(&filter), "{json}");
            assert_eq!(Filter::from_json(&filter.to_json()).as_ref(), Ok(&filter), "{json} round trip");
        }
    }

    #[test]
    fn bad_json_is_a_typed_error() {
        let unknown = |j: Json| matches!(Filter::from_json(&j), Err(FilterError::UnknownOperator { .. }));
        let malformed = |j: Json| matches!(Filter::from_json(&j), Err(FilterError::Malformed { .. }));
        assert!(unknown(json!({"year": {"$near": 1}})));
        assert!(unknown(json!({"$xor": []})));
        assert!(unknown(json!({"$doc_id": {"$all": []}})));
        assert!(malformed(json!([1, 2])));
        assert!(malformed(json!({"year": null})));
        assert!(malformed(json!({"year": {}})));
        assert!(malformed(json!({"$and": {"a": 1}})));
        assert!(malformed(json!({"tags": [1, 2]})));
        assert!(malformed(json!({"lang": {"$in": "en"}})));
        assert!(Filter::from_json_str("{not json").is_err());
        assert!(matches!(
            Filter::from_json(&json!({"lang": {"$gt": "m"}})),
            Err(FilterError::TypeMismatch { op: "gt", .. })
        ));
        let mut deep = json!({"a": 1});
        for _ in 0..(MAX_DEPTH + 5) {
            deep = json!({ "$not": deep });
        }
        assert_eq!(Filter::from_json(&deep), Err(FilterError::TooDeep { limit: MAX_DEPTH }));
    }

    #[test]
    fn metadata_values_from_json() {
        use crate::metadata::value::Metadata;
        let m: Metadata = serde_json::from_value(json!({"a": "x", "n": 3, "f": 1.5, "b": true, "l": ["p"]})).unwrap();
        assert_eq!(m["n"], Value::Int(3));
        assert_eq!(m["f"], Value::Float(1.5));
        assert_eq!(serde_json::to_value(&m).unwrap(), json!({"a": "x", "n": 3, "f": 1.5, "b": true, "l": ["p"]}));
        assert!(serde_json::from_value::<Metadata>(json!({"a": null})).is_err());
    }
}
