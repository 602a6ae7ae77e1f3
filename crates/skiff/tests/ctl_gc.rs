//! Garbage collection and namespace deletion through the real kubectl: `kubectl delete` with
//! the default (background), `--cascade=foreground` and `--cascade=orphan` (and 1.27's
//! `--cascade=false`), owner chains made by hand, the seed's ReplicationController, and a
//! namespace emptied by the namespace controller.
mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(60);

/// Names of the pods whose name starts with `prefix`, sorted (terminating ones included).
fn pods(k: &Kubectl<'_>, ns: &str, prefix: &str) -> Vec<String> {
    let out = k.ok(&["get", "pods", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
    let mut v: Vec<String> = out
        .split_whitespace()
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// Pods of `prefix` that are Running and not being deleted.
fn running(k: &Kubectl<'_>, ns: &str, prefix: &str) -> usize {
    let out = k.ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.metadata.deletionTimestamp}{"\n"}{end}"#,
    ]);
    out.lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 2 && f[0].starts_with(prefix) && f[1] == "Running"
        })
        .count()
}

fn exists(k: &Kubectl<'_>, ns: &str, what: &str) -> bool {
    k.run(&["get", what, "-n", ns, "-o", "name"]).success()
}

fn field(k: &Kubectl<'_>, ns: &str, what: &str, jsonpath: &str) -> String {
    k.run(&["get", what, "-n", ns, "-o", &format!("jsonpath={jsonpath}")])
        .stdout
}

const RS: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: NAME
spec:
  replicas: 2
  selector:
    matchLabels:
      app: NAME
  template:
    metadata:
      labels:
        app: NAME
    spec:
      containers:
      - name: c
        image: busybox
        command: [\"sh\", \"-c\", \"echo hi; sleep 3600\"]
";

fn rs(name: &str) -> String {
    RS.replace("NAME", name)
}

#[test]
fn cascading_deletion_on_simulated_nodes() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    k.ok(&["create", "namespace", "gc"]);
    let ns = "gc";

    // The seed's ReplicationController: `--cascade=orphan` keeps its pods, without owner.
    k.ok(&[
        "apply",
        "-n",
        ns,
        "-f",
        seed("replicationcontroller-kubia.yaml").to_str().unwrap(),
    ]);
    wait_until(T, "3 kubia pods Running", || running(&k, ns, "kubia-") == 3);
    let before = pods(&k, ns, "kubia-");
    let out = k.ok(&["delete", "rc", "kubia", "-n", ns, "--cascade=orphan"]);
    assert_eq!(out.trim(), "replicationcontroller \"kubia\" deleted");
    assert!(!exists(&k, ns, "rc/kubia"));
    assert_eq!(pods(&k, ns, "kubia-"), before, "the pods stay");
    let table = Table::parse(&k.ok(&["get", "pods", "-n", ns]));
    for p in &before {
        assert_cells(&table.row(p), &[("READY", "1/1"), ("STATUS", "Running")]);
    }
    assert_eq!(
        field(&k, ns, "pods", "{.items[*].metadata.ownerReferences}"),
        "",
        "orphans have no owner reference"
    );
    // A new controller with the same selector adopts them instead of creating pods.
    k.ok(&[
        "apply",
        "-n",
        ns,
        "-f",
        seed("replicationcontroller-kubia.yaml").to_str().unwrap(),
    ]);
    wait_until(T, "the orphans adopted", || {
        field(&k, ns, "pods", "{.items[*].metadata.ownerReferences[*].kind}")
            == "ReplicationController ReplicationController ReplicationController"
    });
    assert_eq!(pods(&k, ns, "kubia-"), before, "no new pods");
    let t = Table::parse(&k.ok(&["get", "rc", "kubia", "-n", ns]));
    assert_cells(&t.row("kubia"), &[("DESIRED", "3"), ("CURRENT", "3")]);

    // kubectl 1.27 still takes the older spelling `--cascade=false`.
    let out = s
        .kv("1.27")
        .run(&["delete", "rc", "kubia", "-n", ns, "--cascade=false"]);
    assert!(out.success(), "{out:?}");
    assert_contains(&out.stdout, "replicationcontroller \"kubia\" deleted");
    assert_contains(&out.stderr, "--cascade=false is deprecated");
    assert!(!exists(&k, ns, "rc/kubia"));
    assert_eq!(pods(&k, ns, "kubia-"), before);
    for p in &before {
        k.ok(&["delete", "pod", p, "-n", ns, "--wait=false"]);
    }

    // Background (the default): the ReplicaSet goes at once, then its pods.
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &rs("bg"));
    wait_until(T, "2 bg pods Running", || running(&k, ns, "bg-") == 2);
    let out = k.ok(&["delete", "rs", "bg", "-n", ns]);
    assert_eq!(out.trim(), "replicaset.apps \"bg\" deleted");
    wait_until(T, "the bg pods to go", || pods(&k, ns, "bg-").is_empty());

    // Foreground: the ReplicaSet waits, with the foregroundDeletion finalizer, until its
    // pods are gone (one is held here by a finalizer of our own).
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &rs("fg"));
    wait_until(T, "2 fg pods Running", || running(&k, ns, "fg-") == 2);
    let held = pods(&k, ns, "fg-")[0].clone();
    k.ok(&[
        "patch",
        "pod",
        &held,
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&["delete", "rs", "fg", "-n", ns, "--cascade=foreground", "--wait=false"]);
    wait_until(T, "only the held pod left", || pods(&k, ns, "fg-") == [held.clone()]);
    assert_eq!(
        field(&k, ns, "rs/fg", "{.metadata.finalizers}"),
        r#"["foregroundDeletion"]"#
    );
    assert!(field(&k, ns, "rs/fg", "{.metadata.deletionTimestamp}").ends_with('Z'));
    k.ok(&[
        "patch",
        "pod",
        &held,
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until(T, "the fg ReplicaSet to go", || !exists(&k, ns, "rs/fg"));
    assert!(pods(&k, ns, "fg-").is_empty());
    // kubectl waits for a foreground deletion to finish.
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &rs("fg2"));
    wait_until(T, "2 fg2 pods Running", || running(&k, ns, "fg2-") == 2);
    k.ok(&["delete", "rs", "fg2", "-n", ns, "--cascade=foreground"]);
    assert!(!exists(&k, ns, "rs/fg2"));
    assert!(pods(&k, ns, "fg2-").is_empty(), "the pods went before their owner");

    // A chain made by hand: a ConfigMap owning a ConfigMap owning a ConfigMap.
    k.ok(&["create", "configmap", "root", "-n", ns]);
    let owner = |name: &str| {
        let uid = field(&k, ns, &format!("cm/{name}"), "{.metadata.uid}");
        format!("  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {name}\n    uid: {uid}\n")
    };
    let child = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child\n{}",
        owner("root")
    );
    k.ok_stdin(&["create", "-n", ns, "-f", "-"], &child);
    let grandchild = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: grandchild\n{}",
        owner("child")
    );
    k.ok_stdin(&["create", "-n", ns, "-f", "-"], &grandchild);
    k.ok(&["delete", "cm", "root", "-n", ns]);
    wait_until(T, "the chain to go", || {
        !exists(&k, ns, "cm/child") && !exists(&k, ns, "cm/grandchild")
    });

    // A Deployment → ReplicaSet → pods chain: orphan keeps both levels, foreground takes
    // them all before the Deployment (and kubectl waits for it).
    k.ok(&[
        "create",
        "deployment",
        "chain",
        "-n",
        ns,
        "--image=nginx",
        "--replicas=2",
    ]);
    wait_until(T, "2 chain pods Running", || running(&k, ns, "chain-") == 2);
    let rs_name = k.ok(&[
        "get",
        "rs",
        "-n",
        ns,
        "-l",
        "app=chain",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    k.ok(&["delete", "deploy", "chain", "-n", ns, "--cascade=orphan"]);
    assert!(!exists(&k, ns, "deploy/chain"));
    assert!(exists(&k, ns, &format!("rs/{rs_name}")));
    assert_eq!(
        field(&k, ns, &format!("rs/{rs_name}"), "{.metadata.ownerReferences}"),
        ""
    );
    assert_eq!(running(&k, ns, "chain-"), 2);
    k.ok(&["delete", "rs", &rs_name, "-n", ns]);
    wait_until(T, "the chain pods to go", || pods(&k, ns, "chain-").is_empty());
    k.ok(&[
        "create",
        "deployment",
        "chain2",
        "-n",
        ns,
        "--image=nginx",
        "--replicas=2",
    ]);
    wait_until(T, "2 chain2 pods Running", || running(&k, ns, "chain2-") == 2);
    k.ok(&["delete", "deploy", "chain2", "-n", ns, "--cascade=foreground"]);
    assert!(!exists(&k, ns, "deploy/chain2"));
    assert_eq!(
        k.ok(&["get", "rs", "-n", ns, "-l", "app=chain2", "-o", "name"]).trim(),
        ""
    );
    assert!(
        pods(&k, ns, "chain2-").is_empty(),
        "the whole chain went before the Deployment"
    );

    // Deleting the namespace removes what is left in it.
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &rs("last"));
    wait_until(T, "2 last pods Running", || running(&k, ns, "last-") == 2);
    let out = k.ok(&["delete", "namespace", ns]);
    assert_eq!(out.trim(), "namespace \"gc\" deleted");
    let err = k.fails(&["get", "namespace", ns]);
    assert_contains(&err, "namespaces \"gc\" not found");
    let left = k.ok(&[
        "get",
        "pods,rs,rc,cm",
        "-A",
        "-o",
        "jsonpath={.items[*].metadata.namespace}",
    ]);
    assert!(!left.split_whitespace().any(|n| n == ns), "{left}");
}

#[test]
fn namespace_conditions_name_what_holds_it() {
    let s = Server::start();
    let k = s.k();
    k.ok(&["create", "namespace", "held"]);
    k.ok_stdin(
        &["create", "-n", "held", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    k.ok(&["delete", "namespace", "held", "--wait=false"]);
    wait_until(T, "the conditions", || {
        k.ok(&["get", "ns", "held", "-o", "jsonpath={.status.conditions[*].message}"])
            .contains("example.com/hold in 1 resource instances")
    });
    let d = k.ok(&["describe", "ns", "held"]);
    assert_eq!(describe_field(&d, "Status").as_deref(), Some("Terminating"), "{d}");
    // kubectl describe prints the deletion conditions as a table.
    assert_contains(&d, "NamespaceContentRemaining");
    assert_contains(&d, "SomeResourcesRemain");
    assert_contains(&d, "Some resources are remaining: configmaps. has 1 resource instances");
    let conds = k.ok(&[
        "get",
        "ns",
        "held",
        "-o",
        r#"jsonpath={range .status.conditions[*]}{.type}={.status}/{.reason}{"\n"}{end}"#,
    ]);
    assert_eq!(
        lines(&conds),
        [
            "NamespaceDeletionDiscoveryFailure=False/ResourcesDiscovered",
            "NamespaceDeletionGroupVersionParsingFailure=False/ParsedGroupVersions",
            "NamespaceDeletionContentFailure=False/ContentDeleted",
            "NamespaceContentRemaining=True/SomeResourcesRemain",
            "NamespaceFinalizersRemaining=True/SomeFinalizersRemain",
        ]
    );
    k.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until(T, "the namespace to go", || !k.run(&["get", "ns", "held"]).success());
}

#[test]
fn orphaned_processes_keep_running_on_process_nodes() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    let ns = "default";
    k.ok_stdin(&["apply", "-f", "-"], &rs("proc"));
    wait_until(T, "2 proc pods Running", || running(&k, ns, "proc-") == 2);
    let names = pods(&k, ns, "proc-");
    k.ok(&["delete", "rs", "proc", "--cascade=orphan"]);
    assert!(!exists(&k, ns, "rs/proc"));
    assert_eq!(pods(&k, ns, "proc-"), names);
    for p in &names {
        // The processes still run: their logs are there and exec works.
        assert_eq!(k.ok(&["logs", p]).trim(), "hi");
        assert_eq!(k.ok(&["exec", p, "--", "sh", "-c", "echo alive"]).trim(), "alive");
    }
    // A new owner adopts them; deleting it (background) stops them.
    k.ok_stdin(&["apply", "-f", "-"], &rs("proc"));
    wait_until(T, "the orphans adopted", || {
        field(&k, ns, "pods", "{.items[*].metadata.ownerReferences[*].kind}") == "ReplicaSet ReplicaSet"
    });
    assert_eq!(pods(&k, ns, "proc-"), names);
    k.ok(&["delete", "rs", "proc"]);
    wait_until(T, "the pods to go", || pods(&k, ns, "proc-").is_empty());
}
