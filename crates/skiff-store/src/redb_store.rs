//! The embedded backend: current state in a redb file, recent history in memory, group commit.

use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Mutex, RwLock};

use futures::future::BoxFuture;
use futures::FutureExt;
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;
use crate::history::Hub;
use crate::store::{Store, WatchStream};
use crate::types::{KeyValue, RangeResponse, Txn, TxnResponse};
use crate::writer::{self, Request, KV, META, REVISION_KEY};

/// Tuning of a [`RedbStore`].
#[derive(Clone, Debug)]
pub struct RedbOptions {
    /// Events kept in memory for watch resumption.
    pub history: usize,
    /// Most bytes of keys and values (including previous values) that history keeps.
    pub history_bytes: usize,
    /// Most transactions folded into one commit.
    pub max_batch: usize,
    /// Event batches queued per watcher before it is dropped as lagged.
    pub watch_queue: usize,
    /// Transactions waiting for the writer before callers wait to enqueue.
    pub queue: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        RedbOptions {
            history: 100_000,
            history_bytes: 256 << 20,
            max_batch: 1024,
            watch_queue: 4096,
            queue: 8192,
        }
    }
}

/// Revision of a fresh store (as etcd's), so no stored object ever has revision 0.
const INITIAL_REVISION: i64 = 1;

/// The embedded store: a redb file written by one writer thread with group commit.
pub struct RedbStore {
    /// `None` once closed: dropping the last `Database` releases the file lock.
    db: RwLock<Option<Arc<Database>>>,
    hub: Arc<Hub>,
    tx: RwLock<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
}

/// redb's page cache (reads and pending writes).
const PAGE_CACHE_BYTES: usize = 64 << 20;

impl RedbStore {
    /// Opens (or creates) the store file at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<RedbStore>, StoreError> {
        Self::open_with(path, RedbOptions::default())
    }

    /// Opens (or creates) the store file at `path`.
    pub fn open_with(path: impl AsRef<Path>, opts: RedbOptions) -> Result<Arc<RedbStore>, StoreError> {
        // redb caches up to 1 GiB of pages by default, which grows to the whole file; the API
        // server reads from its own watch cache, so the store needs pages for writes only.
        let path = path.as_ref();
        create_private(path)?;
        let db = Arc::new(redb::Builder::new().set_cache_size(PAGE_CACHE_BYTES).create(path)?);
        let revision = {
            let wtx = db.begin_write()?;
            wtx.open_table(KV)?;
            let revision = {
                let mut meta = wtx.open_table(META)?;
                let stored = meta.get(REVISION_KEY)?.map(|g| g.value());
                match stored {
                    Some(rev) => rev,
                    None => {
                        meta.insert(REVISION_KEY, INITIAL_REVISION)?;
                        INITIAL_REVISION
                    }
                }
            };
            wtx.commit()?;
            revision
        };
        let hub = Arc::new(Hub::new(revision, opts.history, opts.history_bytes, opts.watch_queue));
        let commits = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let writer = {
            let (db, hub, commits) = (db.clone(), hub.clone(), commits.clone());
            let max_batch = opts.max_batch.max(1);
            std::thread::Builder::new()
                .name("skiff-store-writer".into())
                .spawn(move || writer::run(db, hub, rx, max_batch, commits))?
        };
        Ok(Arc::new(RedbStore {
            db: RwLock::new(Some(db)),
            hub,
            tx: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            commits,
        }))
    }

    /// Durable commits made since open (one per group of transactions that changed something).
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Live watchers.
    pub fn watcher_count(&self) -> usize {
        self.hub.watcher_count()
    }

    /// The database, unless closed.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.db.read().clone().ok_or(StoreError::Closed)
    }

    /// Stops taking transactions, lets the writer commit what is queued, and closes the
    /// file (once reads in flight finish), however many references to the store remain.
    fn close_blocking(&self) {
        self.tx.write().take();
        let writer = self.writer.lock().take();
        if let Some(writer) = writer {
            if writer.join().is_err() {
                tracing::error!("store writer thread panicked");
            }
        }
        self.db.write().take();
    }

    fn get_blocking(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let rtx = self.db()?.begin_read()?;
        let table = rtx.open_table(KV)?;
        let record = table.get(key)?;
        record.map(|r| writer::decode(key, r.value())).transpose()
    }
}

/// Reads a range in one read transaction, so `kvs` and `revision` are one consistent snapshot.
fn range_blocking(
    db: &Database,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
) -> Result<RangeResponse, StoreError> {
    let rtx = db.begin_read()?;
    let revision = rtx
        .open_table(META)?
        .get(REVISION_KEY)?
        .map_or(INITIAL_REVISION, |g| g.value());
    let table = rtx.open_table(KV)?;
    let lower = match start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut kvs = Vec::new();
    let mut more = false;
    for entry in table.range::<&str>((lower, Bound::Unbounded))? {
        let (key, record) = entry?;
        let key = key.value();
        if !key.starts_with(prefix) {
            break;
        }
        if limit > 0 && kvs.len() == limit {
            more = true;
            break;
        }
        kvs.push(writer::decode(key, record.value())?);
    }
    Ok(RangeResponse { kvs, revision, more })
}

impl Store for RedbStore {
    fn get(&self, key: &str) -> BoxFuture<'_, Result<Option<KeyValue>, StoreError>> {
        // A point read is a few microseconds: not worth a thread hop.
        futures::future::ready(self.get_blocking(key)).boxed()
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> BoxFuture<'_, Result<RangeResponse, StoreError>> {
        let db = self.db();
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        async move {
            let db = db?;
            // A range may read many megabytes; keep it off the async workers.
            tokio::task::spawn_blocking(move || range_blocking(&db, &prefix, start_after.as_deref(), limit))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
        }
        .boxed()
    }

    fn txn(&self, txn: Txn) -> BoxFuture<'_, Result<TxnResponse, StoreError>> {
        async move {
            let tx = self.tx.read().clone().ok_or(StoreError::Closed)?;
            let (reply, answer) = oneshot::channel();
            tx.send(Request { txn, reply }).await.map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        }
        .boxed()
    }

    fn watch(&self, prefix: &str, from_revision: i64) -> Result<WatchStream, StoreError> {
        self.hub.watch(prefix, from_revision)
    }

    fn revision(&self) -> i64 {
        self.hub.revision()
    }

    fn compact(&self, revision: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        futures::future::ready(self.hub.compact(revision)).boxed()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        self.tx.write().take();
        self.db.write().take();
        let writer = self.writer.lock().take();
        async move {
            // Joining the writer waits for its last fsync (it holds the file until then): off
            // the async workers.
            if let Some(writer) = writer {
                let joined = tokio::task::spawn_blocking(move || writer.join()).await;
                if !matches!(joined, Ok(Ok(()))) {
                    tracing::error!("store writer thread panicked");
                }
            }
        }
        .boxed()
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.close_blocking();
    }
}

/// Creates the store file readable by its owner only (it holds every Secret) before redb opens
/// it; redb initializes an empty file as a new database. An existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}
