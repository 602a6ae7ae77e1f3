//! Reads and compare-and-swap writes of single objects against the store, waiting for the
//! watch cache to catch up so a client reads its own writes.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use skiff_store::{Compare, Op, Txn};

use crate::cache::decode_kv;
use crate::errors::{ApiError, ApiResult};
use crate::state::ApiServer;

/// An object as currently stored, with the revision that wrote it.
pub struct Current {
    /// The stored object (resourceVersion set).
    pub obj: Value,
    /// Its mod revision (= resourceVersion).
    pub revision: i64,
}

/// The serialized form kept in the store: no resourceVersion (the store's revision is).
fn encode(obj: &mut Value) -> Bytes {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&*obj).unwrap_or_default())
}

/// Reads the current object from the store (not the cache: writes must start from the truth).
pub async fn load(server: &ApiServer, key: &str) -> ApiResult<Option<Current>> {
    let Some(kv) = server.store.get(key).await? else {
        return Ok(None);
    };
    let obj =
        decode_kv(&kv, kv.mod_revision).ok_or_else(|| ApiError::internal(format!("unreadable object at {key}")))?;
    Ok(Some(Current {
        obj,
        revision: kv.mod_revision,
    }))
}

/// Writes `obj` at `key` if the key's mod revision is still `expected` (0 = absent), and
/// returns the object as the watch cache now holds it. `None` when the compare failed.
pub async fn put(server: &ApiServer, key: &str, mut obj: Value, expected: i64) -> ApiResult<Option<Arc<Value>>> {
    let value = encode(&mut obj);
    // The cache takes the object as it is instead of parsing what it reads back.
    server.cache.hint(key, value.clone(), obj);
    let txn = Txn {
        compare: vec![Compare::ModRevision {
            key: key.to_string(),
            revision: expected,
        }],
        success: vec![Op::Put {
            key: key.to_string(),
            value: value.clone(),
        }],
        failure: vec![],
    };
    let resp = match server.store.txn(txn).await {
        Ok(r) => r,
        Err(e) => {
            server.cache.unhint(key, &value);
            return Err(e.into());
        }
    };
    if !resp.succeeded {
        server.cache.unhint(key, &value);
        return Ok(None);
    }
    server.cache.wait_for(resp.revision).await;
    let cached = server
        .cache
        .get_key(key)
        .filter(|o| crate::meta::resource_version(o) == Some(resp.revision));
    match cached {
        Some(o) => Ok(Some(o)),
        // A later write already replaced it: answer with what this write stored.
        None => {
            let kv = resp.results.into_iter().flatten().next();
            let obj = kv.and_then(|kv| decode_kv(&kv, resp.revision));
            Ok(Some(Arc::new(
                obj.ok_or_else(|| ApiError::internal("written object not readable"))?,
            )))
        }
    }
}

/// Deletes `key` if its mod revision is still `expected`; `false` when the compare failed.
pub async fn remove(server: &ApiServer, key: &str, expected: i64) -> ApiResult<bool> {
    let txn = Txn {
        compare: vec![Compare::ModRevision {
            key: key.to_string(),
            revision: expected,
        }],
        success: vec![Op::Delete { key: key.to_string() }],
        failure: vec![],
    };
    let resp = server.store.txn(txn).await?;
    if resp.succeeded {
        server.cache.wait_for(resp.revision).await;
    }
    Ok(resp.succeeded)
}

/// Shared handle type used by handlers.
pub type Server = Arc<ApiServer>;
