//! The ReplicaSet and ReplicationController walkthroughs of the seeds, through the real kubectl:
//! scale out, a deleted pod replaced, a relabelled pod released and replaced, template edits
//! reaching only new pods, and the same on process-runtime nodes.

mod common;

use std::time::Duration;

use common::{wait_until, Server};

const T: Duration = Duration::from_secs(60);

const MYREPLICASET: &str = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: myreplicaset
spec:
  replicas: 2
  selector:
    matchLabels:
      run: nginx-rs
  template:
    metadata:
      labels:
        run: nginx-rs
    spec:
      containers:
      - name: nginx
        image: nginx
";

const KUBIA_RC: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: kubia
spec:
  replicas: 3
  selector:
    app: kubia
  template:
    metadata:
      labels:
        app: kubia
    spec:
      containers:
      - name: kubia
        image: luksa/kubia
        ports:
        - containerPort: 8080
";

/// Names of the pods `kubectl get pods -l SELECTOR` lists, not terminating.
fn running_pods(s: &Server, selector: &str) -> Vec<String> {
    let out = s.k().run(&[
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={range .items[?(@.status.phase==\"Running\")]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.stdout
        .lines()
        .filter(|l| l.split_whitespace().count() == 1)
        .map(|l| l.trim().to_string())
        .collect()
}

fn rs_row(s: &Server, name: &str) -> Vec<String> {
    let out = s.k().run(&["get", "rs", name, "--no-headers"]).stdout;
    out.split_whitespace().map(String::from).collect()
}

#[test]
fn replicaset_scales_out_and_replaces_a_deleted_pod() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    k.ok_stdin(&["apply", "-f", "-"], MYREPLICASET);
    wait_until(T, "2 of 2 ready", || {
        rs_row(&s, "myreplicaset")[1..4] == ["2", "2", "2"]
    });
    let header = k.ok(&["get", "replicaset"]);
    assert!(
        header.starts_with("NAME           DESIRED   CURRENT   READY   AGE"),
        "{header}"
    );
    let pods = running_pods(&s, "run=nginx-rs");
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p.starts_with("myreplicaset-") && p.len() == "myreplicaset-".len() + 5));

    k.ok(&["scale", "rs", "--replicas", "4", "myreplicaset"]);
    wait_until(T, "4 of 4 ready", || {
        rs_row(&s, "myreplicaset")[1..4] == ["4", "4", "4"]
    });
    let before = running_pods(&s, "run=nginx-rs");
    assert_eq!(before.len(), 4, "{before:?}");

    // A deleted pod is replaced at once by a new one.
    let victim = before[0].clone();
    k.ok(&["delete", "pod", &victim]);
    wait_until(T, "a replacement pod", || {
        let now = running_pods(&s, "run=nginx-rs");
        now.len() == 4 && !now.contains(&victim)
    });
    let described = k.ok(&["describe", "rs", "myreplicaset"]);
    assert!(described.contains("Replicas:     4 current / 4 desired"), "{described}");
    assert!(
        described.contains("Pods Status:  4 Running / 0 Waiting / 0 Succeeded / 0 Failed"),
        "{described}"
    );
    // One SuccessfulCreate event per pod, each naming its pod, as upstream records them.
    let created = described.matches("SuccessfulCreate").count();
    assert_eq!(created, 5, "{described}");
    for p in running_pods(&s, "run=nginx-rs") {
        assert!(described.contains(&format!("Created pod: {p}")), "{p} in {described}");
    }

    k.ok(&["delete", "rs", "--all"]);
    wait_until(T, "the ReplicaSet's pods gone", || {
        k.run(&["get", "pods", "-l", "run=nginx-rs", "-o", "name"])
            .stdout
            .is_empty()
    });
}

#[test]
fn replication_controller_releases_a_relabelled_pod_and_edits_reach_new_pods() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    k.ok_stdin(&["apply", "-f", "-"], KUBIA_RC);
    wait_until(T, "3 kubia pods", || running_pods(&s, "app=kubia").len() == 3);
    let rc = k.ok(&["get", "rc", "kubia"]);
    assert!(rc.contains("kubia   3         3         3"), "{rc}");

    let released = running_pods(&s, "app=kubia")[0].clone();
    assert_eq!(
        k.ok(&["label", "pod", &released, "app=foo", "--overwrite"]).trim(),
        format!("pod/{released} labeled")
    );
    wait_until(T, "a replacement for the relabelled pod", || {
        running_pods(&s, "app=kubia").len() == 3
    });
    let listed = k.ok(&["get", "pods", "-L", "app"]);
    assert_eq!(listed.lines().count(), 5, "{listed}");
    let foo_line = listed.lines().find(|l| l.starts_with(&released)).unwrap_or_default();
    assert!(foo_line.trim_end().ends_with("foo"), "{listed}");
    // The released pod has no owner any more: it is an ordinary pod.
    let owners = k.ok(&["get", "pod", &released, "-o", "jsonpath={.metadata.ownerReferences}"]);
    assert_eq!(owners, "");

    // A template edit reaches only pods created after it.
    k.ok(&["set", "image", "rc/kubia", "kubia=luksa/kubia:v2"]);
    let old = running_pods(&s, "app=kubia");
    let image = |p: &str| k.ok(&["get", "pod", p, "-o", "jsonpath={.spec.containers[0].image}"]);
    assert!(old.iter().all(|p| image(p) == "luksa/kubia"));
    k.ok(&["delete", "pod", &old[0]]);
    wait_until(T, "a replacement with the new image", || {
        running_pods(&s, "app=kubia")
            .iter()
            .any(|p| !old.contains(p) && image(p) == "luksa/kubia:v2")
    });
}

#[test]
fn replicaset_on_process_nodes_runs_real_containers() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    let rs = "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: sleepers
spec:
  replicas: 3
  selector:
    matchLabels:
      app: sleepers
  template:
    metadata:
      labels:
        app: sleepers
    spec:
      containers:
      - name: c
        image: busybox
        command: [\"sh\", \"-c\", \"echo started $HOSTNAME; sleep 3600\"]
";
    k.ok_stdin(&["apply", "-f", "-"], rs);
    wait_until(T, "3 of 3 ready", || rs_row(&s, "sleepers")[1..4] == ["3", "3", "3"]);
    let pods = running_pods(&s, "app=sleepers");
    for p in &pods {
        wait_until(T, "the container's output", || {
            k.run(&["logs", p]).stdout.trim() == format!("started {p}")
        });
    }
    k.ok(&["scale", "rs", "sleepers", "--replicas=1"]);
    wait_until(T, "scaled down to 1", || {
        k.run(&["get", "pods", "-l", "app=sleepers", "-o", "name"])
            .stdout
            .lines()
            .count()
            == 1
    });
}
