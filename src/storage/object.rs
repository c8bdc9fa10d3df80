//! [`ObjectStorage`]: an index directory on object storage (S3 and S3-compatible servers, Google
//! Cloud Storage, Azure Blob Storage, or local files) through the `object_store` crate, chosen
//! by URL: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`,
//! `file:///path`.
//!
//! # Protocol
//!
//! Object storage has no rename and no lock, so the commit of `persist::manifest` becomes:
//!
//! 1. every new file is uploaded whole (one put, or a multipart upload for large files, which
//!    the store makes visible only when complete); names are derived from content (C4), so an
//!    upload never changes what a name holds;
//! 2. the manifest of generation N is put as `MANIFEST.<N in 20 digits>` with create-if-absent
//!    (`If-None-Match: *` on S3): of two writers racing for N, exactly one creates it, and the
//!    other gets [`Error::Conflict`] with nothing committed;
//! 3. a writer commits only on top of the generation it last opened or committed here
//!    (`Directory::base_generation`), so it can never build on a snapshot it has not seen.
//!
//! An open reads the newest generation's manifest, or the newest readable one of those kept if
//! it is damaged. Collection after a commit removes the manifests older than the
//! [`keep_generations`](ObjectStorageOptions::keep_generations) kept (2 by default) and the
//! files none of them names, but only objects older than
//! [`ObjectStorageOptions::collect_after`]: a file that young may belong to another writer's
//! upload in progress.
//!
//! # Invariants
//!
//! - O1: a manifest object, once created, is never replaced (create-if-absent), so a reader
//!   that saw generation N sees the same snapshot every time it reads it.
//! - O2: every file a manifest names was uploaded completely before the manifest was put.
//! - O3: files a reader is fetching are named by a manifest of the last two generations (or
//!   more, as kept), and collection keeps those.
//!
//! Each listing is a request, so one persist or one open lists once (`Directory::session`)
//! and keeps that listing up to date with its own puts and removals; what other writers do
//! meanwhile it learns from the conditional commit.
//!
//! Files are fetched once into the local cache directory (written under a temp name, then
//! renamed), checked by the reader like any file, and mapped from there; a name always holds
//! the same bytes, so a cached file never goes stale.

#![allow(clippy::disallowed_types)] // the cache is local files, the runtime its own threads

use std::fs;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, SystemTime};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};

use crate::error::{Error, Result};
use crate::storage::{
    Access, DirGuard, Directory, FileBytes, LockMode, PathKind, format, generation_name, generation_of,
};

/// Files larger than this are uploaded in parts (object stores cap a single put, and a part
/// that fails is retried alone).
const MULTIPART_ABOVE: usize = 16 << 20;

/// An object's name, length and age.
type Object = (String, u64, Duration);

/// The sessions open on one storage, and the listing they share.
#[derive(Default)]
struct Sessions {
    open: usize,
    listing: Option<Vec<Object>>,
}

/// Ends a session; the last one to end drops the listing.
struct SessionGuard(std::sync::Arc<Mutex<Sessions>>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.open -= 1;
        if sessions.open == 0 {
            sessions.listing = None;
        }
    }
}

/// Which kind of store a URL's scheme names: the schemes accepted, and for messages, the
/// settings of each.
#[derive(Clone, Copy)]
enum Provider {
    S3,
    Google,
    Azure,
    Local,
}

impl Provider {
    fn of(scheme: &str) -> Option<Provider> {
        match scheme {
            "s3" | "s3a" => Some(Provider::S3),
            "gs" => Some(Provider::Google),
            "az" | "azure" | "abfs" | "abfss" => Some(Provider::Azure),
            "file" => Some(Provider::Local),
            _ => None,
        }
    }

    /// The settings that say who is asking.
    fn credentials(self) -> &'static str {
        match self {
            Provider::S3 => "aws_access_key_id and aws_secret_access_key (or the AWS_* variables)",
            Provider::Google => {
                "google_service_account (a service account's JSON file) or google_application_credentials \
                 (or the GOOGLE_* variables)"
            }
            Provider::Azure => "azure_storage_account_name and azure_storage_account_key (or the AZURE_* variables)",
            Provider::Local => "the path (a file:// URL takes no settings)",
        }
    }

    fn bucket(self) -> &'static str {
        match self {
            Provider::Azure => "container",
            Provider::Local => "directory",
            Provider::S3 | Provider::Google => "bucket",
        }
    }

    fn endpoint(self) -> &'static str {
        match self {
            Provider::S3 => "check aws_endpoint (and aws_allow_http for http://)",
            Provider::Google => "check the network (and google_base_url, if set)",
            Provider::Azure => "check azure_storage_account_name (and azure_storage_use_emulator for a local emulator)",
            Provider::Local => "check the path",
        }
    }
}

/// How to reach an [`ObjectStorage`].
#[derive(Clone, Debug)]
pub struct ObjectStorageOptions {
    /// Where fetched files are kept and mapped from (created if missing). Every file is
    /// fetched once. A [`Replica`](crate::Replica) keeps only the files of the generation it
    /// serves here, so give each replica a directory of its own.
    pub cache_dir: PathBuf,
    /// The store's settings as `object_store` names them, e.g. `aws_endpoint`,
    /// `aws_allow_http`, `aws_access_key_id`, `aws_secret_access_key`, `aws_region`; the
    /// environment's `AWS_*` (`GOOGLE_*`, `AZURE_*`) variables are read first, and these win.
    pub settings: Vec<(String, String)>,
    /// A file no kept manifest names is collected only once it is this old (default 1 hour):
    /// it may be another writer's upload in progress.
    pub collect_after: Duration,
    /// How many of the newest generations a collection keeps whole (default 2, at least 2: a
    /// reader opening the one before the newest must find its files). An open falls back
    /// through them, newest first, if the newest manifest is damaged.
    pub keep_generations: usize,
    /// Whether a file this process uploads is also kept in the cache (default true), so that
    /// opening what it persisted fetches nothing. A writer that only pushes needs none of it:
    /// a persist reads back the manifests alone.
    pub cache_writes: bool,
}

impl ObjectStorageOptions {
    /// Options with `cache_dir`, the environment's settings and the default grace period.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            settings: Vec::new(),
            collect_after: Duration::from_secs(3600),
            keep_generations: 2,
            cache_writes: true,
        }
    }

    /// Adds one setting (see [`settings`](Self::settings)).
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }
}

/// An index directory on object storage (see the module docs); persist into it with
/// [`VectorIndex::persist_to`](crate::VectorIndex::persist_to) and open it with
/// [`VectorIndex::open_from`](crate::VectorIndex::open_from).
///
/// ```no_run
/// use vecindex::{Chunk, IndexConfig, ObjectStorage, ObjectStorageOptions, OpenOptions, VectorIndex};
///
/// // An S3-compatible server; on AWS, leave out the endpoint and let AWS_* variables speak.
/// let options = ObjectStorageOptions::new("/var/cache/vecindex")
///     .setting("aws_endpoint", "http://127.0.0.1:9000")
///     .setting("aws_allow_http", "true");
/// let storage = ObjectStorage::open("s3://my-bucket/indexes/docs", options)?;
///
/// let index = VectorIndex::new(IndexConfig::new(2))?;
/// index.add_chunk(Chunk::new("c1", "doc", vec![1.0, 0.0]))?;
/// index.persist_to(&storage)?; // generation 1, committed only if no other writer took it
///
/// let (replica, _report) = VectorIndex::open_from(&storage, &OpenOptions::new())?;
/// assert_eq!(replica.chunk_ids("doc"), ["c1"]);
/// # Ok::<(), vecindex::Error>(())
/// ```
pub struct ObjectStorage {
    url: String,
    provider: Provider,
    /// The URL as a path, for messages: every file's path is this joined with its name.
    shown: PathBuf,
    store: std::sync::Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    cache: PathBuf,
    collect_after: Duration,
    keep_generations: usize,
    cache_writes: bool,
    base_generation: Mutex<Option<u64>>,
    /// The cached files whose body checksum this process found to match their header.
    checked: Mutex<std::collections::HashSet<String>>,
    /// The listing of the sessions open now (`Directory::session`).
    sessions: std::sync::Arc<Mutex<Sessions>>,
    /// Always `Some` until dropped (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ObjectStorage {
    /// Without waiting for the I/O threads: the storage may be dropped on an async thread (a
    /// server's), where blocking is not allowed, and every request it made was answered.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage").field("url", &self.url).field("cache", &self.cache).finish()
    }
}

impl ObjectStorage {
    /// The storage at `url`, checked by listing it once: an unknown scheme, settings the store
    /// refuses, missing credentials or a bucket that does not exist are
    /// [`Error::Storage`] saying what to fix.
    pub fn open(url: &str, options: ObjectStorageOptions) -> Result<Self> {
        let invalid = |reason: String| Error::Storage { url: url.to_owned(), reason };
        let parsed = url::Url::parse(url)
            .map_err(|e| invalid(format!("not a URL ({e}); give s3://bucket/prefix, gs://, az:// or file:///path")))?;
        let Some(provider) = Provider::of(parsed.scheme()) else {
            return Err(invalid(format!(
                "unknown scheme {:?}; give s3://bucket/prefix (S3 and S3-compatible servers), gs://, az:// or file:///path",
                parsed.scheme()
            )));
        };
        // The environment first, the caller's settings over it.
        let env = std::env::vars().filter(|(k, _)| {
            let k = k.to_ascii_uppercase();
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        });
        let settings: Vec<(String, String)> =
            env.map(|(k, v)| (k.to_ascii_lowercase(), v)).chain(options.settings.iter().cloned()).collect();
        if options.keep_generations < 2 {
            return Err(invalid(format!(
                "keeps {} generations; keep at least 2, so that a reader opening the one before the newest finds its files",
                options.keep_generations
            )));
        }
        let (store, prefix) = object_store::parse_url_opts(&parsed, settings)
            .map_err(|e| invalid(format!("cannot be opened: {e}; check the URL and {}", provider.credentials())))?;
        fs::create_dir_all(&options.cache_dir).map_err(|e| Error::io(&options.cache_dir, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vecindex-storage")
            .enable_all()
            .build()
            .map_err(|e| invalid(format!("cannot start its I/O threads: {e}")))?;
        let storage = Self {
            url: url.trim_end_matches('/').to_owned(),
            provider,
            shown: PathBuf::from(url.trim_end_matches('/')),
            store: std::sync::Arc::from(store),
            prefix,
            cache: options.cache_dir,
            collect_after: options.collect_after,
            keep_generations: options.keep_generations,
            cache_writes: options.cache_writes,
            base_generation: Mutex::new(None),
            checked: Mutex::default(),
            sessions: std::sync::Arc::default(),
            runtime: Some(runtime),
        };
        storage.list().map_err(|e| invalid(format!("cannot be listed: {}", storage.explain(e))))?;
        Ok(storage)
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What a failure to reach the store most likely means, for a person.
    fn explain(&self, error: Error) -> String {
        let text = error.to_string();
        let credentials = self.provider.credentials();
        // Credentials first: S3 says an unknown key "does not exist in our records".
        let refused = ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "credential"];
        let no_metadata_service = ["/latest/api/token", "169.254.169.254", "metadata"];
        let unreachable = ["onnect", "dns", "timed out", "error sending request"];
        let hint = if no_metadata_service.iter().any(|sign| text.contains(sign)) {
            format!(
                "no credentials: none in the settings or the environment, and no instance metadata service \
                 answered; set {credentials}"
            )
        } else if refused.iter().any(|code| text.contains(code)) {
            format!("the credentials are refused; check {credentials}")
        } else if text.contains("NoSuchBucket") || text.contains("does not exist") {
            format!("the {} does not exist; create it first", self.provider.bucket())
        } else if unreachable.iter().any(|sign| text.contains(sign)) {
            format!("the store cannot be reached; {}", self.provider.endpoint())
        } else {
            format!("check the URL and {credentials}")
        };
        format!("{hint} ({text})")
    }

    fn location(&self, name: &str) -> ObjectPath {
        self.prefix.clone().join(name)
    }

    /// Runs `work` on the storage's runtime and waits for it, from any thread (an async one
    /// included: the work never runs on the caller's runtime).
    fn run<T: Send + 'static>(&self, work: impl Future<Output = T> + Send + 'static) -> Result<T> {
        let (send, receive) = sync_channel(1);
        if let Some(runtime) = &self.runtime {
            runtime.spawn(async move {
                let _ = send.send(work.await);
            });
        }
        receive.recv().map_err(|_| Error::Storage { url: self.url.clone(), reason: "its I/O thread stopped".into() })
    }

    /// `error` as the crate's: a missing object is `NotFound` I/O (what `read_if_exists`
    /// looks for), anything else I/O naming the object.
    fn error(&self, name: &str, error: object_store::Error) -> Error {
        let kind = match &error {
            object_store::Error::NotFound { .. } => std::io::ErrorKind::NotFound,
            _ => std::io::ErrorKind::Other,
        };
        Error::io(self.shown.join(name), std::io::Error::new(kind, error.to_string()))
    }

    fn cached(&self, name: &str) -> PathBuf {
        self.cache.join(name)
    }

    /// Puts `bytes` at `name` into the cache directory, under a temp name then renamed.
    fn cache_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        // A temp name of this call's own: two threads may fetch the same file at once.
        static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let fetch = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.cached(name);
        let temp = self.cache.join(format!(".{name}.tmp-{}-{fetch}", std::process::id()));
        let mut file = fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&temp, e))?;
        fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))
    }

    /// The object `name`, fetched whole.
    fn fetch(&self, name: &str) -> Result<Vec<u8>> {
        let (store, location) = (self.store.clone(), self.location(name));
        let fetched = self.run(async move {
            let got = store.get(&location).await?;
            got.bytes().await
        })?;
        fetched.map(|b| b.to_vec()).map_err(|e| self.error(name, e))
    }

    fn put(&self, name: &str, bytes: &[u8], mode: PutMode) -> Result<()> {
        let (store, location) = (self.store.clone(), self.location(name));
        let payload = bytes.to_vec();
        let put = if payload.len() > MULTIPART_ABOVE && matches!(mode, PutMode::Overwrite) {
            self.run(async move {
                let mut upload = WriteMultipart::new(store.put_multipart(&location).await?);
                upload.write(&payload);
                upload.finish().await.map(drop)
            })?
        } else {
            let options = PutOptions { mode, ..PutOptions::default() };
            self.run(async move { store.put_opts(&location, PutPayload::from(payload), options).await.map(drop) })?
        };
        put.map_err(|e| match e {
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
                Error::Conflict { path: self.shown.clone(), generation: generation_of(name).unwrap_or_default() }
            }
            other => self.error(name, other),
        })?;
        self.listed(name, Some(bytes.len() as u64));
        Ok(())
    }

    /// Removes from the cache directory every file not in `keep`, returning how many it removed.
    /// Files being fetched (temp names, starting with `.`) are left alone. A removed file that
    /// an older index still maps stays readable through its mapping until that index is dropped.
    pub(crate) fn keep_cached(&self, keep: &std::collections::HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.cache).map_err(|e| Error::io(&self.cache, e))? {
            let entry = entry.map_err(|e| Error::io(&self.cache, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || keep.contains(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            self.checked().remove(&name);
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(entry.path(), e)),
            }
        }
        Ok(removed)
    }

    fn checked(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.checked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every object under the prefix (not below it), with its length and age: listed once per
    /// session (`Directory::session`), afresh outside one.
    fn objects(&self) -> Result<Vec<Object>> {
        {
            let sessions = self.sessions();
            match &sessions.listing {
                _ if sessions.open == 0 => {}
                Some(listing) => return Ok(listing.clone()),
                None => {}
            }
        }
        let listing = self.list_objects()?;
        let mut sessions = self.sessions();
        if sessions.open > 0 {
            sessions.listing.get_or_insert_with(|| listing.clone());
        }
        Ok(listing)
    }

    /// Records in the session's listing, if any, that this process created `name` (`len`
    /// bytes) or, with `None`, removed it.
    fn listed(&self, name: &str, len: Option<u64>) {
        if let Some(listing) = &mut self.sessions().listing {
            listing.retain(|(listed, _, _)| listed != name);
            listing.extend(len.map(|len| (name.to_owned(), len, Duration::ZERO)));
        }
    }

    fn list_objects(&self) -> Result<Vec<Object>> {
        let (store, prefix) = (self.store.clone(), self.prefix.clone());
        let listed = self.run(async move { store.list_with_delimiter(Some(&prefix)).await })?;
        let listed = listed.map_err(|e| self.error("", e))?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_owned();
                let age = Duration::from_secs((now - meta.last_modified.timestamp()).max(0) as u64);
                Some((name, meta.size, age))
            })
            .collect())
    }
}

impl Directory for ObjectStorage {
    fn path(&self) -> &Path {
        &self.shown
    }

    /// Object storage has no directories: an empty prefix is an empty directory (opening one
    /// is `Error::NoSnapshot`: nothing was pushed there yet), and a missing bucket was refused
    /// by [`ObjectStorage::open`].
    fn kind(&self) -> Result<PathKind> {
        Ok(PathKind::Dir)
    }

    /// Object storage has no directories: a prefix exists once something is put under it.
    fn create(&self) -> Result<()> {
        Ok(())
    }

    fn list(&self) -> Result<Vec<(String, u64)>> {
        Ok(self.objects()?.into_iter().map(|(name, len, _)| (name, len)).collect())
    }

    fn open(&self, name: &str, _access: Access) -> Result<FileBytes> {
        let path = self.cached(name);
        if !path.exists() {
            let bytes = self.fetch(name)?;
            self.cache_file(name, &bytes)?;
        }
        let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        if file.metadata().map_err(|e| Error::io(&path, e))?.len() == 0 {
            return Err(Error::corrupt(self.shown.join(name), "empty object"));
        }
        // SAFETY: the cache file is written whole under a temp name and renamed into place, and
        // never written again (a name always holds the same bytes): the mapping cannot change
        // under the reader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        // Each file's body checksum once per process: a replica's every catch-up opens the
        // whole generation again, mostly files it opened before. A mismatch is left for the
        // reader to report.
        if self.checked().contains(name) {
            return Ok(FileBytes::mapped(map).with_body_checked());
        }
        if format::body_matches_header(&path, &map) {
            self.checked().insert(name.to_owned());
            return Ok(FileBytes::mapped(map).with_body_checked());
        }
        Ok(FileBytes::mapped(map))
    }

    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        let bytes = self.open(name, Access::Sequential)?;
        Ok(bytes[..len.min(bytes.len())].to_vec())
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        self.put(name, bytes, PutMode::Overwrite)?;
        // What was just uploaded need not be fetched again.
        if self.cache_writes { self.cache_file(name, bytes) } else { Ok(()) }
    }

    fn link(&self, from: &str, to: &str) -> Result<()> {
        let (store, source, target) = (self.store.clone(), self.location(from), self.location(to));
        self.run(async move { store.copy(&source, &target).await })?.map_err(|e| self.error(from, e))?;
        // Not listed: `to` is below the prefix (`quarantine/`) or replaced a listed name.
        Ok(())
    }

    /// Puts are durable once acknowledged.
    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        let (store, location) = (self.store.clone(), self.location(name));
        match self.run(async move { store.delete(&location).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error(name, e)),
        }
        self.listed(name, None);
        self.checked().remove(name);
        let _ = fs::remove_file(self.cached(name));
        Ok(())
    }

    fn quarantine(&self, name: &str) -> Result<PathBuf> {
        let aside = format!("quarantine/{name}");
        self.link(name, &aside)?;
        self.remove(name)?;
        Ok(self.shown.join(aside))
    }

    /// No lock: writers are kept apart by the conditional commit (module docs).
    fn lock(&self, _mode: LockMode) -> Result<DirGuard> {
        Ok(DirGuard::new(()))
    }

    fn session(&self) -> DirGuard {
        self.sessions().open += 1;
        DirGuard::new(SessionGuard(self.sessions.clone()))
    }

    fn exists(&self, name: &str) -> bool {
        let (store, location) = (self.store.clone(), self.location(name));
        matches!(self.run(async move { store.head(&location).await }), Ok(Ok(_)))
    }

    /// The manifests of the generations kept, newest first.
    fn manifest_names(&self) -> Result<Vec<String>> {
        let mut generations: Vec<u64> = self.list()?.iter().filter_map(|(name, _)| generation_of(name)).collect();
        generations.sort_unstable_by(|a, b| b.cmp(a));
        Ok(generations.into_iter().take(self.keep_generations).map(generation_name).collect())
    }

    fn commit_manifest(&self, generation: u64, bytes: &[u8], _previous_is_current: bool) -> Result<()> {
        self.put(&generation_name(generation), bytes, PutMode::Create)
    }

    fn base_generation(&self) -> Option<u64> {
        *self.base_generation.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_base_generation(&self, generation: u64) {
        *self.base_generation.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(generation);
    }

    fn collectable(&self) -> Result<Vec<(String, u64)>> {
        let old_enough = self.objects()?.into_iter().filter(|(_, _, age)| *age >= self.collect_after);
        Ok(old_enough.map(|(name, len, _)| (name, len)).collect())
    }
}
