//! skiff-store: a revisioned key-value store with etcd semantics.
//!
//! The API server stores every object under a key and uses the store's global revision as
//! `resourceVersion`. The [`Store`] trait is the contract (usable as `Arc<dyn Store>`):
//! point reads, prefix ranges, compare-and-swap transactions, watches from a revision, and
//! compaction of the watch history.
//!
//! Semantics follow etcd:
//! - one global revision; every transaction that changes something bumps it by exactly one,
//!   however many ops it has; read-only and failed transactions do not;
//! - each key carries `create_revision`, `mod_revision` and `version` (puts since creation);
//!   [`Compare::ModRevision`] with revision 0 means "the key does not exist" (create-if-absent);
//! - a watch replays the in-memory history from its start revision, then follows live commits.
//!
//! The embedded backend is [`RedbStore`]: the current state lives in a redb file; one writer
//! thread drains queued transactions into one redb write transaction with one durable commit
//! (group commit), and answers callers and publishes watch events only after the fsync.
//! The history of recent events stays in memory only, so after a restart watches can start only
//! from the current revision on; older ones get [`StoreError::Compacted`] and clients relist.
//!
//! [`bench`] measures durable writes/s against Debian's etcd.

pub mod bench;
mod codec;
mod error;
mod history;
mod redb_store;
mod store;
mod types;
mod writer;

#[cfg(test)]
mod tests;

pub use error::StoreError;
pub use redb_store::{RedbOptions, RedbStore};
pub use store::{Store, WatchStream};
pub use types::{Compare, Event, EventType, KeyValue, Op, RangeResponse, Revision, Txn, TxnResponse};
