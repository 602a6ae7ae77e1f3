//! Scheduling and node lifecycle on simulated nodes, through the real kubectl: placement by
//! nodeSelector, the upstream FailedScheduling message, cordon/drain, and a dead node's pods
//! evicted after their toleration.

mod common;

use std::time::Duration;

use common::{wait_until, Server};

const T: Duration = Duration::from_secs(60);

fn pod_field(s: &Server, pod: &str, jsonpath: &str) -> String {
    s.k()
        .run(&["get", "pod", pod, "-o", &format!("jsonpath={jsonpath}")])
        .stdout
}

#[test]
fn scheduling_cordon_drain_and_dead_node_eviction() {
    let s = Server::start_with(&[
        "--sim-nodes",
        "3",
        "--sim-node-cpu",
        "8",
        "--node-monitor-grace-period",
        "2",
        "--default-toleration-seconds",
        "2",
    ]);
    let k = s.k();
    wait_until(T, "three Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 3
    });
    let cpu = k.ok(&["get", "node", "skiff-sim-1", "-o", "jsonpath={.status.capacity.cpu}"]);
    assert_eq!(cpu, "8");

    // A pod with a selector no node matches stays Pending with upstream's message, and is
    // scheduled once a node gets the label.
    k.ok(&[
        "run",
        "picky",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"nodeSelector":{"disk":"ssd"}}}"#,
    ]);
    wait_until(T, "FailedScheduling event", || {
        k.run(&["describe", "pod", "picky"])
            .stdout
            .contains("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
    });
    assert_eq!(pod_field(&s, "picky", "{.status.phase}"), "Pending");
    k.ok(&["label", "node", "skiff-sim-2", "disk=ssd"]);
    wait_until(T, "picky runs on skiff-sim-2", || {
        pod_field(&s, "picky", "{.spec.nodeName} {.status.phase}") == "skiff-sim-2 Running"
    });
    let wide = k.ok(&["get", "pod", "picky", "-o", "wide"]);
    assert!(
        wide.contains("1/1     Running") && wide.contains("skiff-sim-2"),
        "{wide}"
    );

    // Cordon shows SchedulingDisabled; drain evicts the node's pods.
    k.ok(&["cordon", "skiff-sim-2"]);
    assert!(k
        .ok(&["get", "node", "skiff-sim-2"])
        .contains("Ready,SchedulingDisabled"));
    let out = k.ok(&["drain", "skiff-sim-2", "--force", "--ignore-daemonsets"]);
    assert!(
        out.contains("pod/picky evicted") && out.contains("node/skiff-sim-2 drained"),
        "{out}"
    );
    k.ok(&["uncordon", "skiff-sim-2"]);

    // Killing a node: NotReady, tainted unreachable, its pod evicted after the toleration.
    k.ok(&[
        "run",
        "victim",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"nodeName":"skiff-sim-3"}}"#,
    ]);
    wait_until(T, "victim running", || {
        pod_field(&s, "victim", "{.status.phase}") == "Running"
    });
    k.ok(&["annotate", "node", "skiff-sim-3", "skiff.dev/sim-dead=true"]);
    wait_until(T, "node NotReady", || {
        k.run(&["get", "node", "skiff-sim-3"]).stdout.contains("NotReady")
    });
    let taints = k.ok(&["get", "node", "skiff-sim-3", "-o", "jsonpath={.spec.taints[*].key}"]);
    assert!(taints.contains("node.kubernetes.io/unreachable"), "{taints}");
    wait_until(T, "victim evicted", || {
        !pod_field(&s, "victim", "{.metadata.deletionTimestamp}").is_empty()
    });
    let events = k.ok(&["get", "events", "--field-selector", "involvedObject.name=victim"]);
    assert!(events.contains("TaintManagerEviction"), "{events}");
}
