//! Errors of the store.

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The requested watch start is older than the history kept; relist and watch from `compact_revision` or later.
    #[error("required revision has been compacted")]
    Compacted {
        /// The oldest revision a watch can start from now.
        compact_revision: i64,
    },
    /// The watcher fell too far behind the live event stream and was dropped; rewatch from its last revision + 1.
    #[error("watcher fell too far behind and was dropped")]
    WatcherLagged,
    /// Compaction was asked for a revision the store has not reached.
    #[error("required revision is a future revision")]
    FutureRevision,
    /// A transaction writes the same key twice (etcd refuses this as well).
    #[error("duplicate key given in txn request: {0}")]
    DuplicateKey(String),
    /// The group commit this transaction was part of failed; nothing of it was applied.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store has shut down (its writer stopped).
    #[error("store is closed")]
    Closed,
    /// A stored record could not be decoded.
    #[error("corrupt record for key {key}")]
    Corrupt {
        /// The key whose record is malformed.
        key: String,
    },
    /// The embedded database failed.
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    /// An I/O error outside the database.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
