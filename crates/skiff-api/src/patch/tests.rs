//! Table-driven tests of the patch engines.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// A Deployment as the server stores it.
fn deploy() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {
            "name": "web", "namespace": "default", "labels": {"app": "web"},
            "annotations": {"deployment.kubernetes.io/revision": "1", "kubectl.kubernetes.io/last-applied-configuration": "old"},
            "finalizers": ["a", "b", "c"],
            "ownerReferences": [{"uid": "u1", "name": "o1", "kind": "X", "apiVersion": "v1"}]
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.25", "args": ["a1"],
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]
                    }],
                    "tolerations": [{"key": "k", "operator": "Exists"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        },
        "status": {"replicas": 2}
    })
}

/// `base` with each JSON pointer set to a value (or removed when `None`).
fn edit(mut base: Value, edits: &[(&str, Option<Value>)]) -> Value {
    for (ptr, v) in edits {
        let (parent, last) = ptr.rsplit_once('/').unwrap();
        let last = last.replace("~1", "/").replace("~0", "~");
        let p = base.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
        match (p, v) {
            (Value::Object(m), Some(v)) => {
                m.insert(last, v.clone());
            }
            (Value::Object(m), None) => {
                m.remove(&last);
            }
            (Value::Array(a), Some(v)) => a[last.parse::<usize>().unwrap()] = v.clone(),
            (Value::Array(a), None) => {
                a.remove(last.parse::<usize>().unwrap());
            }
            _ => panic!("bad pointer {ptr}"),
        }
    }
    base
}

const C0: &str = "/spec/template/spec/containers/0";

#[test]
fn strategic_merge_patch_cases() {
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [
        {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"conditions": [
        {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}});
    let cases: Vec<(&str, &str, &str, Value, Value, Value)> = vec![
        (
            "re-apply from protocol.md: $setElementOrder, env $patch delete, image change",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
                "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"$setElementOrder/env": [{"name": "A"}, {"name": "C"}],
                        "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "B"}],
                        "image": "nginx:1.26", "name": "nginx"}]}}}}),
            edit(
                deploy(),
                &[
                    (
                        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
                        Some(json!("new")),
                    ),
                    (&format!("{C0}/image"), Some(json!("nginx:1.26"))),
                    (
                        &format!("{C0}/env"),
                        Some(json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])),
                    ),
                ],
            ),
        ),
        (
            "set image",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"image": "nginx:1.27", "name": "nginx"}]}}}}),
            edit(deploy(), &[(&format!("{C0}/image"), Some(json!("nginx:1.27")))]),
        ),
        (
            "rollout restart annotates the template",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}}}}}),
            edit(
                deploy(),
                &[(
                    "/spec/template/metadata/annotations",
                    Some(json!({"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"})),
                )],
            ),
        ),
        (
            "strategy RollingUpdate to Recreate with $retainKeys and null",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
            edit(deploy(), &[("/spec/strategy", Some(json!({"type": "Recreate"})))]),
        ),
        (
            "$retainKeys alone drops unlisted keys",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            edit(deploy(), &[("/spec/strategy", Some(json!({"type": "Recreate"})))]),
        ),
        (
            "volume emptyDir to configMap with $retainKeys",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]}}}}),
            edit(
                deploy(),
                &[(
                    "/spec/template/spec/volumes",
                    Some(json!([{"name": "data", "configMap": {"name": "cfg"}}])),
                )],
            ),
        ),
        (
            "new container without $setElementOrder goes before server-only ones (upstream order)",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}),
            edit(
                deploy(),
                &[(
                    "/spec/template/spec/containers",
                    Some(json!([
                {"name": "side", "image": "busybox"}, deploy().pointer(C0).unwrap().clone()])),
                )],
            ),
        ),
        (
            "new container with $setElementOrder goes where the order says",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "nginx"}, {"name": "side"}],
                "containers": [{"name": "side", "image": "busybox"}]}}}}),
            edit(
                deploy(),
                &[(
                    "/spec/template/spec/containers",
                    Some(json!([
                deploy().pointer(C0).unwrap().clone(), {"name": "side", "image": "busybox"}])),
                )],
            ),
        ),
        (
            "$setElementOrder keeps server-only items in their relative place",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
                "$setElementOrder/env": [{"name": "A"}, {"name": "C"}], "env": [{"name": "C", "value": "3"}]}]}}}}),
            edit(
                deploy(),
                &[(
                    &format!("{C0}/env"),
                    Some(json!([
                {"name": "A", "value": "1"}, {"name": "C", "value": "3"}, {"name": "B", "value": "2"}])),
                )],
            ),
        ),
        (
            "$patch delete of a port by containerPort",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
                "ports": [{"$patch": "delete", "containerPort": 80}]}]}}}}),
            edit(deploy(), &[(&format!("{C0}/ports"), Some(json!([])))]),
        ),
        (
            "merge key compared as a number (80 equals 80.0)",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
                "ports": [{"containerPort": 80.0, "name": "http"}]}]}}}}),
            edit(
                deploy(),
                &[(
                    &format!("{C0}/ports"),
                    Some(json!([{"containerPort": 80.0, "protocol": "TCP", "name": "http"}])),
                )],
            ),
        ),
        (
            "$patch replace in a map",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}}),
            edit(deploy(), &[("/metadata/labels", Some(json!({"new": "1"})))]),
        ),
        (
            "$patch replace in a list",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx",
                "env": [{"$patch": "replace"}, {"name": "Z", "value": "9"}]}]}}}}),
            edit(
                deploy(),
                &[(&format!("{C0}/env"), Some(json!([{"name": "Z", "value": "9"}])))],
            ),
        ),
        (
            "$patch delete of a map",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
            edit(deploy(), &[("/spec/strategy", Some(json!({})))]),
        ),
        (
            "$patch merge in a map merges",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"labels": {"$patch": "merge", "tier": "fe"}}}),
            edit(
                deploy(),
                &[("/metadata/labels", Some(json!({"app": "web", "tier": "fe"})))],
            ),
        ),
        (
            "$deleteFromPrimitiveList/finalizers",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            edit(deploy(), &[("/metadata/finalizers", Some(json!(["a", "c"])))]),
        ),
        (
            // Upstream interleaving: a new item follows the patch item listed before it.
            "merge primitive list is a de-duplicated union",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"finalizers": ["b", "d"]}}),
            edit(deploy(), &[("/metadata/finalizers", Some(json!(["a", "b", "d", "c"])))]),
        ),
        (
            "$setElementOrder of a primitive list",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"$setElementOrder/finalizers": ["d", "c", "a", "b"], "finalizers": ["d"]}}),
            edit(deploy(), &[("/metadata/finalizers", Some(json!(["d", "c", "a", "b"])))]),
        ),
        (
            "lists without strategy are replaced (args, tolerations)",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "z", "operator": "Exists"}],
                "containers": [{"name": "nginx", "args": ["b1", "b2"]}]}}}}),
            edit(
                deploy(),
                &[
                    (
                        "/spec/template/spec/tolerations",
                        Some(json!([{"key": "z", "operator": "Exists"}])),
                    ),
                    (&format!("{C0}/args"), Some(json!(["b1", "b2"]))),
                ],
            ),
        ),
        (
            "ownerReferences merge by uid",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"ownerReferences": [{"uid": "u1", "name": "renamed"}, {"uid": "u2", "name": "o2", "kind": "Y", "apiVersion": "v1"}]}}),
            edit(
                deploy(),
                &[(
                    "/metadata/ownerReferences",
                    Some(json!([
                {"uid": "u1", "name": "renamed", "kind": "X", "apiVersion": "v1"},
                {"uid": "u2", "name": "o2", "kind": "Y", "apiVersion": "v1"}])),
                )],
            ),
        ),
        (
            "null deletes a key; null for an absent key is ignored",
            "apps",
            "Deployment",
            deploy(),
            json!({"metadata": {"labels": {"app": null, "nope": null}}, "status": null}),
            edit(deploy(), &[("/metadata/labels", Some(json!({}))), ("/status", None)]),
        ),
        (
            "directives and nulls in a new subtree are cleaned",
            "apps",
            "Deployment",
            deploy(),
            json!({"spec": {"template": {"spec": {"$setElementOrder/initContainers": [{"name": "init"}],
                "initContainers": [{"name": "init", "image": "busybox", "resources": {"limits": null},
                    "$setElementOrder/env": [{"name": "A"}],
                    "env": [{"name": "A", "value": "1"}, {"$patch": "delete", "name": "Q"}]}]}}}}),
            edit(
                deploy(),
                &[(
                    "/spec/template/spec/initContainers",
                    Some(json!([{"name": "init", "image": "busybox",
                "resources": {}, "env": [{"name": "A", "value": "1"}]}])),
                )],
            ),
        ),
        (
            "Service ports merge by port",
            "",
            "Service",
            service.clone(),
            json!({"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}], "ports": [{"port": 80, "targetPort": 9090}]}}),
            edit(service.clone(), &[("/spec/ports/0/targetPort", Some(json!(9090)))]),
        ),
        (
            "Pod status conditions merge by type",
            "",
            "Pod",
            pod.clone(),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            edit(pod.clone(), &[("/status/conditions/0/status", Some(json!("True")))]),
        ),
    ];
    for (name, group, kind, doc, patch, want) in cases {
        let got = strategic_merge_patch(&doc, &patch, group, kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn strategic_merge_patch_errors() {
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "unknown kind is unsupported",
            "Widget",
            json!({}),
            "the body of the request was in an unknown format",
        ),
        (
            "patch must be an object",
            "Deployment",
            json!([1]),
            "invalid JSON document",
        ),
        (
            "unknown $patch value",
            "Deployment",
            json!({"spec": {"$patch": "bogus"}}),
            "unknown patch type: bogus in map",
        ),
        (
            "list element without merge key",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
            "does not contain declared merge key: name",
        ),
        (
            "$retainKeys must list every patched key",
            "Deployment",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 1}}}}),
            "invalid patch format of retainKeys",
        ),
        (
            "$retainKeys must be a list",
            "Deployment",
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            "invalid patch format of retainKeys",
        ),
        (
            "patch list out of $setElementOrder order",
            "Deployment",
            json!({"metadata": {"$setElementOrder/finalizers": ["x", "y"], "finalizers": ["y", "x"]}}),
            "doesn't match $setElementOrder list",
        ),
        (
            "$setElementOrder must be a list",
            "Deployment",
            json!({"metadata": {"$setElementOrder/finalizers": "x"}}),
            "expected a slice, but received a string",
        ),
        (
            "$setElementOrder needs a list name",
            "Deployment",
            json!({"metadata": {"$setElementOrder": []}}),
            "invalid patch format of setElementOrder list",
        ),
        (
            "$deleteFromPrimitiveList needs a list name",
            "Deployment",
            json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
            "invalid patch format of primitive list",
        ),
        (
            "$patch merge in a list",
            "Deployment",
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "merge"}]}}}}),
            "merging lists cannot yet be specified in the patch",
        ),
        (
            "list of lists",
            "Deployment",
            json!({"metadata": {"finalizers": [["a"]]}}),
            "lists of lists are not supported",
        ),
    ];
    for (name, kind, patch, want) in cases {
        let err = strategic_merge_patch(&deploy(), &patch, "apps", kind).expect_err(name);
        assert!(err.to_string().contains(want), "{name}: {err}");
    }
    assert!(matches!(
        strategic_merge_patch(&deploy(), &json!({}), "example.com", "Widget"),
        Err(PatchError::UnsupportedKind { .. })
    ));
}

#[test]
fn json_patch_cases() {
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.24"}]}});
    let cases: Vec<(&str, Value, Result<Value, &str>)> = vec![
        (
            "rollout undo replaces the template and the annotations",
            json!([{"op": "replace", "path": "/spec/template", "value": template},
                   {"op": "replace", "path": "/metadata/annotations", "value": {"kubernetes.io/change-cause": "v1"}}]),
            Ok(edit(
                deploy(),
                &[
                    ("/spec/template", Some(template.clone())),
                    (
                        "/metadata/annotations",
                        Some(json!({"kubernetes.io/change-cause": "v1"})),
                    ),
                ],
            )),
        ),
        (
            "passing test then add",
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}, {"op": "add", "path": "/spec/paused", "value": true}]),
            Ok(edit(deploy(), &[("/spec/paused", Some(json!(true)))])),
        ),
        (
            "failing test aborts the whole patch",
            json!([{"op": "remove", "path": "/status"}, {"op": "test", "path": "/spec/replicas", "value": 3}]),
            Err("/spec/replicas"),
        ),
        (
            "replace of a missing path fails",
            json!([{"op": "replace", "path": "/spec/nope/x", "value": 1}]),
            Err("/spec/nope/x"),
        ),
        (
            "body must be a list of operations",
            json!({"op": "add"}),
            Err("invalid JSON patch"),
        ),
    ];
    for (name, patch, want) in cases {
        match (json_patch(&deploy(), &patch), want) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{name}"),
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{name}: {e}"),
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn merge_patch_cases() {
    let cases: Vec<(&str, Value, Option<Value>)> = vec![
        (
            "label removed with null",
            json!({"metadata": {"labels": {"app": null}}}),
            Some(edit(deploy(), &[("/metadata/labels", Some(json!({})))])),
        ),
        (
            "label added",
            json!({"metadata": {"labels": {"tier": "fe"}}}),
            Some(edit(deploy(), &[("/metadata/labels/tier", Some(json!("fe")))])),
        ),
        (
            "lists are replaced whole",
            json!({"metadata": {"finalizers": ["z"]}}),
            Some(edit(deploy(), &[("/metadata/finalizers", Some(json!(["z"])))])),
        ),
        ("patch must be an object", json!(["x"]), None),
    ];
    for (name, patch, want) in cases {
        match (merge_patch(&deploy(), &patch), want) {
            (Ok(got), Some(want)) => assert_eq!(got, want, "{name}"),
            (Err(_), None) => {}
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn server_side_apply_cases() {
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26",
            "env": [{"name": "A", "value": "9"}]}]}}}});
    let live = edit(
        deploy(),
        &[(
            "/metadata/managedFields",
            Some(json!([{"manager": "kubectl-create", "operation": "Update"}])),
        )],
    );
    let cases: Vec<(&str, Option<Value>, Value, &str, Value)> = vec![
        (
            "create from the applied configuration",
            None,
            applied.clone(),
            "Deployment",
            applied.clone(),
        ),
        (
            "merge into the live object by merge keys, keeping others' fields and managedFields",
            Some(live.clone()),
            edit(
                applied.clone(),
                &[("/metadata/managedFields", Some(json!([{"manager": "evil"}])))],
            ),
            "Deployment",
            edit(
                live.clone(),
                &[
                    ("/spec/replicas", Some(json!(1))),
                    (&format!("{C0}/image"), Some(json!("nginx:1.26"))),
                    (&format!("{C0}/env/0/value"), Some(json!("9"))),
                ],
            ),
        ),
        (
            "kinds without types merge maps and replace lists",
            Some(json!({"kind": "Widget", "spec": {"a": 1, "list": [1, 2]}})),
            json!({"kind": "Widget", "spec": {"b": 2, "list": [3]}}),
            "Widget",
            json!({"kind": "Widget", "spec": {"a": 1, "b": 2, "list": [3]}}),
        ),
    ];
    for (name, live, applied, kind, want) in cases {
        let got = server_side_apply(live.as_ref(), &applied, "apps", kind).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

/// Keys that exercise every directive and the typed paths of a Deployment.
const KEYS: &[&str] = &[
    "metadata",
    "spec",
    "template",
    "containers",
    "name",
    "env",
    "finalizers",
    "labels",
    "strategy",
    "value",
    "$patch",
    "$retainKeys",
    "$setElementOrder/containers",
    "$setElementOrder/env",
    "$setElementOrder/finalizers",
    "$deleteFromPrimitiveList/finalizers",
    "$setElementOrder",
    "$deleteFromPrimitiveList/env",
];

fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (0u8..4).prop_map(Value::from),
        prop::sample::select(vec!["delete", "replace", "merge", "A", "B", "nginx"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn has_directive(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(a) => a.iter().any(has_directive),
        _ => false,
    }
}

proptest! {
    #[test]
    fn random_patches_never_panic(doc in json_value(&KEYS[..10]), patch in json_value(KEYS), ops in json_value(&["op", "path", "value", "from"])) {
        for (group, kind) in [("apps", "Deployment"), ("", "Pod")] {
            if let Ok(out) = strategic_merge_patch(&doc, &patch, group, kind) {
                prop_assert!(!has_directive(&out), "directive leaked: {out}");
            }
            let _ = server_side_apply(Some(&doc), &patch, group, kind);
        }
        let _ = merge_patch(&doc, &patch);
        let _ = json_patch(&doc, &ops);
        let _ = json_patch(&doc, &json!([{"op": "add", "path": "/metadata", "value": patch}]));
    }
}

/// A JSON patch whose `copy` operations double a value each time (the reported 3 KB patch
/// that took 23 GB): refused with upstream's copy-size message once 3 MiB were copied,
/// long before the value gets large.
#[test]
fn copy_bomb_is_refused_early() {
    let doc = json!({"metadata": {"name": "x"}, "data": {"a": "x".repeat(1000)}});
    let mut ops = vec![json!({"op": "add", "path": "/data/b", "value": ["x".repeat(1000)]})];
    for _ in 0..40 {
        ops.push(json!({"op": "copy", "from": "/data/b", "path": "/data/b/-"}));
        ops.push(json!({"op": "copy", "from": "/data/b", "path": "/data/b/0"}));
    }
    let start = std::time::Instant::now();
    let e = json_patch(&doc, &Value::Array(ops)).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    let msg = e.to_string();
    assert!(matches!(e, PatchError::CopyTooLarge { limit: 3145728, .. }), "{msg}");
    assert!(
        msg.starts_with("Unable to complete the copy, the accumulated size increase of copy is "),
        "{msg}"
    );
    assert!(msg.ends_with(", exceeding the limit 3145728"), "{msg}");
}

/// Small copies within the limit still work, and a failing op reports its own index.
#[test]
fn copies_within_the_limit_apply() {
    let doc = json!({"a": {"b": 1}});
    let p = json!([{"op": "copy", "from": "/a", "path": "/c"}, {"op": "copy", "from": "/c", "path": "/d"}]);
    assert_eq!(
        json_patch(&doc, &p).unwrap(),
        json!({"a": {"b": 1}, "c": {"b": 1}, "d": {"b": 1}})
    );
    let p = json!([{"op": "add", "path": "/x", "value": 1}, {"op": "remove", "path": "/nope"}]);
    let e = json_patch(&doc, &p).unwrap_err().to_string();
    assert!(e.contains("operation '/1'"), "{e}");
}

/// More than 10000 operations: upstream's 413 message.
#[test]
fn too_many_operations() {
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
        .collect();
    let e = json_patch(&json!({"a": 1}), &Value::Array(ops)).unwrap_err();
    assert!(matches!(e, PatchError::TooManyOperations { max: 10000, got: 10001 }));
    assert_eq!(
        e.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    let ops: Vec<Value> = (0..10_000)
        .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
        .collect();
    assert!(json_patch(&json!({"a": 1}), &Value::Array(ops)).is_ok());
}

/// Every engine refuses a result larger than an object may be.
#[test]
fn patched_object_size_is_bounded() {
    let big = "x".repeat(2 * 1024 * 1024);
    let doc = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": big}});
    let more = json!({"data": {"b": big}});
    let too_large = |r: Result<Value, PatchError>| matches!(r, Err(PatchError::ObjectTooLarge { limit: 3145728 }));
    assert!(too_large(merge_patch(&doc, &more)));
    assert!(too_large(strategic_merge_patch(&doc, &more, "", "ConfigMap")));
    assert!(too_large(server_side_apply(Some(&doc), &more, "", "ConfigMap")));
    assert!(too_large(json_patch(
        &doc,
        &json!([{"op": "add", "path": "/data/b", "value": big}])
    )));
    assert!(too_large(json_patch(
        &doc,
        &json!([{"op": "copy", "from": "/data/a", "path": "/data/b"}])
    )));
    // Under the limit: fine.
    let small = json!({"data": {"b": "y"}});
    assert!(merge_patch(&doc, &small).is_ok());
    assert!(strategic_merge_patch(&doc, &small, "", "ConfigMap").is_ok());
}
