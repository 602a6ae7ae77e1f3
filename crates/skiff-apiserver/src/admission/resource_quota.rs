//! ResourceQuota: a create that would take a namespace over a quota's `status.hard` is refused
//! with 403; an admitted one is charged to `status.used` before it is stored, so concurrent
//! creates cannot overshoot together (the quota controller recomputes usage from what exists).

use serde_json::{json, Value};
use skiff_api::quota::{self, Usage};
use skiff_api::registry::{self, ResourceDef};

use crate::errors::{ApiError, ApiResult};
use crate::meta;
use crate::rest::storage;
use crate::state::ApiServer;

/// How often charging retries when a quota changed under it.
const CHARGE_ATTEMPTS: usize = 5;

fn quotas_def() -> Option<&'static ResourceDef> {
    registry::find("", "v1", "resourcequotas")
}

/// Checks `obj` (about to be created) against its namespace's quotas and, unless `dry_run`,
/// charges it to them.
pub async fn admit_create(server: &ApiServer, def: &'static ResourceDef, obj: &Value, dry_run: bool) -> ApiResult<()> {
    let (Some(qdef), Some(ns)) = (quotas_def(), meta::meta_str(obj, "namespace")) else {
        return Ok(());
    };
    if !def.namespaced
        || server
            .cache
            .list(qdef, &qdef.namespace_prefix(Some(ns)), None)
            .0
            .is_empty()
    {
        return Ok(());
    }
    // One charge at a time keeps the read-check-write of `used` simple; quota'd namespaces are few.
    let _guard = server.quota_lock.lock().await;
    let name = meta::name(obj);
    let forbidden = |why: String| ApiError::forbidden_object(def, name, &why);
    let usage = quota::usage(def.group, def.plural, obj, jiff::Timestamp::now());
    for _ in 0..CHARGE_ATTEMPTS {
        let (quotas, _) = server.cache.list(qdef, &qdef.namespace_prefix(Some(ns)), None);
        let mut charges: Vec<(String, Value)> = Vec::new();
        for (key, q) in &quotas {
            let hard = quota::parse_list(&q["status"]["hard"]);
            let matching = quota::matching_resources(def.group, def.plural, hard.keys());
            if matching.is_empty() || !quota::scopes_match(q, def.plural, obj) {
                continue;
            }
            let qname = meta::name(q);
            if def.plural == "pods" && def.group.is_empty() {
                quota::pod_constraints(obj, &matching).map_err(|e| forbidden(format!("failed quota: {qname}: {e}")))?;
            }
            let used = quota::parse_list(&q["status"]["used"]);
            let mut unknown: Vec<&str> = matching
                .iter()
                .filter(|r| !used.contains_key(*r))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                unknown.sort();
                return Err(forbidden(format!(
                    "status unknown for quota: {qname}, resources: {}",
                    unknown.join(",")
                )));
            }
            let requested: Usage = usage
                .iter()
                .filter(|(k, v)| hard.contains_key(*k) && v.milli != 0)
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            if requested.is_empty() {
                continue;
            }
            let mut new_used = used.clone();
            quota::add(&mut new_used, &requested);
            let exceeded: Vec<&String> = requested
                .keys()
                .filter(|k| new_used[*k].milli > hard[*k].milli)
                .collect();
            if !exceeded.is_empty() {
                let mask = |u: &Usage| -> Usage {
                    exceeded
                        .iter()
                        .map(|k| ((*k).clone(), u.get(*k).copied().unwrap_or_default()))
                        .collect()
                };
                return Err(forbidden(format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    quota::pretty(&mask(&requested)),
                    quota::pretty(&mask(&used)),
                    quota::pretty(&mask(&hard))
                )));
            }
            charges.push((key.clone(), quota::to_list(&new_used)));
        }
        if dry_run || charges.is_empty() {
            return Ok(());
        }
        if charge(server, charges).await? {
            return Ok(());
        }
    }
    Err(ApiError::internal(
        "resource quota evaluation could not update a changing quota",
    ))
}

/// Writes the new `status.used` of each quota; `false` when one changed since it was read.
async fn charge(server: &ApiServer, charges: Vec<(String, Value)>) -> ApiResult<bool> {
    for (key, used) in charges {
        let Some(cur) = storage::load(server, &key).await? else {
            return Ok(false);
        };
        let mut q = cur.obj;
        let cached_rv = server.cache.get_key(&key).and_then(|c| meta::resource_version(&c));
        if cached_rv != Some(cur.revision) {
            return Ok(false);
        }
        q["status"]["used"] = json!(used);
        if storage::put(server, &key, q, cur.revision).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}
