//! ControllerRevisions as upstream's StatefulSet and DaemonSet controllers keep them
//! (`pkg/controller/history`): one revision per distinct pod template, named `OWNER-<hash>`,
//! whose `data` is the strategic merge patch `{"spec":{"template":{…,"$patch":"replace"}}}`
//! that `kubectl rollout undo` applies, numbered by `revision`, truncated to
//! `revisionHistoryLimit` non-live revisions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Map, Value};

use crate::pods::{controller_of, selector_matches};
use crate::Error;

/// upstream `ControllerRevisionHashLabelKey`: on revisions (the hash) and on pods (StatefulSet:
/// the revision name; DaemonSet: the hash).
pub const HASH_LABEL: &str = "controller-revision-hash";

/// upstream `rand.SafeEncodeString` alphabet: no vowels, no look-alikes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// upstream `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels, so a
/// hash never spells words.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// 32-bit FNV-1 (Go's `fnv.New32`, which `HashControllerRevision` uses).
fn fnv1_32(parts: &[&[u8]]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in *part {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    }
    h
}

/// upstream `HashControllerRevision`: FNV-1 over the data bytes and the collision count.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let probe = collision_count.map(|c| c.to_string()).unwrap_or_default();
    safe_encode(&fnv1_32(&[&bytes, probe.as_bytes()]).to_string())
}

/// upstream `ControllerRevisionName`: `PREFIX-HASH`, the prefix cut to 223 characters.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let prefix: String = prefix.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// Go's `encoding/json` omits these when false (`bool` with `omitempty`); k8s-openapi keeps an
/// explicit `false`, so they are dropped to produce the bytes kubectl computes.
const GO_OMITTED_FALSE: &[&str] = &[
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "stdin",
    "stdinOnce",
    "tty",
    "readOnly",
];
/// Likewise for `int32` fields with `omitempty` that are zero.
const GO_OMITTED_ZERO: &[&str] = &["initialDelaySeconds", "hostPort"];

fn go_omit(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, v| {
                !(GO_OMITTED_FALSE.contains(&k.as_str()) && *v == Value::Bool(false)
                    || GO_OMITTED_ZERO.contains(&k.as_str()) && v.as_i64() == Some(0))
            });
            m.values_mut().for_each(go_omit);
        }
        Value::Array(a) => a.iter_mut().for_each(go_omit),
        _ => {}
    }
}

/// The pod template as Go's `json.Marshal` writes it after kubectl decodes it: an always-present
/// `metadata.creationTimestamp: null` and container `resources: {}`, no `omitempty` zeros.
/// kubectl compares these bytes with a revision's `data` to skip a no-op `rollout undo`.
pub fn go_template(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    go_omit(&mut t);
    let Some(obj) = t.as_object_mut() else { return t };
    let meta = obj.entry("metadata").or_insert_with(|| json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.entry("creationTimestamp").or_insert(Value::Null);
    }
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
                if let Some(c) = c.as_object_mut() {
                    c.entry("resources").or_insert_with(|| json!({}));
                }
            }
        }
    }
    t
}

/// upstream `getPatch` of the StatefulSet and DaemonSet controllers: the template, marked to
/// replace the owner's whole template when applied as a strategic merge patch.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = go_template(template);
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The pod template a revision records (upstream `ApplyRevision`: the patch replaces the
/// whole template).
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// Whether a revision records exactly `data` (upstream `EqualRevision` compares the bytes).
pub fn records(rev: &ControllerRevision, data: &Value) -> bool {
    rev.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// upstream `SortControllerRevisions`: by revision, then creation time, then name.
pub fn sort(revs: &mut [Arc<ControllerRevision>]) {
    revs.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let t = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                t(a).cmp(&t(b))
            })
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// upstream `nextRevision`: one more than the highest revision, 1 for the first.
pub fn next_revision(sorted: &[Arc<ControllerRevision>]) -> i64 {
    sorted.last().map(|r| r.revision + 1).unwrap_or(1)
}

/// Revisions in `namespace` controlled by `owner_uid`, and orphans whose labels match the
/// owner's selector (to adopt), sorted.
pub fn owned_and_orphans(
    all: &[Arc<ControllerRevision>],
    namespace: &str,
    owner_uid: &str,
    selector: &LabelSelector,
) -> (Vec<Arc<ControllerRevision>>, Vec<Arc<ControllerRevision>>) {
    let mut owned = Vec::new();
    let mut orphans = Vec::new();
    for r in all.iter().filter(|r| r.namespace().as_deref() == Some(namespace)) {
        match controller_of(&r.metadata) {
            Some(c) if c.uid == owner_uid => owned.push(r.clone()),
            Some(_) => {}
            None if r.metadata.deletion_timestamp.is_none() && selector_matches(selector, r.labels()) => {
                orphans.push(r.clone())
            }
            None => {}
        }
    }
    sort(&mut owned);
    (owned, orphans)
}

/// upstream `truncateHistory` / `cleanupHistory`: the oldest non-live revisions beyond `limit`
/// (`sorted` ascending; `live` holds the names still in use).
pub fn to_truncate<'a>(
    sorted: &'a [Arc<ControllerRevision>],
    live: &HashSet<String>,
    limit: i32,
) -> Vec<&'a Arc<ControllerRevision>> {
    let history: Vec<&Arc<ControllerRevision>> = sorted.iter().filter(|r| !live.contains(&r.name_any())).collect();
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if history.len() <= limit {
        return Vec::new();
    }
    let n = history.len() - limit;
    history.into_iter().take(n).collect()
}

/// A new revision of `owner` for `data` (upstream `NewControllerRevision`): template labels plus
/// the hash, the owner's annotations (so `rollout history` shows `kubernetes.io/change-cause`),
/// a controller reference; the name is set by [`create`].
pub fn new_revision(
    owner: OwnerReference,
    namespace: &str,
    template_labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    data: Value,
    revision: i64,
) -> ControllerRevision {
    ControllerRevision {
        metadata: ObjectMeta {
            namespace: Some(namespace.into()),
            labels: Some(template_labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// upstream `CreateControllerRevision`: creates `rev` named `PREFIX-HASH`; on a name taken by
/// a different revision, counts a collision and tries the next hash. An equal revision already
/// there (ours or orphaned) is returned instead.
pub async fn create(
    client: &Client,
    prefix: &str,
    rev: &ControllerRevision,
    collision_count: &mut i32,
    hash_probe: impl Fn(i32) -> Option<i32>,
) -> Result<ControllerRevision, Error> {
    let ns = rev.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &ns);
    let data = rev.data.as_ref().map(|d| d.0.clone()).unwrap_or(Value::Null);
    let owner_uid = rev
        .owner_references()
        .first()
        .map(|r| r.uid.clone())
        .unwrap_or_default();
    loop {
        let h = hash(&data, hash_probe(*collision_count));
        let mut clone = rev.clone();
        clone.metadata.name = Some(revision_name(prefix, &h));
        clone
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(HASH_LABEL.into(), h);
        match api.create(&PostParams::default(), &clone).await {
            Ok(r) => return Ok(r),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let name = clone.name_any();
                let existing = api.get(&name).await?;
                let owner_ok = controller_of(&existing.metadata).is_none_or(|c| c.uid == owner_uid);
                if records(&existing, &data) && owner_ok && existing.metadata.deletion_timestamp.is_none() {
                    return Ok(existing);
                }
                tracing::debug!(%name, "controller revision name collision");
                *collision_count += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// upstream `UpdateControllerRevision`: renumbers an existing revision (a rollback to it).
pub async fn renumber(client: &Client, rev: &ControllerRevision, revision: i64) -> Result<ControllerRevision, Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &rev.namespace().unwrap_or_default());
    let patch = json!({"revision": revision});
    Ok(api
        .patch(&rev.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?)
}

/// upstream `AdoptControllerRevision`: makes `owner` the controller of an orphaned revision.
pub async fn adopt(client: &Client, rev: &ControllerRevision, owner: OwnerReference) -> Result<(), Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &rev.namespace().unwrap_or_default());
    let mut refs = rev.owner_references().to_vec();
    refs.push(owner);
    let patch = json!({"metadata": {"uid": rev.uid(), "ownerReferences": refs}});
    match api
        .patch(&rev.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409 | 422) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a revision (by uid, so a newer one of the same name survives).
pub async fn delete(client: &Client, rev: &ControllerRevision) -> Result<(), Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &rev.namespace().unwrap_or_default());
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: rev.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&rev.name_any(), &dp).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if matches!(e.code, 404 | 409) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Sorts every object's keys, as Go's `json.Marshal` of a decoded map writes them (a no-op
/// unless serde_json keeps insertion order).
pub fn sorted_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<String, Value> = m.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect();
            Value::Object(sorted.into_iter().collect::<Map<String, Value>>())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted_keys).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_encoding_and_names() {
        // Digits map into the alphabet by byte value ('0' is 48 → 48 % 27 = 21 → '4').
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(revision_name("web", "abc"), "web-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
    }

    #[test]
    fn fnv1_matches_go() {
        // Go: fnv.New32() over "" is the offset basis; over "a" is 0x050c5d7e.
        assert_eq!(fnv1_32(&[]), 0x811c_9dc5);
        assert_eq!(fnv1_32(&[b"a"]), 0x050c_5d7e);
        assert_eq!(fnv1_32(&[b"a", b"b"]), fnv1_32(&[b"ab"]));
    }

    #[test]
    fn hash_depends_on_data_and_collisions() {
        let a = json!({"spec": {"template": {"x": 1}}});
        let b = json!({"spec": {"template": {"x": 2}}});
        assert_eq!(hash(&a, Some(0)), hash(&a, Some(0)));
        assert_ne!(hash(&a, Some(0)), hash(&b, Some(0)));
        assert_ne!(hash(&a, Some(0)), hash(&a, Some(1)));
        assert!(hash(&a, None).chars().all(|c| ALPHANUMS.contains(&(c as u8))));
    }

    #[test]
    fn patch_is_what_kubectl_computes() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"hostNetwork": false, "containers": [{"name": "c", "image": "nginx",
                "ports": [{"containerPort": 80, "hostPort": 0}]}]}
        }))
        .unwrap();
        let p = template_patch(&t);
        let want = json!({"spec": {"template": {
            "$patch": "replace",
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]}
        }}});
        assert_eq!(p, want);
        // Bytes as Go's json.Marshal writes a map: sorted keys, compact.
        assert_eq!(
            serde_json::to_string(&sorted_keys(p.clone())).unwrap(),
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx","name":"c","ports":[{"containerPort":80}],"resources":{}}]}}}}"#
        );
        let rev = ControllerRevision {
            data: Some(RawExtension(p)),
            ..Default::default()
        };
        let back = template_of(&rev).unwrap();
        assert_eq!(back.spec.unwrap().containers[0].image.as_deref(), Some("nginx"));
    }

    #[test]
    fn truncation_keeps_live_and_newest() {
        let rev = |name: &str, n: i64| {
            Arc::new(ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    ..Default::default()
                },
                revision: n,
                data: None,
            })
        };
        let mut revs = vec![rev("d", 4), rev("a", 1), rev("c", 3), rev("b", 2), rev("e", 5)];
        sort(&mut revs);
        assert_eq!(next_revision(&revs), 6);
        let live: HashSet<String> = ["e".to_string(), "a".to_string()].into();
        let names = |v: Vec<&Arc<ControllerRevision>>| v.iter().map(|r| r.name_any()).collect::<Vec<_>>();
        assert_eq!(names(to_truncate(&revs, &live, 1)), ["b", "c"]);
        assert_eq!(names(to_truncate(&revs, &live, 3)), Vec::<String>::new());
        assert_eq!(names(to_truncate(&revs, &live, 0)), ["b", "c", "d"]);
    }
}
