//! DaemonSets through the real kubectl, following the seed walkthroughs: a pod on every node,
//! on labelled nodes only (and gone when the label goes), on a node that joins later, the
//! `get ds` columns, and `rollout status|history|undo`; one case on process nodes.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{assert_cells, assert_contains, seed, wait_until, Server, Table};

const T: Duration = Duration::from_secs(90);

fn ds_row(s: &Server, name: &str) -> std::collections::HashMap<String, String> {
    let out = s.k().run(&["get", "ds", name]);
    if !out.success() {
        return Default::default();
    }
    Table::parse(&out.stdout).row(name)
}

/// `DESIRED CURRENT READY UP-TO-DATE AVAILABLE` of a DaemonSet, all equal to `n`.
fn ds_at(s: &Server, name: &str, n: usize) -> bool {
    let r = ds_row(s, name);
    let n = n.to_string();
    ["DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"]
        .iter()
        .all(|c| r.get(*c) == Some(&n))
}

/// Nodes of the running pods with `label`, one entry per pod.
fn pod_nodes(s: &Server, label: &str) -> Vec<String> {
    let out = s.k().run(&[
        "get",
        "pods",
        "-l",
        label,
        "--field-selector=status.phase=Running",
        "--no-headers",
        "-o",
        "custom-columns=NODE:.spec.nodeName,DELETING:.metadata.deletionTimestamp",
    ]);
    let mut v: Vec<String> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(_, del)| del.trim() == "<none>")
        .map(|(n, _)| n.to_string())
        .collect();
    v.sort();
    v
}

/// Whether fluentd runs on all 3 nodes, every pod with image tag `tag`.
fn fluentd_everywhere_at(s: &Server, tag: &str) -> bool {
    if !ds_at(s, "fluentd", 3) {
        return false;
    }
    let images = s.k().ok(&[
        "get",
        "pods",
        "-l",
        "name=fluentd",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    let want = format!("quay.io/fluentd_elasticsearch/fluentd:{tag}");
    images.split_whitespace().all(|i| i == want)
}

#[test]
fn daemonset_seed_walkthrough_on_simulated_nodes() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    wait_until(T, "three Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 3
    });

    // fluentd: one pod on every node.
    let out = k.ok(&["apply", "-f", seed("daemonset-fluentd.yaml").to_str().unwrap()]);
    assert_contains(&out, "daemonset.apps/fluentd created");
    wait_until(T, "fluentd on 3 nodes", || ds_at(&s, "fluentd", 3));
    let t = Table::parse(&k.ok(&["get", "daemonset"]));
    t.assert_headers(&[
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]);
    assert_cells(&t.row("fluentd"), &[("NODE SELECTOR", "<none>")]);
    assert_eq!(
        pod_nodes(&s, "name=fluentd"),
        ["skiff-sim-1", "skiff-sim-2", "skiff-sim-3"]
    );
    let wide = Table::parse(&k.ok(&["get", "pods", "-l", "name=fluentd", "-o", "wide"]));
    assert!(
        wide.column("NAME").iter().all(|n| n.starts_with("fluentd-")),
        "{wide:?}"
    );
    let d = k.ok(&["describe", "ds", "fluentd"]);
    assert_contains(&d, "Desired Number of Nodes Scheduled: 3");
    assert_contains(&d, "Number of Nodes Scheduled with Up-to-date Pods: 3");
    assert_contains(&d, "Pods Status:  3 Running / 0 Waiting / 0 Succeeded / 0 Failed");
    assert_contains(&d, "daemonset-controller  Created pod: fluentd-");

    // ssd-monitor: no pod until a node carries disk=ssd; none again when the label goes.
    k.ok(&["apply", "-f", seed("daemonset-ssd-monitor.yaml").to_str().unwrap()]);
    wait_until(T, "ssd-monitor observed", || {
        ds_row(&s, "ssd-monitor").get("NODE SELECTOR").map(String::as_str) == Some("disk=ssd")
            && k.ok(&[
                "get",
                "ds",
                "ssd-monitor",
                "-o",
                "jsonpath={.status.observedGeneration}",
            ]) == "1"
    });
    assert!(ds_at(&s, "ssd-monitor", 0));
    assert!(pod_nodes(&s, "app=ssd-monitor").is_empty());
    k.ok(&["label", "node", "skiff-sim-2", "disk=ssd"]);
    wait_until(T, "ssd-monitor on skiff-sim-2", || {
        ds_at(&s, "ssd-monitor", 1) && pod_nodes(&s, "app=ssd-monitor") == ["skiff-sim-2"]
    });
    k.ok(&["label", "node", "skiff-sim-2", "disk-"]);
    wait_until(T, "ssd-monitor pod removed with the label", || {
        ds_at(&s, "ssd-monitor", 0)
            && k.ok(&["get", "pods", "-l", "app=ssd-monitor", "-o", "name"])
                .trim()
                .is_empty()
    });

    // A node joining later (a second agent with one simulated node) gets its pod.
    let token = std::fs::read_to_string(s.data_dir.join("pki/admin.token")).unwrap();
    let log = std::fs::File::create(s.dir().join("agent.log")).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args(["agent", "--server", &s.url(), "--token", token.trim(), "--name", "late"])
        .arg("--ca-file")
        .arg(s.data_dir.join("pki/ca.crt"))
        .arg("--data-dir")
        .arg(s.dir().join("agent"))
        .args([
            "--kubelet-port",
            &common::free_local_port().to_string(),
            "--sim-nodes",
            "1",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until(T, "late-sim-1 Ready", || {
        k.run(&["get", "node", "late-sim-1"]).stdout.contains(" Ready ")
    });
    wait_until(T, "fluentd on 4 nodes", || {
        ds_at(&s, "fluentd", 4) && pod_nodes(&s, "name=fluentd").contains(&"late-sim-1".to_string())
    });
    // The node goes away (its agent stops and the node is deleted): so does its pod.
    agent.kill().unwrap();
    agent.wait().unwrap();
    k.ok(&["delete", "node", "late-sim-1"]);
    wait_until(T, "fluentd back on 3 nodes", || {
        ds_at(&s, "fluentd", 3)
            && k.ok(&[
                "get",
                "pods",
                "-l",
                "name=fluentd",
                "-o",
                "jsonpath={.items[*].spec.nodeName}",
            ])
            .split_whitespace()
            .all(|n| n != "late-sim-1")
    });

    // Rollout: a new image rolls node by node; history, undo, --to-revision.
    let out = k.run(&[
        "set",
        "image",
        "ds/fluentd",
        "fluentd=quay.io/fluentd_elasticsearch/fluentd:v2.6.0",
        "--record",
    ]);
    assert!(out.success(), "{}", out.all());
    let status = k.ok(&["rollout", "status", "ds", "fluentd", "--timeout=60s"]);
    assert_contains(&status, "daemon set \"fluentd\" successfully rolled out");
    wait_until(T, "fluentd updated on 3 nodes", || ds_at(&s, "fluentd", 3));
    let images = k.ok(&[
        "get",
        "pods",
        "-l",
        "name=fluentd",
        "--no-headers",
        "-o",
        "custom-columns=IMAGE:.spec.containers[0].image,DELETING:.metadata.deletionTimestamp",
    ]);
    let images: BTreeSet<&str> = images
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .filter(|(_, del)| del.trim() == "<none>")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(images, BTreeSet::from(["quay.io/fluentd_elasticsearch/fluentd:v2.6.0"]));
    let hist = k.ok(&["rollout", "history", "ds", "fluentd"]);
    assert_contains(&hist, "REVISION  CHANGE-CAUSE");
    assert_contains(&hist, "1         <none>");
    assert_contains(&hist, "2         kubectl set image ds/fluentd ");
    let h2 = k.ok(&["rollout", "history", "ds", "fluentd", "--revision=2"]);
    assert_contains(&h2, "quay.io/fluentd_elasticsearch/fluentd:v2.6.0");
    let revs = Table::parse(&k.ok(&["get", "controllerrevisions", "-l", "name=fluentd"]));
    assert_eq!(revs.rows.len(), 2);
    assert!(revs.column("CONTROLLER").iter().all(|c| c == "daemonset.apps/fluentd"));

    assert_contains(
        &k.ok(&["rollout", "undo", "ds", "fluentd"]),
        "daemonset.apps/fluentd rolled back",
    );
    k.ok(&["rollout", "status", "ds", "fluentd", "--timeout=60s"]);
    wait_until(T, "fluentd back at v2.5.2", || fluentd_everywhere_at(&s, "v2.5.2"));
    let hist = k.ok(&["rollout", "history", "ds", "fluentd"]);
    let revisions = Table::parse(&hist[hist.find("REVISION").unwrap()..]).column("REVISION");
    assert_eq!(revisions, ["2", "3"], "{hist}");
    assert_contains(
        &k.ok(&["rollout", "undo", "ds", "fluentd", "--to-revision=3"]),
        "skipped rollback (current template already matches revision 3)",
    );
    assert_contains(
        &k.ok(&["rollout", "undo", "ds", "fluentd", "--to-revision=2"]),
        "rolled back",
    );
    k.ok(&["rollout", "status", "ds", "fluentd", "--timeout=60s"]);
    wait_until(T, "fluentd at v2.6.0 again", || fluentd_everywhere_at(&s, "v2.6.0"));

    // restart: every pod replaced under a new revision.
    let before = k.ok(&["get", "pods", "-l", "name=fluentd", "-o", "name"]);
    k.ok(&["rollout", "restart", "ds", "fluentd"]);
    assert_contains(
        &k.ok(&["rollout", "status", "ds", "fluentd", "--timeout=60s"]),
        "successfully rolled out",
    );
    wait_until(T, "every pod restarted", || {
        let now = k.ok(&["get", "pods", "-l", "name=fluentd", "-o", "name"]);
        ds_at(&s, "fluentd", 3) && now.lines().all(|p| !before.contains(p))
    });
    assert_contains(&k.ok(&["rollout", "history", "ds", "fluentd"]), "5         ");

    // Cleanup as the seed does it.
    k.ok(&["delete", "ds", "--all"]);
    wait_until(T, "daemon pods gone", || {
        k.ok(&["get", "pods", "-l", "name=fluentd", "-o", "name"])
            .trim()
            .is_empty()
    });
}

#[test]
fn daemonset_runs_one_process_per_node() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    wait_until(T, "two Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 2
    });
    let manifest = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
spec:
  selector:
    matchLabels:
      app: node-agent
  template:
    metadata:
      labels:
        app: node-agent
    spec:
      containers:
      - name: agent
        image: busybox
        command: ["sh", "-c", "echo collecting on $NODE_NAME; sleep 3600"]
        env:
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
"#;
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    wait_until(T, "node-agent on 2 nodes", || ds_at(&s, "node-agent", 2));
    assert_eq!(pod_nodes(&s, "app=node-agent"), ["skiff-node-1", "skiff-node-2"]);
    let pods = k.ok(&[
        "get",
        "pods",
        "-l",
        "app=node-agent",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}",
    ]);
    for line in pods.lines() {
        let (pod, node) = line.split_once(' ').unwrap();
        wait_until(T, "daemon logs", || {
            k.run(&["logs", pod]).stdout.contains(&format!("collecting on {node}"))
        });
    }
    // A deleted daemon pod comes back on the same node.
    let (victim, node) = pods.lines().next().unwrap().split_once(' ').unwrap();
    k.ok(&["delete", "pod", victim]);
    wait_until(T, "replacement on the same node", || {
        ds_at(&s, "node-agent", 2) && pod_nodes(&s, "app=node-agent").iter().filter(|n| *n == node).count() == 1
    });
    let status = k.ok(&["rollout", "status", "ds", "node-agent", "--timeout=60s"]);
    assert_contains(&status, "daemon set \"node-agent\" successfully rolled out");
}
