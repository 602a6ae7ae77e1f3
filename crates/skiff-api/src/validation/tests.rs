//! Table-driven validation tests: each case names the kind, the (defaulted) object and the
//! exact `field: message` lines upstream reports.

use super::{check_fields, validate_create, validate_status_update, validate_update};
use crate::defaults;
use crate::registry::{find_kind, RESOURCES};
use proptest::prelude::*;
use serde_json::{json, Value};

fn create(api_version: &str, kind: &str, mut obj: Value) -> Vec<String> {
    let def = find_kind(api_version, kind).unwrap();
    defaults::apply(def, &mut obj);
    validate_create(def, &obj)
        .into_iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

fn deploy(name: &str, spec_patch: Value) -> Value {
    let mut d = json!({"metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    merge(&mut d["spec"], spec_patch);
    d
}

fn merge(target: &mut Value, patch: Value) {
    if let (Some(t), Value::Object(p)) = (target.as_object_mut(), &patch) {
        for (k, v) in p {
            if v.is_object() && t.get(k).is_some_and(Value::is_object) {
                merge(t.get_mut(k).unwrap(), v.clone());
            } else {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn pod(spec: Value) -> Value {
    json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn create_errors_match_upstream() {
    let cases: Vec<(&str, &str, &str, Value, Vec<String>)> = vec![
        ("valid deployment", "apps/v1", "Deployment", deploy("web", json!({})), vec![]),
        ("bad name", "apps/v1", "Deployment", deploy("Bad_Name", json!({})),
            vec![format!("metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN}")]),
        ("no name", "v1", "ConfigMap", json!({"metadata": {"namespace": "default"}}),
            vec!["metadata.name: Required value: name or generateName is required".into()]),
        ("no selector", "apps/v1", "Deployment", json!({"metadata": {"name": "bad", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
            vec!["spec.selector: Required value".into()]),
        ("selector mismatch", "apps/v1", "Deployment", deploy("web", json!({"selector": {"matchLabels": {"app": "y"}}})),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`".into()]),
        ("negative replicas", "apps/v1", "Deployment", deploy("web", json!({"replicas": -1})),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0".into()]),
        ("no image", "apps/v1", "Deployment", deploy("web", json!({"template": {"spec": {"containers": [{"name": "c"}]}}})),
            vec!["spec.template.spec.containers[0].image: Required value".into()]),
        ("no containers", "v1", "Pod", pod(json!({"containers": []})), vec!["spec.containers: Required value".into()]),
        ("duplicate container", "v1", "Pod", pod(json!({"containers": [{"name": "a", "image": "i"}, {"name": "a", "image": "i"}]})),
            vec!["spec.containers[1].name: Duplicate value: \"a\"".into()]),
        ("port range", "v1", "Pod", pod(json!({"containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 70000}]}]})),
            vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into()]),
        ("missing volume", "v1", "Pod", pod(json!({"containers": [{"name": "a", "image": "i", "volumeMounts": [{"name": "v", "mountPath": "/d"}]}]})),
            vec!["spec.containers[0].volumeMounts[0].name: Not found: \"v\"".into()]),
        ("bad label value", "v1", "ConfigMap", json!({"metadata": {"name": "c", "namespace": "default", "labels": {"a": "b c"}}}),
            vec!["metadata.labels: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()]),
        ("job restart always", "batch/v1", "Job", json!({"metadata": {"name": "j", "namespace": "default", "uid": "u"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Always"}}}}),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"".into()]),
        ("valid job", "batch/v1", "Job", json!({"metadata": {"name": "j", "namespace": "default", "uid": "u"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}}}), vec![]),
        ("cronjob schedule", "batch/v1", "CronJob", json!({"metadata": {"name": "c", "namespace": "default"},
            "spec": {"schedule": "foo", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "OnFailure"}}}}}}),
            vec!["spec.schedule: Invalid value: \"foo\": expected exactly 5 fields, found 1: [foo]".into()]),
        ("service without ports", "v1", "Service", json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {}}),
            vec!["spec.ports: Required value".into()]),
        ("service name is DNS-1035", "v1", "Service", json!({"metadata": {"name": "1s", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}}),
            vec!["metadata.name: Invalid value: \"1s\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into()]),
        ("service type", "v1", "Service", json!({"metadata": {"name": "s", "namespace": "default"}, "spec": {"type": "Foo", "ports": [{"port": 80}]}}),
            vec!["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into()]),
        ("namespace name is a label", "v1", "Namespace", json!({"metadata": {"name": "a.b"}}),
            vec!["metadata.name: Invalid value: \"a.b\": must not contain dots".into()]),
        ("cluster-scoped namespace field", "v1", "Node", json!({"metadata": {"name": "n", "namespace": "x"}}),
            vec!["metadata.namespace: Forbidden: not allowed on this type".into()]),
        ("sts empty update strategy type kept", "apps/v1", "StatefulSet", json!({"metadata": {"name": "s", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}), vec![]),
        ("sts mounts a claim template", "apps/v1", "StatefulSet", json!({"metadata": {"name": "s", "namespace": "default"},
            "spec": {"podManagementPolicy": "OrderedReady", "updateStrategy": {"type": "RollingUpdate"}, "selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}), vec![]),
        ("pvc", "v1", "PersistentVolumeClaim", json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {}}),
            vec!["spec.accessModes: Required value: at least 1 access mode is required".into(), "spec.resources[storage]: Required value".into()]),
        ("secret data key", "v1", "Secret", json!({"metadata": {"name": "s", "namespace": "default"}, "data": {"a/b": ""}}),
            vec!["data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name', or 'KEY_NAME', or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".into()]),
        ("max unavailable and surge zero", "apps/v1", "Deployment", deploy("web", json!({"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}})),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0".into()]),
    ];
    for (name, api_version, kind, obj, want) in cases {
        assert_eq!(create(api_version, kind, obj), want, "{name}");
    }
}

#[test]
fn update_errors_match_upstream() {
    let dep = |sel: &str| {
        let mut d = deploy(
            "web",
            json!({"selector": {"matchLabels": {"app": sel}}, "template": {"metadata": {"labels": {"app": sel}}}}),
        );
        d["metadata"]["uid"] = json!("u1");
        defaults::apply(find_kind("apps/v1", "Deployment").unwrap(), &mut d);
        d
    };
    let mut p_old = pod(json!({"containers": [{"name": "a", "image": "i"}]}));
    defaults::apply(find_kind("v1", "Pod").unwrap(), &mut p_old);
    let mut p_image = p_old.clone();
    p_image["spec"]["containers"][0]["image"] = json!("j");
    let mut p_port = p_old.clone();
    p_port["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
    let mut renamed = dep("x");
    renamed["metadata"]["name"] = json!("other");
    let cm =
        |data: &str| json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"k": data}});
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Value,
        Value,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "deployment unchanged",
            "apps/v1",
            "Deployment",
            dep("x"),
            dep("x"),
            vec![],
        ),
        (
            "selector immutable",
            "apps/v1",
            "Deployment",
            dep("y"),
            dep("x"),
            vec!["spec.selector: Invalid value: v1.LabelSelector{\"matchLabels\":{\"app\":\"y\"}}: field is immutable"],
        ),
        (
            "name immutable",
            "apps/v1",
            "Deployment",
            renamed,
            dep("x"),
            vec!["metadata.name: Invalid value: \"other\": field is immutable"],
        ),
        ("pod image may change", "v1", "Pod", p_image, p_old.clone(), vec![]),
        (
            "immutable configmap",
            "v1",
            "ConfigMap",
            cm("b"),
            cm("a"),
            vec!["data: Forbidden: field is immutable when `immutable` is set"],
        ),
    ];
    for (name, api_version, kind, new, old, want) in cases {
        let def = find_kind(api_version, kind).unwrap();
        let got: Vec<String> = validate_update(def, &new, &old)
            .into_iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(got, want, "{name}");
    }
    let def = find_kind("v1", "Pod").unwrap();
    let errs = validate_update(def, &p_port, &p_old);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "spec");
    assert!(
        errs[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`"),
        "{}",
        errs[0].message
    );
    assert!(validate_status_update(def, &p_old, &p_old).is_empty());
}

#[test]
fn check_fields_finds_unknown_fields_and_type_errors() {
    let def = find_kind("apps/v1", "Deployment").unwrap();
    let ok_cases: Vec<(&str, Value, Vec<&str>)> = vec![
        (
            "clean",
            deploy(
                "web",
                json!({"replicas": 2, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}}),
            ),
            vec![],
        ),
        (
            "unknown",
            deploy(
                "web",
                json!({"foo": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}]}}}),
            ),
            vec!["spec.foo", "spec.template.spec.containers[0].imagee"],
        ),
        ("nulls are fine", deploy("web", json!({"replicas": null})), vec![]),
        (
            "quantities",
            deploy(
                "web",
                json!({"template": {"spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}}),
            ),
            vec![],
        ),
    ];
    for (name, obj, want) in ok_cases {
        assert_eq!(check_fields(def, &obj).unwrap(), want, "{name}");
    }
    let err_cases: Vec<(&str, Value, &str)> = vec![
        ("string replicas", deploy("web", json!({"replicas": "notanumber"})),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ("object containers", deploy("web", json!({"template": {"spec": {"containers": {}}}})),
            "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"),
        ("int overflow", deploy("web", json!({"replicas": 1.5})),
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
        ("labels", json!({"metadata": {"labels": {"a": 1}}}),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
        ("bad quantity", deploy("web", json!({"template": {"spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "lots"}}}]}}})),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ];
    for (name, obj, want) in err_cases {
        assert_eq!(check_fields(def, &obj).unwrap_err().0, want, "{name}");
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z:./%-]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("metadata".to_string()),
            Just("spec".to_string()),
            Just("template".to_string()),
            Just("containers".to_string()),
            Just("selector".to_string()),
            Just("matchLabels".to_string()),
            Just("name".to_string()),
            Just("labels".to_string()),
            Just("ports".to_string()),
            Just("volumes".to_string()),
            Just("strategy".to_string()),
            Just("rollingUpdate".to_string()),
            Just("resources".to_string()),
            Just("limits".to_string()),
            Just("requests".to_string()),
            Just("data".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_json_never_panics(a in arb_json(), b in arb_json()) {
        for def in RESOURCES {
            let mut x = a.clone();
            defaults::apply(def, &mut x);
            let _ = validate_create(def, &x);
            let _ = validate_update(def, &x, &b);
            let _ = validate_status_update(def, &x, &b);
            let _ = check_fields(def, &a);
            let _ = validate_create(def, &a);
        }
    }
}
