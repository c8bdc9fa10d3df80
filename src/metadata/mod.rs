//! Typed metadata and the filters that select rows by it.
//!
//! - [`value`]: what a metadata key maps to ([`Value`]: string, integer, float, bool, list of
//!   strings), owned or borrowed from where a row is stored.
//! - [`filter`]: the filter language ([`Filter`]), its checks and its evaluation on a row.
//! - [`json`]: the JSON forms of both, for the HTTP server and the Python package.

pub mod filter;
pub mod json;
pub mod value;

pub use filter::{Fields, Filter, FilterError};
pub use value::{ListRef, Metadata, Value, ValueRef};
