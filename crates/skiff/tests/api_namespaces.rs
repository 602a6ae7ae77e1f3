//! Namespace lifecycle: deleting a namespace puts it in Terminating, removes its contents and
//! then the namespace; new content is refused meanwhile.
mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn deleting_a_namespace_removes_it_with_its_contents() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "doomed"]);
    k.ok(&["create", "configmap", "a", "-n", "doomed", "--from-literal=k=v"]);
    k.ok(&["create", "secret", "generic", "s", "-n", "doomed", "--from-literal=k=v"]);
    k.ok(&["create", "deployment", "web", "-n", "doomed", "--image=nginx"]);
    k.ok(&["run", "p", "-n", "doomed", "--image=nginx"]);
    k.ok(&["create", "namespace", "bystander"]);
    k.ok(&["create", "configmap", "a", "-n", "bystander"]);

    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "ns", "doomed", "-w", "--output-watch-events"]);
    w.wait_line(T, "the namespace", |l| l.contains("doomed"));
    // kubectl waits until the namespace is gone.
    let out = k.ok(&["delete", "namespace", "doomed"]);
    assert!(out.starts_with("namespace \"doomed\" deleted"), "{out}");
    w.wait_line(T, "DELETED", |l| l.split_whitespace().next() == Some("DELETED"));
    let seen = w.stdout();
    assert!(
        seen.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..3] == ["MODIFIED", "doomed", "Terminating"]),
        "the namespace went through Terminating:\n{seen}"
    );
    w.kill();

    let err = k.fails(&["get", "ns", "doomed"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): namespaces \"doomed\" not found"
    );
    for kind in ["configmaps", "secrets", "deployments", "pods"] {
        let out = k.run(&["get", kind, "-n", "doomed"]);
        assert!(out.success(), "{out:?}");
        assert_eq!(
            out.stderr.trim(),
            "No resources found in doomed namespace.",
            "{kind} left behind"
        );
    }
    let all = k.ok(&[
        "get",
        "cm,secrets,deploy,pods",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.namespace}",
    ]);
    assert!(!all.split_whitespace().any(|n| n == "doomed"), "{all}");
    assert_eq!(
        k.ok(&["get", "cm", "a", "-n", "bystander", "-o", "name"]).trim(),
        "configmap/a"
    );
    // The name can be used again, and the new namespace is empty.
    k.ok(&["create", "namespace", "doomed"]);
    let out = k.run(&["get", "cm", "-n", "doomed", "-o", "name"]);
    assert!(!out.stdout.contains("configmap/a"), "{out:?}");

    // The built-in namespaces cannot be deleted.
    let err = k.fails(&["delete", "namespace", "default"]);
    assert_contains(
        &err,
        "Error from server (Forbidden): namespaces \"default\" is forbidden: this namespace may not be deleted",
    );
    let err = k.fails(&["delete", "namespace", "kube-system"]);
    assert_contains(
        &err,
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted",
    );
}

#[test]
fn a_namespace_stays_terminating_while_content_has_finalizers() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "slow"]);
    k.ok_stdin(
        &["create", "-n", "slow", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    k.ok(&["create", "configmap", "plain", "-n", "slow"]);

    let out = k.ok(&["delete", "namespace", "slow", "--wait=false"]);
    assert!(out.starts_with("namespace \"slow\" deleted"), "{out}");
    wait_until(T, "the namespace is Terminating", || {
        k.run(&["get", "ns", "slow", "-o", "jsonpath={.status.phase}"]).stdout == "Terminating"
    });
    let t = Table::parse(&k.ok(&["get", "ns", "slow"]));
    assert_cells(&t.row("slow"), &[("STATUS", "Terminating")]);
    let d = k.ok(&["describe", "ns", "slow"]);
    assert_eq!(describe_field(&d, "Status").as_deref(), Some("Terminating"), "{d}");
    assert!(
        k.ok(&["get", "ns", "slow", "-o", "jsonpath={.metadata.deletionTimestamp}"])
            .ends_with('Z'),
        "deletionTimestamp is set"
    );

    // Content without finalizers goes; the held object is marked for deletion and waits.
    wait_until(T, "the plain configmap is removed", || {
        !k.run(&["get", "cm", "plain", "-n", "slow"]).success()
    });
    wait_until(T, "the held configmap is marked", || {
        k.run(&[
            "get",
            "cm",
            "held",
            "-n",
            "slow",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .stdout
        .ends_with('Z')
    });

    // New content is refused while the namespace terminates.
    let err = k.fails_stdin(
        &["create", "-n", "slow", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n",
    );
    assert_eq!(
        err.trim(),
        "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"late\" is forbidden: unable to create new content in namespace slow because it is being terminated"
    );

    // Releasing the finalizer lets both go.
    k.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "slow",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until(T, "the namespace is gone", || !k.run(&["get", "ns", "slow"]).success());
    // kubectl 1.33, on a 404, looks the namespace up and reports that instead (as against a
    // real cluster); the server's own answer is the object's NotFound.
    let err = k.fails(&["get", "cm", "held", "-n", "slow"]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): namespaces \"slow\" not found"
    );
    let raw = k.fails(&["get", "--raw", "/api/v1/namespaces/slow/configmaps/held"]);
    assert!(raw.contains("configmaps \"held\" not found"), "{raw}");
}
