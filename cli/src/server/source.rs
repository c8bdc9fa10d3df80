//! Where the server's index comes from: its own, which it writes and persists, or a replica of
//! one on object storage (`--replica-of URL`), which follows its writer and refuses writes.
//!
//! Every route takes the index through [`IndexSource::current`] once per request, so a
//! replica's swap to a newer generation never changes the index under a request.

use std::sync::Arc;

use vecindex::VectorIndex;

/// The server's index.
pub enum IndexSource {
    /// Its own: written through the API, persisted into its directory.
    Writer(Arc<VectorIndex>),
    /// A read-only replica of an index on object storage.
    #[cfg(feature = "object-store")]
    Replica {
        replica: Arc<vecindex::Replica>,
        url: String,
        /// How long it may serve an older generation than the newest it saw and still be ready.
        max_lag: std::time::Duration,
    },
}

impl IndexSource {
    /// The index to serve this request from.
    pub fn current(&self) -> Arc<VectorIndex> {
        match self {
            IndexSource::Writer(index) => index.clone(),
            #[cfg(feature = "object-store")]
            IndexSource::Replica { replica, .. } => replica.index(),
        }
    }

    /// `None` if writes are served, else why not.
    pub fn read_only(&self) -> Option<String> {
        match self {
            IndexSource::Writer(_) => None,
            #[cfg(feature = "object-store")]
            IndexSource::Replica { url, .. } => {
                Some(format!("this server is a read-only replica of {url}; send writes to its writer"))
            }
        }
    }

    /// The replica's status and how long it may lag, if it is one.
    #[cfg(feature = "object-store")]
    pub fn replica_status(&self) -> Option<(vecindex::ReplicaStatus, std::time::Duration)> {
        match self {
            IndexSource::Writer(_) => None,
            IndexSource::Replica { replica, max_lag, .. } => Some((replica.status(), *max_lag)),
        }
    }
}
