//! The single writer: drains queued transactions into one redb write transaction and one
//! durable commit (group commit), then publishes events and answers the callers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, Table, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::codec::{self, Meta, HEADER_LEN};
use crate::error::StoreError;
use crate::history::Hub;
use crate::types::{Compare, Event, EventType, KeyValue, Op, Txn, TxnResponse};

/// Current keys: key -> header + value (see `codec`).
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
/// Store metadata; holds `REVISION_KEY`.
pub(crate) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Key of the current revision in `META`.
pub(crate) const REVISION_KEY: &str = "revision";

/// A queued transaction and where to send its answer.
pub(crate) struct Request {
    pub txn: Txn,
    pub reply: oneshot::Sender<Result<TxnResponse, StoreError>>,
}

/// What one batch did.
struct BatchOutcome {
    revision: i64,
    committed: bool,
    events: Vec<Event>,
    answers: Vec<Result<TxnResponse, StoreError>>,
}

/// Runs until every sender of `rx` is gone; meant for its own thread since commits block on fsync.
pub(crate) fn run(
    db: Arc<Database>,
    hub: Arc<Hub>,
    mut rx: mpsc::Receiver<Request>,
    max_batch: usize,
    commits: Arc<AtomicU64>,
) {
    let mut revision = hub.revision();
    let mut batch: Vec<Request> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        match apply_batch(&db, revision, &batch) {
            Ok(outcome) => {
                revision = outcome.revision;
                if outcome.committed {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                hub.publish(outcome.events, revision);
                for (req, answer) in batch.drain(..).zip(outcome.answers) {
                    // A caller that went away no longer needs its answer; the write stands.
                    let _ = req.reply.send(answer);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, size = batch.len(), "store group commit failed");
                let message = err.to_string();
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Commit(message.clone())));
                }
            }
        }
    }
}

/// Applies `batch` in order in one write transaction, committing durably if anything changed.
fn apply_batch(db: &Database, start_revision: i64, batch: &[Request]) -> Result<BatchOutcome, StoreError> {
    let wtx = db.begin_write()?;
    let mut revision = start_revision;
    let mut events = Vec::new();
    let mut answers = Vec::with_capacity(batch.len());
    {
        let mut kv = wtx.open_table(KV)?;
        let mut scratch = Vec::new();
        for req in batch {
            answers.push(apply_txn(&mut kv, &req.txn, &mut revision, &mut events, &mut scratch)?);
        }
    }
    let committed = revision != start_revision;
    if committed {
        wtx.open_table(META)?.insert(REVISION_KEY, revision)?;
        wtx.commit()?;
    } else {
        // Nothing changed: reads and failed compares need no fsync.
        wtx.abort()?;
    }
    Ok(BatchOutcome {
        revision,
        committed,
        events,
        answers,
    })
}

/// Applies one transaction; the inner `Err` refuses it before it changed anything, the outer one aborts the batch.
fn apply_txn(
    kv: &mut Table<&str, &[u8]>,
    txn: &Txn,
    revision: &mut i64,
    events: &mut Vec<Event>,
    scratch: &mut Vec<u8>,
) -> Result<Result<TxnResponse, StoreError>, StoreError> {
    let mut succeeded = true;
    for compare in &txn.compare {
        let Compare::ModRevision {
            key,
            revision: expected,
        } = compare;
        let actual = read_meta(kv, key)?.map_or(0, |m| m.mod_revision);
        if actual != *expected {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded { &txn.success } else { &txn.failure };
    if let Some(key) = duplicate_write(ops) {
        return Ok(Err(StoreError::DuplicateKey(key.to_owned())));
    }
    let new_revision = *revision + 1;
    let mut changed = false;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Op::Put { key, value } => {
                let prev = read_kv(kv, key)?;
                let meta = match &prev {
                    Some(p) => Meta {
                        create_revision: p.create_revision,
                        mod_revision: new_revision,
                        version: p.version + 1,
                    },
                    None => Meta {
                        create_revision: new_revision,
                        mod_revision: new_revision,
                        version: 1,
                    },
                };
                scratch.clear();
                scratch.resize(HEADER_LEN, 0);
                codec::write_header(meta, scratch);
                scratch.extend_from_slice(value);
                kv.insert(key.as_str(), scratch.as_slice())?;
                let new = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: meta.create_revision,
                    mod_revision: meta.mod_revision,
                    version: meta.version,
                };
                events.push(Event {
                    kind: EventType::Put,
                    kv: new.clone(),
                    prev,
                });
                results.push(Some(new));
                changed = true;
            }
            Op::Delete { key } => {
                let prev = match kv.remove(key.as_str())? {
                    Some(record) => Some(decode(key, record.value())?),
                    None => None,
                };
                if let Some(p) = &prev {
                    let tombstone = KeyValue {
                        key: key.clone(),
                        value: p.value.clone(),
                        create_revision: p.create_revision,
                        mod_revision: new_revision,
                        version: 0,
                    };
                    events.push(Event {
                        kind: EventType::Delete,
                        kv: tombstone,
                        prev: Some(p.clone()),
                    });
                    changed = true;
                }
                results.push(prev);
            }
            Op::Get { key } => results.push(read_kv(kv, key)?),
        }
    }
    if changed {
        *revision = new_revision;
    }
    Ok(Ok(TxnResponse {
        succeeded,
        revision: *revision,
        results,
    }))
}

/// The first key written twice by `ops`, if any.
fn duplicate_write(ops: &[Op]) -> Option<&str> {
    let mut seen = HashSet::new();
    ops.iter()
        .filter(|op| !matches!(op, Op::Get { .. }))
        .map(Op::key)
        .find(|key| !seen.insert(*key))
}

fn read_meta(kv: &Table<&str, &[u8]>, key: &str) -> Result<Option<Meta>, StoreError> {
    match kv.get(key)? {
        Some(record) => codec::read_meta(record.value()).map(Some).ok_or_else(|| corrupt(key)),
        None => Ok(None),
    }
}

fn read_kv(kv: &Table<&str, &[u8]>, key: &str) -> Result<Option<KeyValue>, StoreError> {
    match kv.get(key)? {
        Some(record) => decode(key, record.value()).map(Some),
        None => Ok(None),
    }
}

/// Decodes a record, mapping a malformed one to `Corrupt`.
pub(crate) fn decode(key: &str, record: &[u8]) -> Result<KeyValue, StoreError> {
    codec::decode(key, record).ok_or_else(|| corrupt(key))
}

fn corrupt(key: &str) -> StoreError {
    StoreError::Corrupt { key: key.to_owned() }
}
