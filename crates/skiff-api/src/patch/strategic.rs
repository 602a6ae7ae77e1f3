//! Strategic merge patch with the semantics of apimachinery's `strategicpatch` (server side:
//! parallel lists merged, unmatched nulls ignored), over `serde_json::Value`. Unlike upstream,
//! values copied from the patch are cleaned too, so directive keys never reach the result.

use serde_json::{Map, Value};

use super::error::go_kind;
use super::merge_keys::MergeInfo;
use super::schema::{graph, Graph, Shape};
use super::PatchError;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER_PREFIX: &str = "$setElementOrder";
const DELETE_PRIMITIVE_PREFIX: &str = "$deleteFromPrimitiveList";

type Result<T> = std::result::Result<T, PatchError>;

/// Strategic merge patch of a built-in kind, identified by API group (`""` = core) and kind.
/// Kinds without compiled types (CRDs) give [`PatchError::UnsupportedKind`], as upstream's 415.
pub fn strategic_merge_patch(doc: &Value, patch: &Value, group: &str, kind: &str) -> Result<Value> {
    let g = graph();
    let shape = g.kind(group, kind).ok_or_else(|| PatchError::UnsupportedKind {
        group: group.to_string(),
        kind: kind.to_string(),
    })?;
    let out = apply(g, &shape, doc, patch)?;
    super::limits::check_object_size(&out)?;
    Ok(out)
}

/// Applies `patch` to `doc` (null = empty object) where the whole document has shape `shape`.
pub(crate) fn apply(g: &Graph, shape: &Shape, doc: &Value, patch: &Value) -> Result<Value> {
    let Value::Object(p) = patch else {
        return Err(PatchError::BadJsonDoc);
    };
    let original = match doc {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadJsonDoc),
    };
    Ok(Value::Object(Merger { g }.merge_map(original, p.clone(), shape)?))
}

/// The list strategy of a field: whether it merges, and by which key.
fn list_strategy(info: Option<MergeInfo>) -> (bool, Option<&'static str>) {
    match info {
        Some(i) if i.strategy.split(',').any(|s| s == "merge") => (true, i.key),
        _ => (false, None),
    }
}

fn is_replace(info: Option<MergeInfo>) -> bool {
    info.is_some_and(|i| i.strategy.split(',').any(|s| s == "replace"))
}

fn compact(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Equality as Go compares decoded JSON: numbers by value (`1` equals `1.0`).
fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64()),
        _ => a == b,
    }
}

fn has_delete_directive(v: &Value) -> bool {
    v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete")
}

fn no_merge_key(v: &Value, key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: compact(v),
        key: key.to_string(),
    }
}

fn bad_type(expected: &'static str, v: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        received: go_kind(v),
    }
}

/// The value of an item used for ordering: its merge key for maps, itself for scalars.
fn order_key<'v>(item: &'v Value, key: Option<&str>) -> Option<&'v Value> {
    match key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

/// Position of `item` in `order` (by merge key for maps), if present.
fn index_of(order: &[Value], item: &Value, key: Option<&str>) -> Option<usize> {
    let want = order_key(item, key);
    order.iter().position(|o| match (order_key(o, key), want) {
        (Some(a), Some(b)) => scalar_eq(a, b),
        (None, None) => true,
        _ => false,
    })
}

/// Whether the elements of the lists are maps; errors on lists of lists or mixed types.
fn elements_are_maps(lists: &[&[Value]]) -> Result<bool> {
    let mut seen: Option<&'static str> = None;
    for v in lists.iter().flat_map(|l| l.iter()).filter(|v| !v.is_null()) {
        let k = go_kind(v);
        if k == "slice" {
            return Err(PatchError::NoListOfLists);
        }
        match seen {
            None => seen = Some(k),
            Some(s) if s != k => {
                return Err(PatchError::Invalid(format!(
                    "list element types are not identical: {}",
                    compact(&lists)
                )))
            }
            Some(_) => {}
        }
    }
    Ok(seen == Some("map"))
}

/// Splits `items` into those present in `by` and the others, keeping their order.
fn partition(items: Vec<Value>, by: &[Value], key: Option<&str>) -> Result<(Vec<Value>, Vec<Value>)> {
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for v in items {
        if let Some(k) = key {
            if !v.is_object() {
                return Err(bad_type("map", &v));
            }
            if v.get(k).is_none() {
                return Err(no_merge_key(&v, k));
            }
        }
        if index_of(by, &v, key).is_some() {
            inside.push(v);
        } else {
            outside.push(v);
        }
    }
    Ok((inside, outside))
}

/// Stable sort of `items` by their position in `order`; items not in `order` go last.
fn sort_by_order(mut items: Vec<Value>, order: &[Value], key: Option<&str>) -> Result<Vec<Value>> {
    if let Some(k) = key {
        if let Some(bad) = items.iter().chain(order).find(|v| v.get(k).is_none()) {
            return Err(no_merge_key(bad, k));
        }
    }
    items.sort_by_cached_key(|v| index_of(order, v, key).unwrap_or(usize::MAX));
    Ok(items)
}

/// Upstream's normalizeElementOrder: patch items in patch order, server-only items in server
/// order, interleaved so that server-only items keep their place relative to the live list.
fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>> {
    let right = sort_by_order(patch_items, patch_order, key)?;
    let left = sort_by_order(server_only, server_order, key)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (index_of(server_order, l, key), index_of(server_order, r, key)) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// Upstream's validatePatchWithSetOrderList: the patch list must follow the order list.
fn validate_order(patch_list: &[Value], order: &[Value], key: Option<&str>) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch_list.len());
    for v in patch_list {
        if key.is_some() && !v.is_object() {
            return Err(bad_type("map", v));
        }
        if key.is_none() || !has_delete_directive(v) {
            items.push(v);
        }
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi].get(DIRECTIVE).is_some() {
            pi += 1;
            continue;
        }
        let equal = match key {
            None => scalar_eq(items[pi], &order[oi]),
            Some(k) => {
                let a = items[pi].get(k).ok_or_else(|| no_merge_key(items[pi], k))?;
                let b = order[oi].get(k).ok_or_else(|| no_merge_key(&order[oi], k))?;
                scalar_eq(a, b)
            }
        };
        if equal {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() {
        return Err(PatchError::Invalid(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER_PREFIX} list:\n{}\n",
            compact(&patch_list),
            compact(&order)
        )));
    }
    Ok(())
}

/// `$retainKeys`: drop every key of `original` not listed; every patched key must be listed.
fn retain_keys(original: &mut Map<String, Value>, patch: &mut Map<String, Value>) -> Result<()> {
    let Some(list) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let listed = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_PRIMITIVE_PREFIX) || k.starts_with(SET_ORDER_PREFIX) {
            continue;
        }
        if !listed(k) {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// Takes a list out of a map, or errors if the value is not a list.
fn take_list(map: &mut Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>> {
    match map.remove(key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(bad_type("slice", &other)),
    }
}

struct Merger<'g> {
    g: &'g Graph,
}

impl Merger<'_> {
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        shape: &Shape,
    ) -> Result<Map<String, Value>> {
        if let Some(d) = patch.get(DIRECTIVE) {
            match d.as_str() {
                Some("replace") => {
                    patch.remove(DIRECTIVE);
                    return self.merge_map(Map::new(), patch, shape);
                }
                Some("delete") => return Ok(Map::new()),
                // Upstream refuses `merge` in a map; it is what merging does anyway, so accept it.
                Some("merge") => {
                    patch.remove(DIRECTIVE);
                }
                _ => {
                    let patch_type = d.as_str().map_or_else(|| compact(d), str::to_string);
                    return Err(PatchError::BadPatchType {
                        patch_type,
                        map: compact(&patch),
                    });
                }
            }
        }
        retain_keys(&mut original, &mut patch)?;
        self.set_element_orders(&mut original, &mut patch, shape)?;
        for (k, pv) in patch {
            let (key, delete_list) = match k.strip_prefix(DELETE_PRIMITIVE_PREFIX) {
                Some(rest) => {
                    let key = rest
                        .strip_prefix('/')
                        .ok_or(PatchError::BadPatchFormatForPrimitiveList)?;
                    (key.to_string(), true)
                }
                None => (k, false),
            };
            if pv.is_null() {
                original.remove(&key);
                continue;
            }
            let (sub, info) = self.g.field(shape, &key);
            match original.get_mut(&key) {
                None if delete_list => {}
                None => {
                    let v = self.fresh(pv, sub, info)?;
                    original.insert(key, v);
                }
                Some(slot) => {
                    let ov = std::mem::take(slot);
                    *slot = self.merge_value(ov, pv, sub, info, delete_list)?;
                }
            }
        }
        Ok(original)
    }

    fn merge_value(
        &self,
        ov: Value,
        pv: Value,
        shape: &Shape,
        info: Option<MergeInfo>,
        delete_list: bool,
    ) -> Result<Value> {
        Ok(match (ov, pv) {
            (Value::Object(o), Value::Object(p)) if !is_replace(info) => Value::Object(self.merge_map(o, p, shape)?),
            (Value::Array(o), Value::Array(p)) => Value::Array(self.merge_list(o, p, shape, info, delete_list)?),
            (ov, _) if delete_list => ov,
            (_, pv) => self.fresh(pv, shape, info)?,
        })
    }

    /// A patch value with nothing under it: merged into emptiness, which drops nulls and directives.
    fn fresh(&self, pv: Value, shape: &Shape, info: Option<MergeInfo>) -> Result<Value> {
        Ok(match pv {
            Value::Object(p) => Value::Object(self.merge_map(Map::new(), p, shape)?),
            Value::Array(p) => Value::Array(self.merge_list(Vec::new(), p, shape, info, false)?),
            other => other,
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        shape: &Shape,
        info: Option<MergeInfo>,
        delete_list: bool,
    ) -> Result<Vec<Value>> {
        let elem = self.g.elem(shape);
        match list_strategy(info) {
            (true, key) => self.merge_slice(original, patch, elem, key, delete_list),
            // Upstream would replace the list by the deletion list; deleting is what was asked.
            (false, _) if delete_list => Ok(original
                .into_iter()
                .filter(|v| !patch.iter().any(|d| scalar_eq(v, d)))
                .collect()),
            (false, _) => patch.into_iter().map(|v| self.fresh(v, elem, None)).collect(),
        }
    }

    fn merge_slice(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        elem: &Shape,
        key: Option<&str>,
        delete_list: bool,
    ) -> Result<Vec<Value>> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        if !elements_are_maps(&[&original, &patch])? {
            if delete_list {
                return Ok(original
                    .into_iter()
                    .filter(|v| !patch.iter().any(|d| scalar_eq(v, d)))
                    .collect());
            }
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(&patch) {
                if !merged.iter().any(|m| scalar_eq(m, v)) {
                    merged.push(v.clone());
                }
            }
            let (inside, outside) = partition(merged, &patch, None)?;
            return normalize(inside, outside, &patch, &original, None);
        }
        let Some(key) = key else {
            return Err(PatchError::Invalid(
                "cannot merge lists without merge key for type map".to_string(),
            ));
        };
        let (original, plain) = self.special_elements(original, patch, key, elem)?;
        let server_order = original.clone();
        let merged = self.merge_by_key(original, plain.clone(), key, elem)?;
        let (inside, outside) = partition(merged, &plain, Some(key))?;
        normalize(inside, outside, &plain, &server_order, Some(key))
    }

    /// Handles `$patch` elements: deletes by merge key, or `replace` (the list becomes the
    /// patch's plain elements). Returns the original to merge into and the plain patch elements.
    fn special_elements(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        elem: &Shape,
    ) -> Result<(Vec<Value>, Vec<Value>)> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for v in patch {
            let Some(d) = v.get(DIRECTIVE) else {
                plain.push(v);
                continue;
            };
            match d.as_str() {
                Some("delete") => {
                    let target = v.get(key).ok_or_else(|| no_merge_key(&v, key))?;
                    original.retain(|o| !o.get(key).is_some_and(|x| scalar_eq(x, target)));
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(PatchError::Invalid(
                        "merging lists cannot yet be specified in the patch".to_string(),
                    ))
                }
                _ => {
                    let patch_type = d.as_str().map_or_else(|| compact(d), str::to_string);
                    return Err(PatchError::BadPatchType {
                        patch_type,
                        map: compact(&v),
                    });
                }
            }
        }
        if replace {
            let list = plain
                .into_iter()
                .map(|v| self.fresh(v, elem, None))
                .collect::<Result<_>>()?;
            return Ok((list, Vec::new()));
        }
        Ok((original, plain))
    }

    /// Merges each patch element into the original element with the same merge key, or appends it.
    fn merge_by_key(&self, mut original: Vec<Value>, plain: Vec<Value>, key: &str, elem: &Shape) -> Result<Vec<Value>> {
        for v in plain {
            let Value::Object(pm) = v else {
                return Err(bad_type("map", &v));
            };
            let target = pm
                .get(key)
                .cloned()
                .ok_or_else(|| no_merge_key(&Value::Object(pm.clone()), key))?;
            let mut found = None;
            for (i, o) in original.iter().enumerate() {
                if !o.is_object() {
                    return Err(PatchError::Invalid(format!("value for key {i} is not a map.")));
                }
                if o.get(key).is_some_and(|x| scalar_eq(x, &target)) {
                    found = Some(i);
                    break;
                }
            }
            match found.and_then(|i| original.get_mut(i)) {
                Some(slot) => match std::mem::take(slot) {
                    Value::Object(om) => *slot = Value::Object(self.merge_map(om, pm, elem)?),
                    other => return Err(bad_type("map", &other)),
                },
                None => original.push(Value::Object(self.merge_map(Map::new(), pm, elem)?)),
            }
        }
        Ok(original)
    }

    /// `$setElementOrder/<list>`: merges that list now and orders it as the directive says.
    fn set_element_orders(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        shape: &Shape,
    ) -> Result<()> {
        let keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ORDER_PREFIX))
            .cloned()
            .collect();
        for k in keys {
            let order = match patch.remove(&k) {
                Some(Value::Array(a)) => a,
                Some(other) => return Err(bad_type("slice", &other)),
                None => continue,
            };
            let list_key = k
                .strip_prefix(SET_ORDER_PREFIX)
                .and_then(|r| r.strip_prefix('/'))
                .ok_or(PatchError::BadPatchFormatForSetElementOrderList)?;
            let orig_list = match original.get(list_key) {
                None => None,
                Some(Value::Array(a)) => Some(a.clone()),
                Some(other) => return Err(bad_type("slice", other)),
            };
            let patch_list = take_list(patch, list_key)?;
            let (sub, info) = self.g.field(shape, list_key);
            let (_, mkey) = list_strategy(info);
            validate_order(patch_list.as_deref().unwrap_or_default(), &order, mkey)?;
            let server_order = orig_list.clone().unwrap_or_default();
            let merged = match (orig_list, patch_list) {
                (None, None) => continue,
                (Some(o), None) => o,
                (o, Some(p)) => self.merge_list(o.unwrap_or_default(), p, sub, info, false)?,
            };
            let (inside, outside) = partition(merged, &order, mkey)?;
            let ordered = normalize(inside, outside, &order, &server_order, mkey)?;
            original.insert(list_key.to_string(), Value::Array(ordered));
        }
        Ok(())
    }
}
