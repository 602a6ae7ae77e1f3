//! Tests of the protobuf decoder: bodies captured from real kubectl 1.33 against the JSON bodies
//! kubectl 1.31 sends for the same commands (tools/protoschema/capture.py), hand-built bodies for
//! the special types, and garbage that must give errors, never panics.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::schema::{KINDS, MESSAGES};
use super::table::{self, Ty};
use super::{decode, ProtoError};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("testdata/", $name, ".pb")), include_str!(concat!("testdata/", $name, ".json")))),*]
    };
}

/// (case, protobuf body from kubectl 1.33, JSON body from kubectl 1.31 without nulls)
const FIXTURES: &[(&str, &[u8], &str)] = fixtures![
    "namespace",
    "deployment",
    "deployment_zero",
    "configmap",
    "configmap_binary",
    "secret_generic",
    "secret_tls",
    "secret_docker",
    "service_clusterip",
    "service_headless",
    "service_nodeport",
    "service_externalname",
    "job",
    "cronjob",
    "serviceaccount",
    "quota",
    "priorityclass",
    "pdb",
    "role",
    "ingress",
    "deployment_multi",
    "service_loadbalancer",
    "secret_typed",
    "clusterrole",
    "rolebinding",
    "clusterrolebinding",
    "token",
];

#[test]
fn decodes_kubectl_bodies_like_their_json_twins() {
    let mut failures = Vec::new();
    for (name, body, want) in FIXTURES {
        let want: Value = serde_json::from_str(want).unwrap();
        match decode(body) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!("{name}:\n  got  {got}\n  want {want}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn schema_is_sorted_and_every_reference_resolves() {
    assert!(
        MESSAGES.windows(2).all(|w| w[0].name < w[1].name),
        "MESSAGES not sorted"
    );
    assert!(
        KINDS
            .windows(2)
            .all(|w| (w[0].api_version, w[0].kind) < (w[1].api_version, w[1].kind)),
        "KINDS not sorted"
    );
    for message in MESSAGES {
        assert!(
            message.fields.windows(2).all(|w| w[0].tag < w[1].tag),
            "{} fields not sorted",
            message.name
        );
        for field in message.fields {
            let target = match field.ty {
                Ty::Msg(name) => Some(name),
                Ty::Map(Ty::Msg(name)) => Some(*name),
                _ => None,
            };
            if let Some(target) = target {
                assert!(
                    table::message(target).is_some(),
                    "{}.{} -> {target}",
                    message.name,
                    field.json
                );
            }
        }
    }
    for kind in KINDS {
        assert!(
            table::kind_message(kind.api_version, kind.kind).is_some(),
            "{}",
            kind.kind
        );
    }
}

// A tiny protobuf encoder for hand-built bodies.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn int(tag: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3, &mut out);
    varint(v, &mut out);
    out
}

fn bytes(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3 | 2, &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn double(tag: u32, v: f64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3 | 1, &mut out);
    out.extend_from_slice(&v.to_le_bytes());
    out
}

fn msg(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = msg(&[bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())]);
    let mut out = b"k8s\0".to_vec();
    out.extend(msg(&[
        bytes(1, &type_meta),
        bytes(2, raw),
        bytes(3, b""),
        bytes(4, b""),
    ]));
    out
}

fn meta(name: &str) -> Vec<u8> {
    // ObjectMeta: name=1, creationTimestamp=8 (written as the zero Time), generation=7.
    bytes(
        1,
        &msg(&[
            bytes(1, name.as_bytes()),
            int(7, 0),
            bytes(8, &msg(&[int(1, 0), int(2, 0)])),
        ]),
    )
}

#[test]
fn converts_special_types_and_zero_values() {
    let time = |s: u64| msg(&[int(1, s), int(2, 0)]);
    let cases: Vec<(&str, Vec<u8>, Value)> = vec![
        (
            "time set, zero time and empty strings dropped, explicit pointer false kept",
            envelope(
                "v1",
                "Pod",
                &msg(&[
                    bytes(
                        1,
                        &msg(&[
                            bytes(1, b"p"),
                            bytes(2, b""),
                            bytes(8, &time(1_704_164_645)),
                            bytes(9, &time(0)),
                        ]),
                    ),
                    // spec: automountServiceAccountToken (21, *bool) = false; hostNetwork (11, bool) = false.
                    bytes(2, &msg(&[int(21, 0), int(11, 0)])),
                ]),
            ),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "creationTimestamp": "2024-01-02T03:04:05Z"},
                   "spec": {"automountServiceAccountToken": false}}),
        ),
        (
            "int-or-string: string form, int form, zero non-pointer dropped",
            envelope(
                "v1",
                "Service",
                &msg(&[
                    meta("s"),
                    bytes(
                        2,
                        &msg(&[
                            // ports (1): port=3, targetPort=4 (IntOrString: type=1, intVal=2, strVal=3).
                            bytes(
                                1,
                                &msg(&[int(3, 80), bytes(4, &msg(&[int(1, 1), int(2, 0), bytes(3, b"http")]))]),
                            ),
                            bytes(
                                1,
                                &msg(&[int(3, 81), bytes(4, &msg(&[int(1, 0), int(2, 8081), bytes(3, b"")]))]),
                            ),
                            bytes(
                                1,
                                &msg(&[int(3, 0), bytes(4, &msg(&[int(1, 0), int(2, 0), bytes(3, b"")]))]),
                            ),
                        ]),
                    ),
                ]),
            ),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                   "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}, {"port": 0}]}}),
        ),
        (
            "pointer int-or-string zero kept (pdb minAvailable: 0)",
            envelope(
                "policy/v1",
                "PodDisruptionBudget",
                &msg(&[
                    meta("b"),
                    bytes(2, &bytes(1, &msg(&[int(1, 0), int(2, 0), bytes(3, b"")]))),
                ]),
            ),
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
                   "spec": {"minAvailable": 0}}),
        ),
        (
            "negative int32, quantities in a map, inlined volume source",
            envelope(
                "v1",
                "Pod",
                &msg(&[
                    meta("p"),
                    bytes(
                        2,
                        &msg(&[
                            // volumes (1): name=1, volumeSource=2 (inline) -> emptyDir (2) {medium=1}.
                            bytes(1, &msg(&[bytes(1, b"v"), bytes(2, &bytes(2, &bytes(1, b"Memory")))])),
                            // containers (2): name=1, resources=8 {limits=1 map<string,Quantity>}.
                            bytes(
                                2,
                                &msg(&[
                                    bytes(1, b"c"),
                                    bytes(8, &bytes(1, &msg(&[bytes(1, b"cpu"), bytes(2, &bytes(1, b"500m"))]))),
                                ]),
                            ),
                            // priority (25, *int32) = -5.
                            int(25, (-5i64) as u64),
                        ]),
                    ),
                ]),
            ),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}],
                            "containers": [{"name": "c", "resources": {"limits": {"cpu": "500m"}}}],
                            "priority": -5}}),
        ),
        (
            "bytes map values base64, empty string map values kept",
            envelope(
                "v1",
                "Secret",
                &msg(&[
                    meta("s"),
                    bytes(2, &msg(&[bytes(1, b"k"), bytes(2, &[0, 255])])),
                    bytes(4, &msg(&[bytes(1, b"e"), bytes(2, b"")])),
                    bytes(3, b""),
                ]),
            ),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                   "data": {"k": "AP8="}, "stringData": {"e": ""}}),
        ),
        (
            "raw extension as JSON, packed repeated ints, unknown fields skipped",
            envelope(
                "apps/v1",
                "ControllerRevision",
                &msg(&[meta("r"), bytes(2, &bytes(1, br#"{"a":[1]}"#)), int(3, 2), int(99, 7)]),
            ),
            json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
                   "data": {"a": [1]}, "revision": 2}),
        ),
        (
            "packed repeated int32 (podFailurePolicy onExitCodes values)",
            envelope(
                "batch/v1",
                "Job",
                &msg(&[
                    meta("j"),
                    bytes(
                        2,
                        // spec.podFailurePolicy (11) .rules (1) .onExitCodes (2) {operator=2, values=3 packed}
                        &bytes(
                            11,
                            &bytes(1, &bytes(2, &msg(&[bytes(2, b"In"), bytes(3, &[1, 2, 42])]))),
                        ),
                    ),
                ]),
            ),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                   "spec": {"podFailurePolicy": {"rules": [{"onExitCodes": {"operator": "In", "values": [1, 2, 42]}}]}}}),
        ),
        (
            "user extra values are plain string lists",
            envelope(
                "authentication.k8s.io/v1",
                "TokenReview",
                // status (3) .user (2) .extra (4): {"scopes": ExtraValue{items: [a, b]}}
                &bytes(
                    3,
                    &bytes(
                        2,
                        &bytes(
                            4,
                            &msg(&[bytes(1, b"scopes"), bytes(2, &msg(&[bytes(1, b"a"), bytes(1, b"b")]))]),
                        ),
                    ),
                ),
            ),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                   "status": {"user": {"extra": {"scopes": ["a", "b"]}}}}),
        ),
        (
            "CRD schema: $ref, pointer minimum 0, OrBool false, OrArray schema, embedded default JSON",
            envelope(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                // spec (2) .versions (7) .schema (4) .openAPIV3Schema (1)
                &bytes(
                    2,
                    &bytes(
                        7,
                        &bytes(
                            4,
                            &bytes(
                                1,
                                &msg(&[
                                    bytes(3, b"#/x"),
                                    bytes(5, b"object"),
                                    bytes(8, &bytes(1, b"{\"a\":1}")),
                                    double(11, 0.0),
                                    int(18, 0),
                                    bytes(24, &bytes(1, &bytes(5, b"string"))),
                                    bytes(30, &int(1, 0)),
                                    int(38, 1),
                                ]),
                            ),
                        ),
                    ),
                ),
            ),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "spec": {"versions": [{"schema": {"openAPIV3Schema": {
                       "$ref": "#/x", "type": "object", "default": {"a": 1}, "minimum": 0.0,
                       "items": {"type": "string"}, "additionalProperties": false,
                       "x-kubernetes-preserve-unknown-fields": true}}}]}}),
        ),
    ];
    for (name, body, want) in cases {
        let got = decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn rejects_malformed_bodies_with_clear_errors() {
    let deployment = FIXTURES[1].1;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "prefix"),
        ("json body", br#"{"kind":"Namespace"}"#.to_vec(), "prefix"),
        ("magic only", b"k8s\0".to_vec(), "no apiVersion and kind"),
        (
            "unknown kind",
            envelope("example.com/v1", "Widget", b""),
            "no protobuf schema",
        ),
        ("truncated", deployment[..deployment.len() - 3].to_vec(), "truncated"),
        (
            "compressed",
            {
                let mut b = envelope("v1", "Namespace", b"");
                b.extend(bytes(3, b"gzip"));
                b
            },
            "content encoding",
        ),
        (
            "bad utf-8",
            envelope("v1", "Namespace", &bytes(1, &bytes(1, &[0xff, 0xfe]))),
            "UTF-8",
        ),
        (
            "wrong wire type",
            envelope("v1", "Namespace", &int(1, 5)),
            "expected length-delimited",
        ),
        (
            "bad raw json",
            envelope("apps/v1", "ControllerRevision", &bytes(2, &bytes(1, b"{nope"))),
            "not valid JSON",
        ),
        ("group wire type", envelope("v1", "Namespace", &[0x0b]), "wire type 3"),
        ("deep nesting", nested_revisions(100), "nested deeper"),
    ];
    for (name, body, want) in cases {
        match decode(&body) {
            Ok(v) => panic!("{name}: decoded to {v}"),
            Err(e) => assert!(e.to_string().contains(want), "{name}: {e}"),
        }
    }
}

/// ControllerRevisions whose `data` RawExtension holds the next ControllerRevision envelope.
fn nested_revisions(levels: usize) -> Vec<u8> {
    let mut body = envelope("apps/v1", "ControllerRevision", b"");
    for _ in 0..levels {
        body = envelope("apps/v1", "ControllerRevision", &bytes(2, &bytes(1, &body)));
    }
    body
}

#[test]
fn every_truncation_of_every_fixture_fails_cleanly() {
    for (name, body, _) in FIXTURES {
        for len in 0..body.len() {
            // Must not panic; a cut inside a field is an error, a cut between fields may still decode.
            let _ = decode(&body[..len]);
        }
        assert!(
            matches!(decode(&body[..body.len() - 1]), Err(ProtoError::Truncated)),
            "{name}"
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut body = b"k8s\0".to_vec();
        body.extend(tail);
        let _ = decode(&body);
    }

    #[test]
    fn mutated_fixtures_never_panic(case in 0..FIXTURES.len(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut body = FIXTURES[case].1.to_vec();
        for (at, byte) in edits {
            let at = at % body.len();
            body[at] = byte;
        }
        let _ = decode(&body);
    }
}
