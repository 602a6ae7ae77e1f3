//! Behaviour tests of the store semantics, run against `RedbStore`.

mod durability;
mod range;
mod txn;
mod watch;

use std::sync::Arc;

use bytes::Bytes;

use crate::{Compare, Op, RedbOptions, RedbStore, Txn};

/// A fresh store in its own temp dir (kept alive by the returned guard).
pub(crate) fn fresh(opts: RedbOptions) -> (Arc<RedbStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open_with(dir.path().join("store.redb"), opts).unwrap();
    (store, dir)
}

/// Create-if-absent, answering the current kv on conflict (what the API server does for create).
pub(crate) fn create(key: &str, value: &str) -> Txn {
    Txn {
        compare: vec![Compare::ModRevision {
            key: key.into(),
            revision: 0,
        }],
        success: vec![put_op(key, value)],
        failure: vec![Op::Get { key: key.into() }],
    }
}

/// Compare-and-swap on mod revision, answering the current kv on conflict.
pub(crate) fn cas(key: &str, revision: i64, value: &str) -> Txn {
    Txn {
        compare: vec![Compare::ModRevision {
            key: key.into(),
            revision,
        }],
        success: vec![put_op(key, value)],
        failure: vec![Op::Get { key: key.into() }],
    }
}

/// Unconditional ops.
pub(crate) fn ops(ops: Vec<Op>) -> Txn {
    Txn {
        compare: vec![],
        success: ops,
        failure: vec![],
    }
}

pub(crate) fn put_op(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

pub(crate) fn del_op(key: &str) -> Op {
    Op::Delete { key: key.into() }
}
