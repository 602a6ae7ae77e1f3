//! Watches: `kubectl get -w` stays open and shows changes; raw watches from a resourceVersion.
mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn words(l: &str) -> Vec<&str> {
    l.split_whitespace().collect()
}

#[test]
fn get_watch_shows_changes_and_stays_open() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "w"]);
    k.ok(&["create", "namespace", "w2"]);

    // Watch a namespace that is empty at first.
    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "cm", "-n", "w", "-w", "--output-watch-events"]);
    // (kubectl -w prints nothing for an empty list; a create racing the initial list shows up
    // either in the list or in the watch, as an ADDED line in both cases)
    k.ok(&["create", "configmap", "one", "-n", "w", "--from-literal=a=1"]);
    let added = w.wait_line(T, "ADDED one", |l| words(l).starts_with(&["ADDED", "one"]));
    assert_eq!(words(&added)[2], "1", "DATA column: {added}");
    let header = w.stdout().lines().next().unwrap().to_string();
    assert_eq!(words(&header), ["EVENT", "NAME", "DATA", "AGE"]);
    k.ok(&["create", "configmap", "other-ns", "-n", "w2", "--from-literal=a=1"]);
    k.ok(&["label", "configmap", "one", "-n", "w", "x=y"]);
    w.wait_line(T, "MODIFIED one", |l| words(l).starts_with(&["MODIFIED", "one"]));
    k.ok(&[
        "patch",
        "configmap",
        "one",
        "-n",
        "w",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ]);
    w.wait_line(T, "MODIFIED one with 2 keys", |l| {
        words(l).starts_with(&["MODIFIED", "one", "2"])
    });
    k.ok(&["delete", "configmap", "one", "-n", "w"]);
    w.wait_line(T, "DELETED one", |l| words(l).starts_with(&["DELETED", "one"]));
    assert!(
        w.running(),
        "kubectl get -w must stay open\nstdout:\n{}\nstderr:\n{}",
        w.stdout(),
        w.stderr()
    );
    assert!(
        !w.stdout().contains("other-ns"),
        "events from another namespace leaked:\n{}",
        w.stdout()
    );
    w.kill();

    // Plain -w (table without event column) on a non-empty list: current rows first, then changes.
    k.ok(&["create", "configmap", "two", "-n", "w", "--from-literal=a=1"]);
    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "cm", "-n", "w", "-w"]);
    w.wait_line(T, "the existing row", |l| words(l).first() == Some(&"two"));
    k.ok(&["create", "configmap", "three", "-n", "w"]);
    let l = w.wait_line(T, "the new row", |l| words(l).first() == Some(&"three"));
    assert_eq!(words(&l)[1], "0");
    assert!(w.running());
    w.kill();

    // Watch one object by name: kubectl hides the synthetic initial ADDED.
    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "cm", "two", "-n", "w", "-w", "-o", "name"]);
    w.wait_line(T, "the object", |l| l.trim() == "configmap/two");
    k.ok(&["label", "cm", "three", "-n", "w", "unrelated=1"]);
    k.ok(&["label", "cm", "two", "-n", "w", "x=1"]);
    wait_until(T, "a second line for the change to two", || {
        w.stdout().lines().filter(|l| l.trim() == "configmap/two").count() == 2
    });
    assert!(!w.stdout().contains("three"), "{}", w.stdout());
    w.kill();

    // All namespaces, with a label selector.
    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "cm", "-A", "-l", "watched=yes", "-w"]);
    k.ok(&["create", "configmap", "unlabelled", "-n", "w2"]);
    k.ok_stdin(
        &["create", "-n", "w2", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  labels: {watched: \"yes\"}\n",
    );
    let l = w.wait_line(T, "the labelled configmap", |l| l.contains("labelled"));
    assert_eq!(words(&l)[..2], ["w2", "labelled"]);
    // A label change that makes an object match shows it too.
    k.ok(&["label", "cm", "unlabelled", "-n", "w2", "watched=yes"]);
    w.wait_line(T, "the relabelled configmap", |l| {
        words(l).get(1) == Some(&"unlabelled")
    });
    w.kill();

    // Watching another kind across the cluster: namespaces appear.
    let mut w = srv.spawn_kubectl(Some("1.33"), &["get", "ns", "-w"]);
    w.wait_line(T, "default", |l| words(l).first() == Some(&"default"));
    k.ok(&["create", "namespace", "late"]);
    let l = w.wait_line(T, "the new namespace", |l| words(l).first() == Some(&"late"));
    assert_eq!(words(&l)[1], "Active");
    w.kill();
}

#[test]
fn raw_watch_from_resource_version() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "rw"]);
    // Every namespace gets the cluster CA ConfigMap, as on a real cluster; let it arrive first.
    wait_until(Duration::from_secs(30), "kube-root-ca.crt in rw", || {
        k.run(&["get", "cm", "kube-root-ca.crt", "-n", "rw"]).success()
    });
    k.ok(&["create", "configmap", "before", "-n", "rw"]);
    // (kubectl -o jsonpath wraps lists in a List without resourceVersion: read the raw list)
    let list: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1/namespaces/rw/configmaps"])).unwrap();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or("").to_string();
    assert!(rv.parse::<u64>().is_ok(), "list resourceVersion {rv:?}");
    k.ok(&["create", "configmap", "after1", "-n", "rw"]);
    k.ok(&["label", "configmap", "after1", "-n", "rw", "app=x"]);
    k.ok(&["create", "configmap", "after2", "-n", "rw"]);
    k.ok(&["delete", "configmap", "before", "-n", "rw"]);

    let events = |query: &str| -> Vec<(String, String, u64)> {
        let out = k.ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/rw/configmaps?watch=true&timeoutSeconds=1&{query}"),
        ]);
        serde_json::Deserializer::from_str(&out)
            .into_iter::<serde_json::Value>()
            .map(|e| {
                let e = e.unwrap_or_else(|err| panic!("bad watch stream ({err}):\n{out}"));
                (
                    e["type"].as_str().unwrap().to_string(),
                    e["object"]["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    e["object"]["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                )
            })
            .collect()
    };
    // From the list's resourceVersion: exactly the later changes, in order.
    let ev = events(&format!("resourceVersion={rv}"));
    let got: Vec<(&str, &str)> = ev.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect();
    assert_eq!(
        got,
        [
            ("ADDED", "after1"),
            ("MODIFIED", "after1"),
            ("ADDED", "after2"),
            ("DELETED", "before")
        ]
    );
    assert!(ev.windows(2).all(|w| w[0].2 < w[1].2), "resourceVersions grow: {ev:?}");
    assert!(ev[0].2 > rv.parse::<u64>().unwrap());
    // With a label selector.
    let ev = events(&format!("resourceVersion={rv}&labelSelector=app%3Dx"));
    let got: Vec<(&str, &str)> = ev.iter().map(|(t, n, _)| (t.as_str(), n.as_str())).collect();
    // An object that starts to match the selector arrives as ADDED, as from the upstream watch cache.
    assert_eq!(got, [("ADDED", "after1")]);
    // resourceVersion=0 (or unset): synthetic ADDED for what exists now.
    let ev = events("resourceVersion=0");
    let mut got: Vec<(String, String)> = ev.into_iter().map(|(t, n, _)| (t, n)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("ADDED".to_string(), "after1".to_string()),
            ("ADDED".into(), "after2".into()),
            ("ADDED".into(), "kube-root-ca.crt".into())
        ]
    );
    let ev = events("fieldSelector=metadata.name%3Dafter2");
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].0.as_str(), ev[0].1.as_str()), ("ADDED", "after2"));
    // Bookmarks are accepted as a parameter.
    let out = k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/rw/configmaps?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion={rv}"),
    ]);
    assert_contains(&out, "\"after2\"");
}
