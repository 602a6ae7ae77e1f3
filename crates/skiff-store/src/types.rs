//! Data types of the store interface: key-values, transactions, events.

use bytes::Bytes;

/// A store revision: the global counter bumped by every transaction that changes something.
pub type Revision = i64;

/// One key with its value and etcd-style revision bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (for a Delete event: the last value before the deletion).
    pub value: Bytes,
    /// Revision of the transaction that created the key (since its last deletion).
    pub create_revision: i64,
    /// Revision of the last transaction that changed the key.
    pub mod_revision: i64,
    /// Number of puts since the key was created (1 after creation).
    pub version: i64,
}

/// A condition of a transaction, evaluated against the state when the transaction runs.
#[derive(Clone, Debug)]
pub enum Compare {
    /// The key's mod_revision equals `revision` (0 means: the key does not exist).
    ModRevision {
        /// Key to check.
        key: String,
        /// Expected mod revision; 0 for "absent".
        revision: i64,
    },
}

/// One operation of a transaction branch.
#[derive(Clone, Debug)]
pub enum Op {
    /// Create or replace the key.
    Put {
        /// Key to write.
        key: String,
        /// New value.
        value: Bytes,
    },
    /// Remove the key if present.
    Delete {
        /// Key to remove.
        key: String,
    },
    /// Read the key (sees the effects of earlier ops of the same transaction).
    Get {
        /// Key to read.
        key: String,
    },
}

impl Op {
    /// The key this op addresses.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key } | Op::Get { key } => key,
        }
    }
}

/// An etcd-style transaction: if all `compare` hold, run `success`, else run `failure`.
#[derive(Clone, Debug, Default)]
pub struct Txn {
    /// Conditions, all of which must hold.
    pub compare: Vec<Compare>,
    /// Ops run when every compare holds.
    pub success: Vec<Op>,
    /// Ops run otherwise.
    pub failure: Vec<Op>,
}

/// Outcome of a transaction.
#[derive(Clone, Debug)]
pub struct TxnResponse {
    /// Whether the compares held (and so `success` ran).
    pub succeeded: bool,
    /// Store revision after the txn.
    pub revision: i64,
    /// One entry per executed op: Put -> the new kv, Delete -> the deleted kv (None if absent), Get -> the kv.
    pub results: Vec<Option<KeyValue>>,
}

/// Kind of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change of one key.
#[derive(Clone, Debug)]
pub struct Event {
    /// Put or Delete.
    pub kind: EventType,
    /// For Put: the new kv. For Delete: the key, the last value, and mod_revision = the revision of the deletion.
    pub kv: KeyValue,
    /// The kv before this change, if the key existed.
    pub prev: Option<KeyValue>,
}

/// Result of a range read.
#[derive(Clone, Debug)]
pub struct RangeResponse {
    /// Matching keys, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// Revision the range was read at.
    pub revision: i64,
    /// Whether more keys matched beyond `limit`.
    pub more: bool,
}
