use serde_json::{json, Map, Value};

use super::*;
use crate::registry::{find, ResourceDef};

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn label_grammar_round_trips_to_canonical_form() {
    let cases: &[(&str, &str, &str)] = &[
        ("empty", "", ""),
        ("blank", "   ", ""),
        ("equals", "app=web", "app=web"),
        ("double equals", "app==web", "app==web"),
        ("not equals", "app!=web", "app!=web"),
        ("in sorted", "tier in (b,a)", "tier in (a,b)"),
        ("notin", "tier notin (a)", "tier notin (a)"),
        ("exists", "app", "app"),
        ("does not exist", "!app", "!app"),
        ("sorted by key", "z=1,a=2", "a=2,z=1"),
        (
            "whitespace tolerant",
            " app = web , tier in ( a , b ) , ! canary ",
            "app=web,!canary,tier in (a,b)",
        ),
        ("empty value", "app=", "app="),
        ("empty value before comma", "app=,b", "app=,b"),
        ("empty set", "x in ()", "x in ()"),
        ("empty members", "x in (foo,,baz)", "x in (,baz,foo)"),
        ("keyword as value", "x in (in,notin)", "x in (in,notin)"),
        ("keyword as key", "in=1", "in=1"),
        (
            "prefixed key",
            "app.kubernetes.io/name=web",
            "app.kubernetes.io/name=web",
        ),
        ("greater than", "n>5", "n>5"),
        ("less than", "n<5", "n<5"),
        ("duplicate values", "x in (a,a)", "x in (a)"),
    ];
    for (name, input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(sel.to_string(), *want, "{name}");
        // The canonical form parses back to the same selector.
        assert_eq!(
            LabelSelector::parse(&sel.to_string()).unwrap(),
            sel,
            "{name} round trip"
        );
    }
}

#[test]
fn label_grammar_errors_use_upstream_text() {
    let name_re = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let value_re = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    let cases: Vec<(&str, &str, String)> = vec![
        ("bad value", "app=@@", format!("unable to parse requirement: values[0][app]: Invalid value: \"@@\": {value_re}")),
        ("bad key", "a@b=c", format!("unable to parse requirement: <nil>: Invalid value: \"a@b\": {name_re}")),
        ("leading comma", ",a", "found ',', expected: !, identifier, or 'end of string'".into()),
        ("trailing comma", "a=b,", "found '', expected: identifier after ','".into()),
        ("two values", "a=b c", "found 'c', expected: ',' or 'end of string'".into()),
        ("missing paren", "a in b", "unable to parse requirement: found 'b' expected: '('".into()),
        ("unclosed set", "a in (b", "unable to parse requirement: found '', expected: ',' or ')'".into()),
        ("set junk", "a in (=", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
        ("bad operator", "a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt".into()),
        ("not then operator", "!a=b", "found '=', expected: ',' or 'end of string'".into()),
        ("operator without key", "=b", "found '=', expected: !, identifier, or 'end of string'".into()),
        ("bang alone", "!", "unable to parse requirement: found '', expected: identifier".into()),
        ("exact value junk", "a=(", "unable to parse requirement: found '(', expected: identifier".into()),
        ("gt needs integer", "a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer".into()),
    ];
    for (name, input, want) in cases {
        let err = LabelSelector::parse(input).expect_err(name);
        assert_eq!(err.to_string(), want, "{name}");
    }
    let long = format!("{}=v", "a".repeat(64));
    assert_eq!(
        LabelSelector::parse(&long).unwrap_err().to_string(),
        format!(
            "unable to parse requirement: <nil>: Invalid value: \"{}\": name part must be no more than 63 characters",
            "a".repeat(64)
        )
    );
}

#[test]
fn label_matching() {
    let l = labels(json!({"app": "web", "tier": "front", "n": "7"}));
    let cases: &[(&str, &str, bool)] = &[
        ("empty matches", "", true),
        ("equals", "app=web", true),
        ("equals other", "app=db", false),
        ("not equals missing key", "zone!=a", true),
        ("not equals same", "app!=web", false),
        ("in", "tier in (back,front)", true),
        ("in missing key", "zone in (a)", false),
        ("notin missing key", "zone notin (a)", true),
        ("notin hit", "tier notin (front)", false),
        ("exists", "app", true),
        ("exists missing", "zone", false),
        ("does not exist", "!zone", true),
        ("does not exist present", "!app", false),
        ("and", "app=web,tier=back", false),
        ("gt", "n>5", true),
        ("lt", "n<5", false),
        ("gt non numeric label", "app>1", false),
    ];
    for (name, sel, want) in cases {
        assert_eq!(LabelSelector::parse(sel).unwrap().matches(Some(&l)), *want, "{name}");
    }
    assert!(LabelSelector::parse("!app").unwrap().matches(None));
    assert!(!LabelSelector::parse("app").unwrap().matches(None));
}

#[test]
fn label_selector_from_json() {
    let cases: Vec<(&str, Value, Result<&str, &str>, bool)> = vec![
        (
            "match labels",
            json!({"matchLabels": {"tier": "a", "app": "web"}}),
            Ok("app=web,tier=a"),
            false,
        ),
        (
            "expressions",
            json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
            Ok("app=web,!canary,env notin (prod),tier in (a,b),zone"),
            false,
        ),
        ("empty", json!({}), Ok(""), true),
        (
            "bad operator",
            json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
            Err("\"Gt\" is not a valid label selector operator"),
            false,
        ),
        (
            "in without values",
            json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
            Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
            false,
        ),
        (
            "exists with values",
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            Err("values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"),
            false,
        ),
    ];
    for (name, v, want, empty) in cases {
        match (LabelSelector::from_json(&v), want) {
            (Ok(sel), Ok(s)) => {
                assert_eq!(sel.to_string(), s, "{name}");
                assert_eq!(sel.is_empty(), empty, "{name}");
            }
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg, "{name}"),
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
    // A null selector matches nothing and is not "empty".
    let nothing = LabelSelector::from_json(&Value::Null).unwrap();
    assert!(!nothing.is_empty());
    assert!(!nothing.matches(Some(&labels(json!({"a": "b"})))));
    let sel = LabelSelector::parse("app in (web)").unwrap();
    assert_eq!(sel.exact_match("app"), Some("web"));
}

fn def(group: &str, plural: &str) -> &'static ResourceDef {
    let version = match group {
        "" | "apps" | "batch" | "events.k8s.io" => "v1",
        _ => "v1",
    };
    find(group, version, plural).unwrap()
}

#[test]
fn field_selector_parsing() {
    let cases: &[(&str, &str, Result<&str, &str>)] = &[
        ("empty", "", Ok("")),
        ("equals", "metadata.name=web", Ok("metadata.name=web")),
        ("double equals", "metadata.name==web", Ok("metadata.name=web")),
        ("not equals", "status.phase!=Failed", Ok("status.phase!=Failed")),
        (
            "sorted and",
            "spec.nodeName=n,status.phase!=Succeeded",
            Ok("spec.nodeName=n,status.phase!=Succeeded"),
        ),
        (
            "empty value",
            "involvedObject.namespace=",
            Ok("involvedObject.namespace="),
        ),
        ("escaped comma", "a=x\\,y", Ok("a=x\\,y")),
        (
            "no operator",
            "foo",
            Err("invalid selector: 'foo'; can't understand 'foo'"),
        ),
        (
            "bad escape",
            "a=x\\y",
            Err("invalid field selector: invalid escape sequence: \\y"),
        ),
        ("unescaped equals", "a=b=c", Err("invalid field selector: unescaped =")),
        (
            "trailing backslash",
            "a=b\\",
            Err("invalid field selector: invalid escape sequence: \\"),
        ),
    ];
    for (name, input, want) in cases {
        match (FieldSelector::parse(input), want) {
            (Ok(sel), Ok(s)) => assert_eq!(sel.to_string(), *s, "{name}"),
            (Err(e), Err(msg)) => assert_eq!(e.to_string(), *msg, "{name}"),
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[test]
fn field_selector_support_per_kind() {
    let cases: &[(&str, &str, &str, Result<(), &str>)] = &[
        ("pod node", "pods", "spec.nodeName=n1", Ok(())),
        ("pod legacy host", "pods", "spec.host=n1", Ok(())),
        ("pod phase", "pods", "status.phase=Running", Ok(())),
        (
            "pod bad",
            "pods",
            "spec.foo=x",
            Err("field label not supported: spec.foo"),
        ),
        (
            "event involved",
            "events",
            "involvedObject.name=p,involvedObject.namespace=",
            Ok(()),
        ),
        ("event source", "events", "source=kubelet", Ok(())),
        ("node unschedulable", "nodes", "spec.unschedulable=true", Ok(())),
        (
            "node namespace refused",
            "nodes",
            "metadata.namespace=x",
            Err("field label not supported: metadata.namespace"),
        ),
        ("namespace phase", "namespaces", "status.phase=Active", Ok(())),
        ("secret type", "secrets", "type=Opaque", Ok(())),
        ("service type", "services", "spec.type=ClusterIP", Ok(())),
        ("rc replicas", "replicationcontrollers", "status.replicas=1", Ok(())),
        ("configmap name", "configmaps", "metadata.name=x", Ok(())),
        (
            "configmap other",
            "configmaps",
            "data.x=y",
            Err("\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""),
        ),
    ];
    for (name, plural, sel, want) in cases {
        let got = FieldSelector::parse(sel).unwrap().check_supported(def("", plural));
        match (got, want) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(msg)) => {
                assert_eq!(e.to_string(), *msg, "{name}");
                assert!(matches!(e, SelectorError::UnsupportedField(_)), "{name}");
            }
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
    let job = FieldSelector::parse("spec.foo=1")
        .unwrap()
        .check_supported(def("batch", "jobs"))
        .unwrap_err();
    assert_eq!(
        job.to_string(),
        "field label \"spec.foo\" not supported for batchv1.Job"
    );
    assert!(FieldSelector::parse("status.successful=1")
        .unwrap()
        .check_supported(def("batch", "jobs"))
        .is_ok());
    // apps/v1 registers no field label conversions upstream: only metadata fields.
    assert!(FieldSelector::parse("status.replicas=1")
        .unwrap()
        .check_supported(def("apps", "replicasets"))
        .is_err());
    assert!(FieldSelector::parse("regarding.name=x")
        .unwrap()
        .check_supported(def("events.k8s.io", "events"))
        .is_ok());
    assert!(FieldSelector::parse("involvedObject.name=x")
        .unwrap()
        .check_supported(def("events.k8s.io", "events"))
        .is_err());
}

#[test]
fn field_selector_matching() {
    let pod = json!({"metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": "n1", "restartPolicy": "Always"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}]}});
    let event = json!({"metadata": {"name": "e1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
        "reason": "Started", "type": "Normal", "reportingComponent": "kubelet"});
    let new_event = json!({"apiVersion": "events.k8s.io/v1", "metadata": {"name": "e2", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web-1"}, "reportingController": "sched", "note": "x"});
    let node = json!({"metadata": {"name": "n1"}, "spec": {}});
    let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
    let cases: Vec<(&str, &ResourceDef, &Value, &str, bool)> = vec![
        ("pod node", def("", "pods"), &pod, "spec.nodeName=n1", true),
        ("pod legacy host", def("", "pods"), &pod, "spec.host=n1", true),
        (
            "pod describe node",
            def("", "pods"),
            &pod,
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
            true,
        ),
        (
            "pod phase mismatch",
            def("", "pods"),
            &pod,
            "status.phase=Pending",
            false,
        ),
        ("pod ip", def("", "pods"), &pod, "status.podIP=10.0.0.5", true),
        (
            "pod host network defaults false",
            def("", "pods"),
            &pod,
            "spec.hostNetwork=false",
            true,
        ),
        (
            "pod podIPs never set",
            def("", "pods"),
            &pod,
            "status.podIPs=10.0.0.5",
            false,
        ),
        (
            "pod unset field empty",
            def("", "pods"),
            &pod,
            "spec.schedulerName=",
            true,
        ),
        ("pod name", def("", "pods"), &pod, "metadata.name=web-1", true),
        (
            "event describe",
            def("", "events"),
            &event,
            "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1",
            true,
        ),
        (
            "event source falls back",
            def("", "events"),
            &event,
            "source=kubelet",
            true,
        ),
        (
            "event kind",
            def("", "events"),
            &event,
            "involvedObject.kind=Node",
            false,
        ),
        (
            "new event regarding",
            def("events.k8s.io", "events"),
            &new_event,
            "regarding.name=web-1",
            true,
        ),
        (
            "new event controller",
            def("events.k8s.io", "events"),
            &new_event,
            "reportingController=sched",
            true,
        ),
        (
            "core view of new event",
            def("", "events"),
            &new_event,
            "involvedObject.kind=Pod,reportingComponent=sched",
            true,
        ),
        (
            "node unschedulable default",
            def("", "nodes"),
            &node,
            "spec.unschedulable=false",
            true,
        ),
        (
            "job successful",
            def("batch", "jobs"),
            &job,
            "status.successful=2",
            true,
        ),
    ];
    for (name, d, obj, sel, want) in cases {
        assert_eq!(FieldSelector::parse(sel).unwrap().matches(d, obj), want, "{name}");
    }
}

#[test]
fn field_selector_exact_name() {
    let cases: &[(&str, Option<&str>)] = &[
        ("metadata.name=web", Some("web")),
        ("metadata.name==web,metadata.namespace=x", Some("web")),
        ("metadata.name!=web", None),
        ("spec.nodeName=n1", None),
        ("", None),
    ];
    for (sel, want) in cases {
        assert_eq!(FieldSelector::parse(sel).unwrap().exact_name(), *want, "{sel}");
    }
}
