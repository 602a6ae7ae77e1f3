//! Error messages exactly as kubectl prints them against a real server: NotFound, AlreadyExists,
//! Invalid (422), Conflict (stale resourceVersion), missing namespace, oversized bodies (413),
//! malformed bodies (400).
mod common;

use common::*;

#[test]
fn not_found_already_exists_invalid_and_conflict() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "err"]);
    let n = "err";

    // NotFound
    assert_eq!(
        k.fails(&["get", "pod", "nope", "-n", n]).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );
    assert_eq!(
        k.fails(&["get", "deploy", "nope", "-n", n]).trim(),
        "Error from server (NotFound): deployments.apps \"nope\" not found"
    );
    assert_eq!(
        k.fails(&["get", "ingress", "nope", "-n", n]).trim(),
        "Error from server (NotFound): ingresses.networking.k8s.io \"nope\" not found"
    );
    assert_eq!(
        k.fails(&["delete", "cm", "nope", "-n", n]).trim(),
        "Error from server (NotFound): configmaps \"nope\" not found"
    );
    assert_eq!(
        k.fails(&["get", "ns", "nope"]).trim(),
        "Error from server (NotFound): namespaces \"nope\" not found"
    );
    assert_eq!(
        k.fails(&["get", "node", "nope"]).trim(),
        "Error from server (NotFound): nodes \"nope\" not found"
    );
    let (code, body) = srv.curl("GET", "/api/v1/namespaces/err/pods/nope", Some(&srv.token()), None, "");
    assert_eq!(code, 404);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        st,
        serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
            "message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404})
    );
    let err = k.fails(&["get", "nosuchkind"]);
    assert_contains(&err, "error: the server doesn't have a resource type \"nosuchkind\"");

    // AlreadyExists: from a file, and from a generator.
    let cm = srv.write_file(
        "x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b\n",
    );
    assert_eq!(
        lines(&k.ok(&["create", "-f", "x.yaml", "-n", n])),
        ["configmap/x created"]
    );
    let err = k.fails(&["create", "-f", "x.yaml", "-n", n]);
    assert_eq!(
        err.trim(),
        "Error from server (AlreadyExists): error when creating \"x.yaml\": configmaps \"x\" already exists"
    );
    let err = k.fails(&["create", "-f", cm.to_str().unwrap(), "-n", n]);
    assert_eq!(
        err.trim(),
        format!(
            "Error from server (AlreadyExists): error when creating \"{}\": configmaps \"x\" already exists",
            cm.display()
        )
    );
    let err = k.fails(&["create", "configmap", "x", "-n", n, "--from-literal=a=b"]);
    assert_eq!(
        err.trim(),
        "error: failed to create configmap: configmaps \"x\" already exists"
    );
    k.ok(&["create", "deployment", "web", "-n", n, "--image=nginx"]);
    let err = k.fails(&["create", "deployment", "web", "-n", n, "--image=nginx"]);
    assert_eq!(
        err.trim(),
        "error: failed to create deployment: deployments.apps \"web\" already exists"
    );
    let err = k.fails_stdin(
        &["create", "-f", "-", "-n", n],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: err\n",
    );
    assert_eq!(
        err.trim(),
        "Error from server (AlreadyExists): error when creating \"STDIN\": namespaces \"err\" already exists"
    );

    // Invalid (422): one cause, several causes.
    let bad = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  replicas: -1\n  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n    spec:\n      containers:\n      - name: c\n        image: nginx\n";
    let err = k.fails_stdin(&["apply", "-f", "-", "-n", n], bad);
    assert_eq!(
        err.trim(),
        "The Deployment \"bad\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let err = k.fails_stdin(&["create", "-f", "-", "-n", n], bad);
    assert_eq!(
        err.trim(),
        "The Deployment \"bad\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let mismatch = bad
        .replace("replicas: -1", "replicas: 1")
        .replace("labels: {app: bad}", "labels: {app: other}");
    let err = k.fails_stdin(&["apply", "-f", "-", "-n", n], &mismatch);
    assert_eq!(
        err.trim(),
        "The Deployment \"bad\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
    );
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: badjob\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: c\n        image: busybox\n";
    let err = k.fails_stdin(&["apply", "-f", "-", "-n", n], job);
    assert_eq!(
        err.trim(),
        "The Job \"badjob\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
    let name = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n";
    let err = k.fails_stdin(&["create", "-f", "-", "-n", n], name);
    assert_eq!(
        err.trim(),
        "The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: noimage\nspec:\n  containers:\n  - name: c\n";
    let err = k.fails_stdin(&["create", "-f", "-", "-n", n], pod);
    assert_eq!(
        err.trim(),
        "The Pod \"noimage\" is invalid: spec.containers[0].image: Required value"
    );
    let two = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: twoerrs\nspec:\n  containers:\n  - name: c\n  - name: c\n    image: nginx\n";
    let err = k.fails_stdin(&["create", "-f", "-", "-n", n], two);
    assert_eq!(
        err.trim(),
        "The Pod \"twoerrs\" is invalid: \n* spec.containers[0].image: Required value\n* spec.containers[1].name: Duplicate value: \"c\""
    );
    let (code, body) = srv.curl(
        "POST",
        "/api/v1/namespaces/err/configmaps",
        Some(&srv.token()),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#),
        "application/json",
    );
    assert_eq!(code, 422, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(st["details"]["kind"], "ConfigMap");
    assert_eq!(st["details"]["name"], "Bad_Name");
    assert_eq!(st["details"]["causes"][0]["field"], "metadata.name");
    assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
    // Immutable fields.
    let sel2 = std::fs::read_to_string(seed("replicaset-kubia-matchexpressions.yaml")).unwrap();
    k.ok(&["apply", "-n", n, "-f", seed("replicaset-kubia.yaml").to_str().unwrap()]);
    let err = k.fails_stdin(&["apply", "-n", n, "-f", "-"], &sel2);
    assert_contains(
        &err,
        "The ReplicaSet \"kubia\" is invalid: spec.selector: Invalid value: ",
    );
    assert_contains(&err, "field is immutable");

    // Conflict: replace with a stale resourceVersion.
    let stale = k.ok(&["get", "cm", "x", "-n", n, "-o", "yaml"]);
    srv.write_file("x-old.yaml", &stale);
    k.ok(&["label", "cm", "x", "-n", n, "bump=1"]);
    let err = k.fails(&["replace", "-f", "x-old.yaml"]);
    assert_eq!(
        err.trim(),
        "Error from server (Conflict): error when replacing \"x-old.yaml\": Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let dep = k.ok(&["get", "deploy", "web", "-n", n, "-o", "yaml"]);
    srv.write_file("web-old.yaml", &dep);
    k.ok(&["scale", "deploy", "web", "-n", n, "--replicas=2"]);
    let err = k.fails(&["replace", "-f", "web-old.yaml"]);
    assert_eq!(
        err.trim(),
        "Error from server (Conflict): error when replacing \"web-old.yaml\": Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A label with a stale --resource-version is refused too.
    let rv = k.ok(&["get", "cm", "x", "-n", n, "-o", "jsonpath={.metadata.resourceVersion}"]);
    k.ok(&["label", "cm", "x", "-n", n, "bump=2", "--overwrite"]);
    let err = k.fails(&[
        "label",
        "cm",
        "x",
        "-n",
        n,
        "bump=3",
        "--overwrite",
        &format!("--resource-version={rv}"),
    ]);
    assert_contains(
        &err,
        "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again",
    );
    // replace --force of the stale file works (delete + create).
    let out = k.ok(&["replace", "--force", "-f", "x-old.yaml"]);
    assert_contains(&out, "configmap \"x\" deleted");
    assert_contains(&out, "configmap/x replaced");
}

#[test]
fn missing_namespace_bad_bodies_and_oversized_requests() {
    let srv = Server::start();
    let k = srv.k();
    let token = srv.token();

    // Creating in a namespace that does not exist.
    let cm = srv.write_file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n");
    let err = k.fails(&["create", "-f", "cm.yaml", "-n", "nope"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): error when creating \"cm.yaml\": namespaces \"nope\" not found"
    );
    let err = k.fails(&["apply", "-f", cm.to_str().unwrap(), "-n", "nope"]);
    assert_contains(&err, "namespaces \"nope\" not found");
    let err = k.fails(&["create", "configmap", "y", "-n", "nope", "--from-literal=a=b"]);
    assert_eq!(
        err.trim(),
        "error: failed to create configmap: namespaces \"nope\" not found"
    );
    let err = k.fails(&["run", "p", "-n", "nope", "--image=nginx"]);
    assert_contains(&err, "namespaces \"nope\" not found");
    // Listing in a namespace that does not exist is an empty list, as upstream.
    let out = k.run(&["get", "cm", "-n", "nope"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stderr.trim(), "No resources found in nope namespace.");

    // Body namespace differs from the URL namespace.
    let (code, body) = srv.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"z","namespace":"kube-system"}}"#),
        "application/json",
    );
    assert_eq!(code, 400, "{body}");
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["reason"], "BadRequest");
    assert_eq!(
        st["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );

    // Malformed bodies: 400 BadRequest with a Status, never a crash.
    for (bad, ctype) in [
        (&b"{not json"[..], "application/json"),
        (&b"[1,2,3]"[..], "application/json"),
        (&b"kind: [unclosed"[..], "application/yaml"),
        (&b"k8s\x00\xff\xff\xff\xff"[..], "application/vnd.kubernetes.protobuf"),
        (
            &br#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"wrongkind"}}"#[..],
            "application/json",
        ),
        (
            &br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"},"data":{"a":1}}"#[..],
            "application/json",
        ),
    ] {
        let (code, body) = srv.curl(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&token),
            Some(bad),
            ctype,
        );
        assert_eq!(
            code,
            400,
            "body {:?} answered {code}: {body}",
            String::from_utf8_lossy(bad)
        );
        let st: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("error body is not a Status ({e}): {body}"));
        assert_eq!(st["kind"], "Status");
        assert_eq!(st["reason"], "BadRequest", "{body}");
    }
    let (code, body) = srv.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        Some(b"x"),
        "text/plain",
    );
    assert_eq!(code, 415, "{body}");
    // The server is still healthy.
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).trim(), "ok");

    // Bodies over 3 MiB: 413 RequestEntityTooLarge.
    let big = "a".repeat(3 * 1024 * 1024 + 1024);
    let doc = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {big}\n");
    let f = srv.write_file("big.yaml", &doc);
    let err = k.fails(&["create", "-f", "big.yaml", "-n", "default"]);
    assert_eq!(
        err.trim(),
        "Error from server (RequestEntityTooLarge): error when creating \"big.yaml\": Request entity too large: limit is 3145728"
    );
    let _ = f;
    let json =
        format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"blob":"{big}"}}}}"#);
    let (code, body) = srv.curl(
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(&token),
        Some(json.as_bytes()),
        "application/json",
    );
    assert_eq!(code, 413, "{}", &body[..body.len().min(300)]);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["reason"], "RequestEntityTooLarge");
    assert_eq!(st["message"], "Request entity too large: limit is 3145728");
    // A ConfigMap under 3 MiB but over the 1 MiB object limit is invalid (422).
    let mid = "b".repeat(1024 * 1024 + 10);
    let doc = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: mid\ndata:\n  blob: {mid}\n");
    let err = k.fails_stdin(&["create", "-f", "-", "-n", "default"], &doc);
    // (the detail wording of TooLong changed across releases; the field and limit did not)
    assert_contains(&err, "The ConfigMap \"mid\" is invalid: []: Too long: ");
    assert_contains(&err, " 1048576 bytes");
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
}
