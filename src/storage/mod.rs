//! Bytes on disk: the header and checksums every file starts with ([`format`]), and the only use
//! of `std::fs` in the library ([`io`]: atomic file creation, directory fsync, listing,
//! quarantine, the directory lock, read-only mappings).

pub mod format;
pub mod io;
