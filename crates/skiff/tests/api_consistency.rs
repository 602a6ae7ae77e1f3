//! LIST consistency and wire fidelity over raw HTTPS: resourceVersion and resourceVersionMatch
//! validated as kube-apiserver does, Exact lists and paged lists served from one snapshot (410
//! once it is older than the history kept), and JSON in kube-apiserver's field order (Go struct
//! order) for objects, lists, watch events and Status bodies.
mod common;

use common::*;
use serde_json::Value;

const CM: &str = "/api/v1/namespaces/cons/configmaps";

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Creates ConfigMap `name` with `data.v = value`; returns its resourceVersion.
fn create(srv: &Server, token: &str, name: &str, value: &str) -> i64 {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"v":"{value}"}}}}"#);
    let (code, out) = srv.curl("POST", CM, Some(token), Some(body.as_bytes()), "application/json");
    assert_eq!(code, 201, "{out}");
    rv_of(&json(&out)["metadata"])
}

fn rv_of(meta: &Value) -> i64 {
    meta["resourceVersion"].as_str().unwrap().parse().unwrap()
}

/// GET of `path`: (code, parsed body).
fn get(srv: &Server, token: &str, path: &str) -> (u16, Value) {
    let (code, out) = srv.curl("GET", path, Some(token), None, "");
    (code, json(&out))
}

fn names_and_values(list: &Value) -> Vec<(String, String)> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        // Every namespace has the root CA ConfigMap; the tests' own objects are the others.
        .filter(|i| i["metadata"]["name"] != "kube-root-ca.crt")
        .map(|i| {
            let n = i["metadata"]["name"].as_str().unwrap().to_string();
            (n, i["data"]["v"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

fn setup() -> (Server, String) {
    let srv = Server::start();
    srv.ok(&["create", "namespace", "cons"]);
    let token = srv.token();
    (srv, token)
}

#[test]
fn bad_resource_versions_and_match_rules_are_rejected() {
    let (srv, token) = setup();
    // (query, code, message)
    let cases = [
        (
            "resourceVersion=abc",
            400,
            r#"invalid resource version: resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax"#,
        ),
        (
            "resourceVersion=-1",
            400,
            r#"invalid resource version: resourceVersion: Invalid value: "-1": strconv.ParseUint: parsing "-1": invalid syntax"#,
        ),
        (
            "resourceVersion=1.5",
            400,
            r#"invalid resource version: resourceVersion: Invalid value: "1.5": strconv.ParseUint: parsing "1.5": invalid syntax"#,
        ),
        (
            "resourceVersion=18446744073709551616",
            400,
            r#"invalid resource version: resourceVersion: Invalid value: "18446744073709551616": strconv.ParseUint: parsing "18446744073709551616": value out of range"#,
        ),
        (
            "resourceVersionMatch=NotOlderThan",
            422,
            r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"#,
        ),
        (
            "resourceVersion=0&resourceVersionMatch=Exact",
            422,
            r#"ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0""#,
        ),
        (
            "continue=abc%21",
            400,
            "invalid continue token: continue key is not valid: illegal base64 data at input byte 3",
        ),
    ];
    for (q, want_code, want_msg) in cases {
        let (code, body) = get(&srv, &token, &format!("{CM}?{q}"));
        assert_eq!(code, want_code, "{q}: {body}");
        assert_eq!(body["message"], want_msg, "{q}");
        assert_eq!(body["kind"], "Status", "{q}");
    }
    // Good ones still list.
    for q in [
        "resourceVersion=0",
        "resourceVersion=1",
        "resourceVersion=1&resourceVersionMatch=NotOlderThan",
    ] {
        let (code, body) = get(&srv, &token, &format!("{CM}?{q}"));
        assert_eq!(code, 200, "{q}: {body}");
    }
}

#[test]
fn exact_list_at_an_old_revision_returns_that_state() {
    let (srv, token) = setup();
    let r1 = create(&srv, &token, "a", "old");
    create(&srv, &token, "b", "new");
    let (code, out) = srv.curl(
        "PATCH",
        &format!("{CM}/a"),
        Some(&token),
        Some(br#"{"data":{"v":"changed"}}"#),
        "application/merge-patch+json",
    );
    assert_eq!(code, 200, "{out}");
    let (code, old) = get(
        &srv,
        &token,
        &format!("{CM}?resourceVersion={r1}&resourceVersionMatch=Exact"),
    );
    assert_eq!(code, 200, "{old}");
    assert_eq!(names_and_values(&old), vec![("a".to_string(), "old".to_string())]);
    assert_eq!(rv_of(&old["metadata"]), r1);
    // A legacy paged list at a resourceVersion is exact too.
    let (_, paged) = get(&srv, &token, &format!("{CM}?resourceVersion={r1}&limit=5"));
    assert_eq!(names_and_values(&paged), vec![("a".to_string(), "old".to_string())]);
    // NotOlderThan reads the current state.
    let (_, now) = get(
        &srv,
        &token,
        &format!("{CM}?resourceVersion={r1}&resourceVersionMatch=NotOlderThan"),
    );
    assert_eq!(
        names_and_values(&now),
        vec![
            ("a".to_string(), "changed".to_string()),
            ("b".to_string(), "new".to_string())
        ]
    );
}

#[test]
fn paged_lists_are_one_snapshot_and_gone_after_history() {
    let (mut srv, token) = setup();
    for n in ["p1", "p2", "p3", "p4"] {
        create(&srv, &token, n, n);
    }
    // Page 1: kube-root-ca.crt, p1, p2.
    let (code, first) = get(&srv, &token, &format!("{CM}?limit=3"));
    assert_eq!(code, 200, "{first}");
    let list_rv = rv_of(&first["metadata"]);
    let cont = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(first["metadata"]["remainingItemCount"], 2);
    // Changes between the pages must not show up in page 2.
    let newer = create(&srv, &token, "p3a", "p3a");
    assert!(newer > list_rv);
    let (code, out) = srv.curl("DELETE", &format!("{CM}/p4"), Some(&token), None, "");
    assert_eq!(code, 200, "{out}");
    let (code, second) = get(&srv, &token, &format!("{CM}?limit=2&continue={cont}"));
    assert_eq!(code, 200, "{second}");
    assert_eq!(
        names_and_values(&second),
        vec![
            ("p3".to_string(), "p3".to_string()),
            ("p4".to_string(), "p4".to_string())
        ]
    );
    assert_eq!(rv_of(&second["metadata"]), list_rv);
    assert!(second["metadata"].get("continue").is_none(), "{second}");

    // After a restart the cache's history starts anew: the snapshot is gone.
    let (_, page) = get(&srv, &token, &format!("{CM}?limit=1"));
    let cont = page["metadata"]["continue"].as_str().unwrap().to_string();
    let old_rv = rv_of(&page["metadata"]);
    create(&srv, &token, "p5", "p5");
    srv.kill();
    srv.restart();
    let (code, gone) = get(
        &srv,
        &token,
        &format!("{CM}?resourceVersion={old_rv}&resourceVersionMatch=Exact"),
    );
    assert_eq!(code, 410, "{gone}");
    assert_eq!(gone["reason"], "Expired");
    assert_eq!(gone["message"], "The resourceVersion for the provided list is too old.");
    let (code, gone) = get(&srv, &token, &format!("{CM}?limit=1&continue={cont}"));
    assert_eq!(code, 410, "{gone}");
    assert!(
        gone["message"]
            .as_str()
            .unwrap()
            .starts_with("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response"),
        "{gone}"
    );
    // The token in the 410 continues, inconsistently, at the current state.
    let next = gone["metadata"]["continue"].as_str().unwrap();
    let (code, rest) = get(&srv, &token, &format!("{CM}?limit=10&continue={next}"));
    assert_eq!(code, 200, "{rest}");
    let names: Vec<String> = names_and_values(&rest).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["p1", "p2", "p3", "p3a", "p5"]);
}

#[test]
fn bodies_are_in_go_field_order() {
    let (srv, token) = setup();
    let before = get(&srv, &token, CM).1["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let body = br#"{"data":{"z":"1","a":"2"},"metadata":{"labels":{"y":"1","b":"2"},"name":"o"},"apiVersion":"v1","kind":"ConfigMap"}"#;
    let (code, created) = srv.curl("POST", CM, Some(&token), Some(body), "application/json");
    assert_eq!(code, 201, "{created}");
    assert!(
        created
            .starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"o","namespace":"cons","uid":""#),
        "{created}"
    );
    let (_, got) = srv.curl("GET", &format!("{CM}/o"), Some(&token), None, "");
    assert!(
        got.starts_with(r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"o","namespace":"cons","uid":""#),
        "{got}"
    );
    // resourceVersion before creationTimestamp, labels sorted, data after metadata and sorted.
    let tail = got.split_once(r#""resourceVersion":""#).unwrap().1;
    assert!(tail.contains(r#""creationTimestamp":"#), "{got}");
    assert!(got.contains(r#""labels":{"b":"2","y":"1"}"#), "{got}");
    assert!(got.contains(r#"},"data":{"a":"2","z":"1"}}"#), "{got}");
    let (_, list) = srv.curl("GET", CM, Some(&token), None, "");
    assert!(
        list.starts_with(r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":""#),
        "{list}"
    );
    assert!(
        list.contains(r#"},{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"o""#),
        "{list}"
    );
    let (_, watch) = srv.curl(
        "GET",
        &format!("{CM}?watch=true&resourceVersion={before}&timeoutSeconds=1"),
        Some(&token),
        None,
        "",
    );
    assert!(
        watch.starts_with(r#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"o""#),
        "{watch}"
    );
    // A Status exactly as kube-apiserver writes a conflict.
    let stale = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"o","resourceVersion":"1"}}"#;
    let (code, conflict) = srv.curl("PUT", &format!("{CM}/o"), Some(&token), Some(stale), "application/json");
    assert_eq!(code, 409, "{conflict}");
    assert_eq!(
        conflict,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on configmaps \"o\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"o","kind":"configmaps"},"code":409}"#
    );
}
