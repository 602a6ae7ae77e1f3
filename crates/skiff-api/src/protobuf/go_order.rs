//! JSON in the field order kube-apiserver writes: Go's encoding/json emits struct fields in
//! declaration order, and map keys (labels, annotations, ConfigMap data) sorted.
//!
//! The schema table gives each built-in message's fields in Go struct order (go-to-protobuf
//! writes the .proto in that order), so [`Ordered`] walks a `serde_json::Value` alongside it:
//! known fields first in Go order, unknown ones after them alphabetically. Kinds the table does
//! not know (custom resources, which upstream holds as unstructured maps) stay alphabetical.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::schema::{GO_ORDER, MESSAGES};
use super::table::{kind_message, Message, Ty};

/// A value serialized in Go field order (`Serialize` wrapper; build with [`Ordered::object`]).
pub struct Ordered<'a> {
    value: &'a Value,
    /// The message describing `value`, if known; `None` serializes `value` as it is.
    msg: Option<&'static Message>,
    /// Whether `value` is a top-level object, whose `kind` and `apiVersion` (TypeMeta) lead.
    top: bool,
}

impl<'a> Ordered<'a> {
    /// A top-level object (or list, or Status), ordered by the kind its `apiVersion`/`kind` name.
    pub fn object(value: &'a Value) -> Self {
        let msg = match (value.get("apiVersion"), value.get("kind")) {
            (Some(Value::String(v)), Some(Value::String(k))) => kind_message(v, k),
            _ => None,
        };
        Ordered { value, msg, top: true }
    }
}

/// `value` as JSON bytes in Go field order (see [`Ordered`]).
pub fn to_vec_ordered(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    // Serializing a Value into memory cannot fail (its keys are strings).
    let _ = Ordered::object(value).serialize(&mut serde_json::Serializer::new(&mut out));
    out
}

/// Index of `msg` in MESSAGES (messages are sorted by name).
fn index_of(msg: &Message) -> Option<usize> {
    MESSAGES.binary_search_by(|m| m.name.cmp(msg.name)).ok()
}

fn lookup(name: &str) -> Option<&'static Message> {
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// The message a field's JSON value holds (for arrays: each element), if it is a message.
fn field_msg(ty: &Ty) -> Option<&'static Message> {
    match ty {
        Ty::Msg(name) => lookup(name),
        _ => None,
    }
}

/// Calls `f` with each JSON field of `msg` in Go order, inlined embedded structs expanded.
fn for_each_field(msg: &'static Message, f: &mut impl FnMut(&'static super::table::Field)) {
    let Some(order) = index_of(msg).and_then(|i| GO_ORDER.get(i)) else {
        msg.fields.iter().for_each(|fl| walk_one(fl, f));
        return;
    };
    for &i in order.iter() {
        if let Some(fl) = msg.fields.get(i as usize) {
            walk_one(fl, f);
        }
    }
}

fn walk_one(fl: &'static super::table::Field, f: &mut impl FnMut(&'static super::table::Field)) {
    if fl.inline() {
        if let Some(inner) = field_msg(&fl.ty) {
            for_each_field(inner, f);
        }
    } else {
        f(fl);
    }
}

/// A field's value with the message of its type.
struct Child<'a> {
    value: &'a Value,
    ty: Option<&'static Ty>,
}

impl Serialize for Child<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.ty, self.value) {
            (Some(Ty::Msg(name)), v @ (Value::Object(_) | Value::Array(_))) => Ordered {
                value: v,
                msg: lookup(name),
                top: false,
            }
            .serialize(s),
            (Some(Ty::Map(inner @ Ty::Msg(_))), Value::Object(map)) => {
                // Map keys stay sorted (as Go writes maps); their values are messages.
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(
                        k,
                        &Child {
                            value: v,
                            ty: Some(inner),
                        },
                    )?;
                }
                m.end()
            }
            (_, v) => v.serialize(s),
        }
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(msg) = self.msg else {
            return self.value.serialize(s);
        };
        match self.value {
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Ordered {
                        value: item,
                        msg: Some(msg),
                        top: false,
                    })?;
                }
                seq.end()
            }
            Value::Object(map) => serialize_object(map, msg, self.top, s),
            v => v.serialize(s),
        }
    }
}

fn serialize_object<S: Serializer>(
    map: &Map<String, Value>,
    msg: &'static Message,
    top: bool,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(map.len()))?;
    let mut written = 0usize;
    let mut result = Ok(());
    if top {
        for key in ["kind", "apiVersion"] {
            if let Some(v) = map.get(key) {
                m.serialize_entry(key, v)?;
                written += 1;
            }
        }
    }
    for_each_field(msg, &mut |fl| {
        if result.is_err() {
            return;
        }
        if let Some(v) = map.get(fl.json) {
            written += 1;
            result = m.serialize_entry(
                fl.json,
                &Child {
                    value: v,
                    ty: Some(&fl.ty),
                },
            );
        }
    });
    result?;
    if written < map.len() {
        // Fields the table does not know, after the known ones, alphabetically (the map's order).
        for (k, v) in map {
            let known = (top && (k == "kind" || k == "apiVersion")) || is_field(msg, k);
            if !known {
                m.serialize_entry(k, v)?;
            }
        }
    }
    m.end()
}

/// Whether `key` is a JSON field of `msg` (inlined structs included).
fn is_field(msg: &'static Message, key: &str) -> bool {
    let mut found = false;
    for_each_field(msg, &mut |fl| found |= fl.json == key);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ordered(v: Value) -> String {
        String::from_utf8(to_vec_ordered(&v)).unwrap()
    }

    #[test]
    fn objects_follow_go_struct_order() {
        // (name, object, expected bytes)
        let cases = [
            (
                "pod: TypeMeta, metadata in ObjectMeta order, maps sorted, PodSpec's initContainers before containers",
                json!({"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Running"},
                    "spec": {"containers": [{"name": "c", "image": "i"}], "initContainers": [{"image": "j", "name": "i"}], "volumes": []},
                    "metadata": {"uid": "u", "namespace": "ns", "name": "p", "labels": {"z": "1", "a": "2"}, "resourceVersion": "5", "creationTimestamp": "t"}}),
                r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","namespace":"ns","uid":"u","resourceVersion":"5","creationTimestamp":"t","labels":{"a":"2","z":"1"}},"spec":{"volumes":[],"initContainers":[{"name":"i","image":"j"}],"containers":[{"name":"c","image":"i"}]},"status":{"phase":"Running"}}"#,
            ),
            (
                "status body",
                json!({"apiVersion": "v1", "kind": "Status", "code": 409, "details": {"kind": "configmaps", "name": "x"}, "message": "m", "metadata": {}, "reason": "Conflict", "status": "Failure"}),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"m","reason":"Conflict","details":{"name":"x","kind":"configmaps"},"code":409}"#,
            ),
            (
                "unknown fields follow known ones alphabetically; ConfigMap data stays sorted",
                json!({"kind": "ConfigMap", "apiVersion": "v1", "zeta": 1, "alpha": 2, "data": {"b": "1", "a": "2"}, "metadata": {"name": "c"}}),
                r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"2","b":"1"},"alpha":2,"zeta":1}"#,
            ),
            (
                "inlined structs (Volume.VolumeSource) in place",
                json!({"kind": "Pod", "apiVersion": "v1", "spec": {"volumes": [{"emptyDir": {}, "name": "v"}]}}),
                r#"{"kind":"Pod","apiVersion":"v1","spec":{"volumes":[{"name":"v","emptyDir":{}}]}}"#,
            ),
            (
                "custom resources stay alphabetical",
                json!({"kind": "Foo", "apiVersion": "x.io/v1", "spec": {"b": 1, "a": 2}, "metadata": {"name": "f", "generation": 1}}),
                r#"{"apiVersion":"x.io/v1","kind":"Foo","metadata":{"generation":1,"name":"f"},"spec":{"a":2,"b":1}}"#,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(ordered(obj), want, "{name}");
        }
    }

    #[test]
    fn ordering_costs_little_more_than_plain_serialization() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d9f8c6b5-x2x4z", "namespace": "default", "uid": "0f6c", "resourceVersion": "123",
                "labels": {"app": "web", "pod-template-hash": "7d9f8c6b5"}, "creationTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8c6b5", "uid": "a", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                "nodeName": "n1", "securityContext": {}, "schedulerName": "default-scheduler",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "podIP": "10.64.0.2", "startTime": "2026-01-01T00:00:00Z",
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "", "started": true,
                    "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}});
        let n = 2000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(serde_json::to_vec(&pod).unwrap());
        }
        let plain = t.elapsed();
        let t = std::time::Instant::now();
        for _ in 0..n {
            std::hint::black_box(to_vec_ordered(&pod));
        }
        let ordered = t.elapsed();
        eprintln!(
            "pod serialization: plain {:?}/op, Go order {:?}/op",
            plain / n,
            ordered / n
        );
        // Generous bound (debug builds, a shared machine): the walk must stay a small multiple.
        assert!(ordered < plain * 8, "plain {plain:?}, ordered {ordered:?}");
    }
}
