//! StatefulSets through the real kubectl, following the seed walkthroughs: ordered creation
//! observed on a watch, one claim per pod that survives scale-down until `delete pvc --all`,
//! reverse scale-down, hostname = pod name, and `rollout status|history|undo|restart`.

mod common;

use std::time::Duration;

use common::{assert_cells, assert_contains, seed, wait_until, Server, Table};

const T: Duration = Duration::from_secs(90);

/// Rows of a `get pods -w -o custom-columns=NAME,READY,DELETING` watch, in order.
fn watch_rows(out: &str) -> Vec<(String, String, String)> {
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn first(rows: &[(String, String, String)], what: &str, pred: impl Fn(&(String, String, String)) -> bool) -> usize {
    rows.iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no watch row for {what} in {rows:#?}"))
}

const WATCH_COLUMNS: &str = r#"custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,DELETING:.metadata.deletionTimestamp"#;

fn sts_ready(s: &Server, name: &str) -> String {
    let out = s.k().run(&["get", "sts", name]);
    if !out.success() {
        return String::new();
    }
    Table::parse(&out.stdout).row(name)["READY"].clone()
}

#[test]
fn statefulset_seed_walkthrough_on_simulated_nodes() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    wait_until(T, "three Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 3
    });

    // Ordered creation, seen on a watch: mysts-1 appears only after mysts-0 is Ready.
    // A marker pod makes the watch print at once, so it is known to run before the apply.
    k.ok(&["run", "marker", "--image=busybox", "--labels=run=nginx"]);
    let mut watch = s.spawn_kubectl(None, &["get", "pods", "-l", "run=nginx", "-w", "-o", WATCH_COLUMNS]);
    watch.wait_line(T, "the marker on the watch", |l| l.starts_with("marker "));
    k.ok(&["delete", "pod", "marker", "--wait=true"]);
    let out = k.ok(&[
        "apply",
        "-f",
        seed("statefulset-mysts-with-service.yaml").to_str().unwrap(),
    ]);
    assert_contains(&out, "statefulset.apps/mysts created");
    assert_contains(&out, "service/mysts created");
    wait_until(T, "mysts 3/3", || sts_ready(&s, "mysts") == "3/3");
    watch.wait_line(T, "mysts-2 ready on the watch", |l| {
        l.starts_with("mysts-2 ") && l.contains("True")
    });
    let rows = watch_rows(&watch.stdout());
    let ready = |n: &str| first(&rows, &format!("{n} ready"), |r| r.0 == n && r.1 == "True");
    let appears = |n: &str| first(&rows, &format!("{n} appears"), |r| r.0 == n);
    assert!(ready("mysts-0") < appears("mysts-1"), "{rows:#?}");
    assert!(ready("mysts-1") < appears("mysts-2"), "{rows:#?}");

    let pods = Table::parse(&k.ok(&["get", "pods", "-l", "run=nginx"]));
    assert_eq!(pods.column("NAME"), ["mysts-0", "mysts-1", "mysts-2"]);
    for name in ["mysts-0", "mysts-1", "mysts-2"] {
        assert_cells(&pods.row(name), &[("READY", "1/1"), ("STATUS", "Running")]);
    }
    let ident = k.ok(&[
        "get",
        "pod",
        "mysts-1",
        "-o",
        "jsonpath={.spec.hostname} {.spec.subdomain} {.metadata.labels.statefulset\\.kubernetes\\.io/pod-name}",
    ]);
    assert_eq!(ident, "mysts-1 mysts mysts-1");
    let pvcs = Table::parse(&k.ok(&["get", "pvc"]));
    assert_eq!(
        pvcs.column("NAME"),
        ["nginx-vol-mysts-0", "nginx-vol-mysts-1", "nginx-vol-mysts-2"]
    );
    wait_until(T, "claims bound", || {
        Table::parse(&k.ok(&["get", "pvc"]))
            .column("STATUS")
            .iter()
            .all(|s| s == "Bound")
    });
    let claim = k.ok(&[
        "get",
        "pod",
        "mysts-2",
        "-o",
        "jsonpath={.spec.volumes[0].persistentVolumeClaim.claimName}",
    ]);
    assert_eq!(claim, "nginx-vol-mysts-2");

    let get = Table::parse(&k.ok(&["get", "statefulset"]));
    get.assert_headers(&["NAME", "READY", "AGE"]);
    let d = k.ok(&["describe", "sts", "mysts"]);
    assert_contains(&d, "Replicas:           3 desired | 3 total");
    assert_contains(&d, "Pods Status:        3 Running / 0 Waiting / 0 Succeeded / 0 Failed");
    assert_contains(
        &d,
        "create Claim nginx-vol-mysts-0 Pod mysts-0 in StatefulSet mysts success",
    );
    assert_contains(&d, "create Pod mysts-0 in StatefulSet mysts successful");
    assert_contains(&d, "statefulset-controller");

    // Scale to 0: removed in reverse order; every claim stays.
    k.ok(&["scale", "sts", "mysts", "--replicas=0"]);
    wait_until(T, "no mysts pods", || {
        k.ok(&["get", "pods", "-l", "run=nginx", "-o", "name"])
            .trim()
            .is_empty()
    });
    let rows = watch_rows(&watch.stdout());
    let deleting = |n: &str| first(&rows, &format!("{n} deleting"), |r| r.0 == n && r.2 != "<none>");
    assert!(deleting("mysts-2") < deleting("mysts-1"), "{rows:#?}");
    assert!(deleting("mysts-1") < deleting("mysts-0"), "{rows:#?}");
    watch.kill();
    assert_eq!(Table::parse(&k.ok(&["get", "pvc"])).rows.len(), 3);
    wait_until(T, "mysts 0/0", || sts_ready(&s, "mysts") == "0/0");

    // Scaling up again reuses the same claims.
    k.ok(&["scale", "sts", "mysts", "--replicas=2"]);
    wait_until(T, "mysts 2/2", || sts_ready(&s, "mysts") == "2/2");
    assert_eq!(Table::parse(&k.ok(&["get", "pvc"])).rows.len(), 3);

    // Cleanup as the seed does it: the claims go only with `delete pvc --all`.
    k.ok(&["delete", "sts", "mysts"]);
    k.ok(&["delete", "svc", "mysts"]);
    wait_until(T, "pods gone with the set", || {
        k.ok(&["get", "pods", "-l", "run=nginx", "-o", "name"])
            .trim()
            .is_empty()
    });
    assert_eq!(Table::parse(&k.ok(&["get", "pvc"])).rows.len(), 3);
    k.ok(&["delete", "pvc", "--all"]);
    wait_until(T, "claims deleted", || {
        k.ok(&["get", "pvc", "-o", "name"]).trim().is_empty()
    });

    // Rolling update of the image, and the rollout commands.
    k.ok(&[
        "apply",
        "-f",
        seed("statefulset-nginx-statefulset.yaml").to_str().unwrap(),
    ]);
    wait_until(T, "nginx-statefulset 3/3", || {
        sts_ready(&s, "nginx-statefulset") == "3/3"
    });
    let status = k.ok(&["rollout", "status", "sts", "nginx-statefulset", "--timeout=60s"]);
    assert_contains(
        &status,
        "partitioned roll out complete: 3 new pods have been updated...",
    );
    let rev1 = k.ok(&[
        "get",
        "sts",
        "nginx-statefulset",
        "-o",
        "jsonpath={.status.updateRevision}",
    ]);
    let out = k.run(&["set", "image", "sts/nginx-statefulset", "nginx=nginx:1.25", "--record"]);
    assert!(out.success(), "{}", out.all());
    let status = k.ok(&["rollout", "status", "sts", "nginx-statefulset", "--timeout=60s"]);
    assert_contains(
        &status,
        "partitioned roll out complete: 3 new pods have been updated...",
    );
    let rev2 = k.ok(&[
        "get",
        "sts",
        "nginx-statefulset",
        "-o",
        "jsonpath={.status.updateRevision}",
    ]);
    assert_ne!(rev1, rev2);
    wait_until(T, "status current = update revision", || {
        k.ok(&[
            "get",
            "sts",
            "nginx-statefulset",
            "-o",
            "jsonpath={.status.currentRevision}",
        ]) == rev2
    });
    let images = k.ok(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.controller-revision-hash} {.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    assert_eq!(images.lines().count(), 3, "{images}");
    assert!(images.lines().all(|l| l == format!("{rev2} nginx:1.25")), "{images}");
    let revs = Table::parse(&k.ok(&["get", "controllerrevisions"]));
    revs.assert_headers(&["NAME", "CONTROLLER", "REVISION", "AGE"]);
    assert_cells(
        &revs.row(&rev2),
        &[("CONTROLLER", "statefulset.apps/nginx-statefulset"), ("REVISION", "2")],
    );

    let hist = k.ok(&["rollout", "history", "sts", "nginx-statefulset"]);
    assert_contains(&hist, "REVISION  CHANGE-CAUSE");
    assert_contains(&hist, "1         <none>");
    // kubectl records its whole command line, flags included.
    assert_contains(
        &hist,
        "2         kubectl set image sts/nginx-statefulset nginx=nginx:1.25 ",
    );
    assert_contains(&hist, "--record=true");
    let h2 = k.ok(&["rollout", "history", "sts", "nginx-statefulset", "--revision=2"]);
    assert_contains(&h2, "Image:\tnginx:1.25");

    let undo = k.ok(&["rollout", "undo", "sts", "nginx-statefulset"]);
    assert_contains(&undo, "statefulset.apps/nginx-statefulset rolled back");
    k.ok(&["rollout", "status", "sts", "nginx-statefulset", "--timeout=60s"]);
    wait_until(T, "back at the first revision", || {
        k.ok(&[
            "get",
            "sts",
            "nginx-statefulset",
            "-o",
            "jsonpath={.status.currentRevision}",
        ]) == rev1
    });
    let hist = k.ok(&["rollout", "history", "sts", "nginx-statefulset"]);
    let revisions: Vec<String> = Table::parse(&hist[hist.find("REVISION").unwrap()..]).column("REVISION");
    assert_eq!(revisions, ["2", "3"], "the first revision came back as 3\n{hist}");
    let skipped = k.ok(&["rollout", "undo", "sts", "nginx-statefulset", "--to-revision=3"]);
    assert_contains(
        &skipped,
        "skipped rollback (current template already matches revision 3)",
    );
    let back = k.ok(&["rollout", "undo", "sts", "nginx-statefulset", "--to-revision=2"]);
    assert_contains(&back, "rolled back");
    k.ok(&["rollout", "status", "sts", "nginx-statefulset", "--timeout=60s"]);
    wait_until(T, "at nginx:1.25 again", || {
        k.ok(&[
            "get",
            "sts",
            "nginx-statefulset",
            "-o",
            "jsonpath={.status.currentRevision}",
        ]) == rev2
    });
    let missing = k.fails(&["rollout", "undo", "sts", "nginx-statefulset", "--to-revision=9"]);
    assert_contains(&missing, "unable to find specified revision 9 in history");

    // restart: a new revision, rolled out to every pod.
    k.ok(&["rollout", "restart", "sts", "nginx-statefulset"]);
    k.ok(&["rollout", "status", "sts", "nginx-statefulset", "--timeout=60s"]);
    wait_until(T, "restart rolled out", || {
        let cur = k.ok(&[
            "get",
            "sts",
            "nginx-statefulset",
            "-o",
            "jsonpath={.status.currentRevision}",
        ]);
        cur != rev2 && cur != rev1 && !cur.is_empty()
    });
    let hist = k.ok(&["rollout", "history", "sts", "nginx-statefulset"]);
    assert_contains(&hist, "4         ");

    // persistentVolumeClaimRetentionPolicy: claims of removed pods and of a deleted set go
    // through the garbage collector.
    let retained = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: cache
spec:
  serviceName: cache
  replicas: 2
  persistentVolumeClaimRetentionPolicy:
    whenScaled: Delete
    whenDeleted: Delete
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
    spec:
      containers:
      - name: c
        image: redis
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;
    k.ok_stdin(&["apply", "-f", "-"], retained);
    wait_until(T, "cache 2/2", || sts_ready(&s, "cache") == "2/2");
    let claims = || {
        let out = k.ok(&["get", "pvc", "-l", "app=cache", "-o", "name"]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        claims(),
        [
            "persistentvolumeclaim/data-cache-0",
            "persistentvolumeclaim/data-cache-1"
        ]
    );
    k.ok(&["scale", "sts", "cache", "--replicas=1"]);
    wait_until(T, "the scaled-down pod's claim deleted", || {
        claims() == ["persistentvolumeclaim/data-cache-0"]
    });
    k.ok(&["delete", "sts", "cache"]);
    wait_until(T, "the deleted set's claims deleted", || claims().is_empty());

    // --cascade=orphan keeps the pods; the set created again adopts them and its revision.
    let uids = || {
        k.ok(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].metadata.uid}",
        ])
    };
    let before = uids();
    k.ok(&["delete", "sts", "nginx-statefulset", "--cascade=orphan"]);
    wait_until(T, "pods orphaned", || {
        k.ok(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences}",
        ])
        .trim()
        .is_empty()
    });
    assert_eq!(uids(), before);
    let orphaned = Table::parse(&k.ok(&["get", "controllerrevisions"]));
    assert!(
        orphaned.column("CONTROLLER").iter().any(|c| c == "<none>"),
        "{orphaned:?}"
    );
    k.ok(&[
        "apply",
        "-f",
        seed("statefulset-nginx-statefulset.yaml").to_str().unwrap(),
    ]);
    wait_until(T, "pods adopted", || {
        k.ok(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].kind}",
        ]) == "StatefulSet StatefulSet StatefulSet"
    });
    wait_until(T, "revisions adopted", || {
        Table::parse(&k.ok(&["get", "controllerrevisions"]))
            .column("CONTROLLER")
            .iter()
            .all(|c| c == "statefulset.apps/nginx-statefulset")
    });
}

#[test]
fn statefulset_pods_have_their_own_hostname_and_volume_on_process_nodes() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    wait_until(T, "two Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 2
    });
    let manifest = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo \"$(hostname)\" > /data/index.html; echo started $HOSTNAME; sleep 3600"]
        volumeMounts:
        - name: data
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    wait_until(T, "web 2/2", || sts_ready(&s, "web") == "2/2");
    for pod in ["web-0", "web-1"] {
        // With isolation (root) the UTS hostname is the pod name; without it the agent still
        // gives the container HOSTNAME.
        let host = if common::is_root() {
            k.ok(&["exec", pod, "--", "hostname"])
        } else {
            k.ok(&["exec", pod, "--", "sh", "-c", "echo $HOSTNAME"])
        };
        assert_eq!(host.trim(), pod);
        wait_until(T, "logs", || {
            k.run(&["logs", pod]).stdout.contains(&format!("started {pod}"))
        });
    }
    if !common::is_root() {
        // Without mount namespaces claims are not mounted at their paths.
        return;
    }
    // Each pod writes into its own claim.
    k.ok(&[
        "exec",
        "web-1",
        "--",
        "sh",
        "-c",
        "echo written-by-web-1 > /data/own.txt",
    ]);
    let own0 = k.run(&["exec", "web-0", "--", "cat", "/data/own.txt"]);
    assert!(!own0.success(), "web-0 sees web-1's file: {}", own0.all());
    let own1 = k.ok(&["exec", "web-1", "--", "cat", "/data/own.txt"]);
    assert_eq!(own1.trim(), "written-by-web-1");
    let pvcs = Table::parse(&k.ok(&["get", "pvc"]));
    assert_eq!(pvcs.column("NAME"), ["data-web-0", "data-web-1"]);

    // The claim outlives its pod: a recreated web-1 finds its data again.
    // kubectl's wait for the deletion can miss it when the StatefulSet recreates the same name
    // before the wait lists (it then waits for the new pod): wait on the uid instead.
    let old_uid = k.ok(&["get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}"]);
    k.ok(&["delete", "pod", "web-1", "--wait=false"]);
    wait_until(T, "web-1 back", || {
        let uid = k.run(&["get", "pod", "web-1", "-o", "jsonpath={.metadata.uid}"]).stdout;
        !uid.is_empty()
            && uid != old_uid
            && common::pod_cell(&s, "default", "web-1", "STATUS") == "Running"
            && sts_ready(&s, "web") == "2/2"
    });
    wait_until(T, "web-1 reads its old file", || {
        k.run(&["exec", "web-1", "--", "cat", "/data/own.txt"]).stdout.trim() == "written-by-web-1"
    });
}
