//! Request validation and API fidelity against upstream kube-apiserver (issue 10, items 10, 11,
//! 13, 14 and 16): query parsing, strict decoding of duplicate keys, URL/body name checks on
//! patch, apply and update, Secret `stringData`, what DELETE answers, and the local APIServices.
mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::*;
use serde_json::{json, Value};

fn parse(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A Status answer: (code, reason, message).
fn status(body: &str) -> (i64, String, String) {
    let v = parse(body);
    assert_eq!(v["kind"], "Status", "{body}");
    (
        v["code"].as_i64().unwrap_or(0),
        v["reason"].as_str().unwrap_or("").to_string(),
        v["message"].as_str().unwrap_or("").to_string(),
    )
}

/// Raw HTTPS request returning (status, headers, body), for the `Warning` headers.
fn curl_with_headers(srv: &Server, method: &str, path: &str, body: &[u8], ctype: &str) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--max-time", "30", "-D", "-", "-X", method])
        .arg("-H")
        .arg(format!("Authorization: Bearer {}", srv.token()))
        .arg("-H")
        .arg(format!("Content-Type: {ctype}"))
        .args(["--data-binary", "@-"])
        .arg(format!("{}{}", srv.url(), path));
    let out = run_cmd(cmd, Some(body), Duration::from_secs(60));
    let text = out.stdout.replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn bad_timeout_seconds_is_a_bad_request() {
    let srv = Server::start();
    let t = srv.token();
    for path in [
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=abc",
        "/api/v1/namespaces/default/configmaps?timeoutSeconds=abc",
        "/api/v1/configmaps?watch=true&timeoutSeconds=1.5",
    ] {
        let (code, body) = srv.curl("GET", path, Some(&t), None, "");
        assert_eq!(code, 400, "{path}: {body}");
        let (_, reason, msg) = status(&body);
        assert_eq!(reason, "BadRequest", "{path}");
        assert!(msg.starts_with("strconv.ParseInt: parsing \""), "{path}: {msg}");
        assert!(msg.ends_with("\": invalid syntax"), "{path}: {msg}");
    }
    let (code, body) = srv.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=abc",
        Some(&t),
        None,
        "",
    );
    assert_eq!(
        (code, status(&body).2.as_str()),
        (400, "strconv.ParseInt: parsing \"abc\": invalid syntax")
    );
    // A good value still works (the watch ends after a second).
    let (code, _) = srv.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1",
        Some(&t),
        None,
        "",
    );
    assert_eq!(code, 200);
}

#[test]
fn duplicate_json_keys_follow_field_validation() {
    let srv = Server::start();
    let t = srv.token();
    let doc = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"l":"1","l":"2"}}}},"data":{{"a":"1","a":"2"}}}}"#
        )
    };
    let cms = "/api/v1/namespaces/default/configmaps";

    // Strict: 400 naming every duplicate, and nothing is created.
    let (code, body) = srv.curl(
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        Some(&t),
        Some(doc("strict").as_bytes()),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    let (_, reason, msg) = status(&body);
    assert_eq!(reason, "BadRequest");
    assert_eq!(
        msg,
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "metadata.labels.l", duplicate field "data.a""#
    );
    let (code, _) = srv.curl("GET", &format!("{cms}/strict"), Some(&t), None, "");
    assert_eq!(code, 404);

    // Warn: created (last value wins) with one Warning header per duplicate.
    let (code, head, body) = curl_with_headers(
        &srv,
        "POST",
        &format!("{cms}?fieldValidation=Warn"),
        doc("warn").as_bytes(),
        "application/json",
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(parse(&body)["data"]["a"], "2");
    assert!(head.contains(r#"duplicate field \"data.a\""#), "{head}");
    assert!(head.contains(r#"duplicate field \"metadata.labels.l\""#), "{head}");

    // Ignore: created, no warning.
    let (code, head, body) = curl_with_headers(
        &srv,
        "POST",
        &format!("{cms}?fieldValidation=Ignore"),
        doc("ignore").as_bytes(),
        "application/json",
    );
    assert_eq!(code, 201, "{body}");
    assert!(!head.to_ascii_lowercase().contains("warning:"), "{head}");

    // An update is decoded the same way.
    let (code, body) = srv.curl(
        "PUT",
        &format!("{cms}/warn?fieldValidation=Strict"),
        Some(&t),
        Some(doc("warn").as_bytes()),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        status(&body)
            .2
            .contains(r#"strict decoding error: duplicate field "metadata.labels.l""#),
        "{body}"
    );
}

#[test]
fn patch_apply_and_update_keep_the_name_of_the_url() {
    let srv = Server::start();
    let k = srv.k();
    let t = srv.token();
    k.ok(&["create", "configmap", "a", "--from-literal=k=v"]);
    let mismatch = "Error from server (BadRequest): the name of the object (b) does not match the name on the URL (a)";

    let out = k.fails(&[
        "patch",
        "cm",
        "a",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/metadata/name","value":"b"}]"#,
    ]);
    assert_eq!(out.trim(), mismatch);
    let out = k.fails(&["patch", "cm", "a", "--type=merge", "-p", r#"{"metadata":{"name":"b"}}"#]);
    assert_eq!(out.trim(), mismatch);
    // Nothing was renamed or created.
    k.ok(&["get", "cm", "a"]);
    k.fails(&["get", "cm", "b"]);

    let apply = |body: &Value| {
        srv.curl(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/a?fieldManager=test",
            Some(&t),
            Some(body.to_string().as_bytes()),
            "application/apply-patch+yaml",
        )
    };
    // Server-side apply naming another object.
    let (code, body) = apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}));
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        status(&body).2,
        "the name of the object (b) does not match the name on the URL (a)"
    );
    // Server-side apply without apiVersion and kind, or without kind.
    let (code, body) = apply(&json!({"metadata": {"name": "a"}, "data": {"k": "x"}}));
    assert_eq!(
        (code, status(&body).2.as_str()),
        (400, "invalid object type: /, Kind="),
        "{body}"
    );
    let (code, body) = apply(&json!({"apiVersion": "v1", "metadata": {"name": "a"}}));
    assert_eq!(
        (code, status(&body).2.as_str()),
        (400, "invalid object type: /v1, Kind="),
        "{body}"
    );
    let (code, body) = apply(&json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "a"}}));
    assert_eq!(
        (code, status(&body).2.as_str()),
        (400, "invalid object type: apps/v1, Kind=ConfigMap"),
        "{body}"
    );
    assert_eq!(k.ok(&["get", "cm", "a", "-o", "jsonpath={.data.k}"]), "v");

    // PUT with no name in the body.
    let (code, body) = srv.curl(
        "PUT",
        "/api/v1/namespaces/default/configmaps/a",
        Some(&t),
        Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}, "data": {"k": "y"}})
                .to_string()
                .as_bytes(),
        ),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        status(&body).2,
        "the name of the object () does not match the name on the URL (a)"
    );
    assert_eq!(k.ok(&["get", "cm", "a", "-o", "jsonpath={.data.k}"]), "v");
}

#[test]
fn secret_string_data_is_folded_into_data() {
    let srv = Server::start();
    let k = srv.k();
    let manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ntype: Opaque\ndata:\n  user: YWRtaW4=\n  password: b2xk\nstringData:\n  password: s3cret\n";
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    assert_eq!(
        k.ok(&["get", "secret", "s", "-o", "jsonpath={.data.password}"]),
        b64("s3cret")
    );
    assert_eq!(
        k.ok(&["get", "secret", "s", "-o", "jsonpath={.data.user}"]),
        b64("admin")
    );
    let stored = parse(&k.ok(&["get", "secret", "s", "-o", "json"]));
    assert!(stored.get("stringData").is_none(), "{stored}");

    // Update (client-side apply patches), patch and server-side apply fold it too.
    k.ok_stdin(&["apply", "-f", "-"], &manifest.replace("s3cret", "n3w"));
    assert_eq!(
        k.ok(&["get", "secret", "s", "-o", "jsonpath={.data.password}"]),
        b64("n3w")
    );
    k.ok(&["patch", "secret", "s", "-p", r#"{"stringData":{"token":"t0k"}}"#]);
    assert_eq!(
        k.ok(&["get", "secret", "s", "-o", "jsonpath={.data.token}"]),
        b64("t0k")
    );
    let ssa = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: t\nstringData:\n  key: v4l\n";
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], ssa);
    assert_eq!(k.ok(&["get", "secret", "t", "-o", "jsonpath={.data.key}"]), b64("v4l"));
    let stored = parse(&k.ok(&["get", "secret", "t", "-o", "json"]));
    assert!(stored.get("stringData").is_none(), "{stored}");

    // A dry run answers what would be stored.
    let dry = parse(&k.ok_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &manifest.replace("name: s", "name: dry"),
    ));
    assert_eq!(dry["data"]["password"], b64("s3cret"), "{dry}");
    assert!(dry.get("stringData").is_none(), "{dry}");
}

#[test]
fn delete_returns_the_object_where_upstream_does() {
    let srv = Server::start();
    let k = srv.k();
    let t = srv.token();
    k.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    k.ok(&["create", "serviceaccount", "robot"]);
    k.ok(&["create", "configmap", "cfg"]);
    k.ok(&["create", "quota", "q", "--hard=pods=3"]);

    let delete = |path: &str| {
        let (code, body) = srv.curl("DELETE", path, Some(&t), None, "");
        assert_eq!(code, 200, "{path}: {body}");
        parse(&body)
    };
    // ReturnDeletedObject kinds answer with the object, as the Python client decodes it.
    let svc = delete("/api/v1/namespaces/default/services/web");
    assert_eq!(
        (svc["kind"].as_str(), svc["metadata"]["name"].as_str()),
        (Some("Service"), Some("web")),
        "{svc}"
    );
    let sa = delete("/api/v1/namespaces/default/serviceaccounts/robot");
    assert_eq!(sa["kind"], "ServiceAccount", "{sa}");
    let quota = delete("/api/v1/namespaces/default/resourcequotas/q");
    assert_eq!(quota["kind"], "ResourceQuota", "{quota}");
    // The rest answer a Success Status.
    let cm = delete("/api/v1/namespaces/default/configmaps/cfg");
    assert_eq!(
        (cm["kind"].as_str(), cm["status"].as_str()),
        (Some("Status"), Some("Success")),
        "{cm}"
    );
    assert_eq!(cm["details"]["kind"], "configmaps", "{cm}");
}

#[test]
fn local_apiservices_are_listed_and_read_only() {
    let srv = Server::start();
    let k = srv.k();
    let t = srv.token();

    let table = Table::parse(&k.ok(&["get", "apiservices"]));
    assert_eq!(table.headers, ["NAME", "SERVICE", "AVAILABLE", "AGE"]);
    for name in [
        "v1.",
        "v1.apps",
        "v1.batch",
        "v1.apiregistration.k8s.io",
        "v2.autoscaling",
    ] {
        let row = table
            .rows
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no {name} in {table:?}"));
        assert_eq!((row[1].as_str(), row[2].as_str()), ("Local", "True"), "{name}");
    }
    let apps = parse(&k.ok(&["get", "apiservice", "v1.apps", "-o", "json"]));
    assert_eq!(apps["spec"]["group"], "apps");
    assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
    assert_eq!(apps["spec"]["versionPriority"], 15);
    assert_eq!(
        apps["status"]["conditions"][0]["message"],
        "Local APIServices are always available"
    );

    // Discovery lists the group, and kubectl finds the resource through it.
    let (code, body) = srv.curl("GET", "/apis/apiregistration.k8s.io/v1", Some(&t), None, "");
    assert_eq!(code, 200, "{body}");
    let list = parse(&body);
    assert_eq!(list["resources"][0]["name"], "apiservices", "{list}");
    assert_eq!(list["resources"][0]["verbs"], json!(["get", "list", "watch"]), "{list}");
    assert!(k.ok(&["api-resources"]).contains("apiservices"));

    // Watch works.
    let (code, body) = srv.curl(
        "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices?watch=1&timeoutSeconds=1",
        Some(&t),
        None,
        "",
    );
    assert_eq!(code, 200);
    assert!(body.contains(r#""type":"ADDED""#) && body.contains("v1.apps"), "{body}");

    // Writes are not allowed.
    let out = k.fails(&["delete", "apiservice", "v1.apps"]);
    assert_eq!(
        out.trim(),
        "Error from server (MethodNotAllowed): the server does not allow this method on the requested resource"
    );
    let (code, body) = srv.curl(
        "POST",
        "/apis/apiregistration.k8s.io/v1/apiservices",
        Some(&t),
        Some(br#"{"apiVersion":"apiregistration.k8s.io/v1","kind":"APIService","metadata":{"name":"v1.x"}}"#),
        "application/json",
    );
    assert_eq!((code, status(&body).1.as_str()), (405, "MethodNotAllowed"), "{body}");
    k.ok(&["get", "apiservice", "v1.apps"]);
}
