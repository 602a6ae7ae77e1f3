//! Deployments through the real kubectl, as the seed walkthrough (`mydeploy`) drives them:
//! `apply --record`, `get deploy|rs|pods`, `set image --record` with `rollout status`, the
//! stalled rollout to an image that does not exist (8 old pods serving, 5 new failing),
//! `rollout history|undo [--to-revision]|pause|resume|restart`, `scale`, `edit`, `describe`,
//! `create deployment`; and a small rollout on process nodes.

mod common;

use std::time::Duration;

use common::{assert_contains, describe_field, seed, wait_for, wait_until, Server, Table};

const T: Duration = Duration::from_secs(120);

/// `kubectl rollout status` until it reports success (it waits by itself; retried if the
/// watch is cut).
fn rollout_done(s: &Server, target: &str) {
    wait_until(T, &format!("{target} rolled out"), || {
        let out = s.k().run(&["rollout", "status", target, "--timeout=60s"]);
        out.success() && out.stdout.contains("successfully rolled out")
    });
}

/// (name, STATUS) of the pods matching `selector` that are not terminating.
fn pods(s: &Server, selector: &str) -> Vec<(String, String)> {
    let out = s.k().run(&["get", "pods", "-l", selector]);
    if !out.success() || out.stdout.trim().is_empty() {
        return Vec::new();
    }
    let t = Table::parse(&out.stdout);
    t.rows
        .iter()
        .map(|r| (r[t.col("NAME")].clone(), r[t.col("STATUS")].clone()))
        .filter(|(_, st)| st != "Terminating")
        .collect()
}

fn jsonpath(s: &Server, obj: &str, path: &str) -> String {
    s.k().run(&["get", obj, "-o", &format!("jsonpath={path}")]).stdout
}

/// The REVISION → CHANGE-CAUSE rows of `kubectl rollout history`.
fn history(s: &Server, target: &str) -> Vec<(String, String)> {
    let out = s.ok(&["rollout", "history", target]);
    let table = out
        .lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .collect::<Vec<_>>()
        .join("\n");
    let t = Table::parse(&table);
    t.assert_headers(&["REVISION", "CHANGE-CAUSE"]);
    // The harness passes --kubeconfig and --cache-dir, which --record stores too.
    let strip = |cause: &str| {
        cause
            .split(' ')
            .filter(|w| !w.starts_with("--kubeconfig=") && !w.starts_with("--cache-dir="))
            .collect::<Vec<_>>()
            .join(" ")
    };
    t.rows.iter().map(|r| (r[0].clone(), strip(&r[1]))).collect()
}

/// The ReplicaSet of `deploy` whose template has `image`.
fn rs_with_image(s: &Server, deploy: &str, image: &str) -> Option<String> {
    let out = jsonpath(
        s,
        "rs",
        "{range .items[*]}{.metadata.name} {.spec.template.spec.containers[0].image}{\"\\n\"}{end}",
    );
    out.lines().find_map(|l| {
        let (name, img) = l.split_once(' ')?;
        (name.starts_with(&format!("{deploy}-")) && img == image).then(|| name.to_string())
    })
}

#[test]
fn deployment_seed_walkthrough_rollout_history_undo_scale_edit() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    wait_until(T, "three Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 3
    });

    // kubectl apply --record -f mydeploy.yaml
    let out = k.run(&[
        "apply",
        "--record",
        "-f",
        seed("deployment-mydeploy.yaml").to_str().unwrap(),
    ]);
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stdout, "deployment.apps/mydeploy created");
    rollout_done(&s, "deployment/mydeploy");

    let t = Table::parse(&k.ok(&["get", "deployment"]));
    t.assert_headers(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    common::assert_cells(
        &t.row("mydeploy"),
        &[("READY", "10/10"), ("UP-TO-DATE", "10"), ("AVAILABLE", "10")],
    );
    let t = Table::parse(&k.ok(&["get", "rs"]));
    t.assert_headers(&["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_eq!(t.rows.len(), 1, "{t:?}");
    let rs1 = t.rows[0][0].clone();
    let hash = rs1
        .strip_prefix("mydeploy-")
        .expect("ReplicaSet named mydeploy-HASH")
        .to_string();
    assert!(
        hash.len() >= 8 && hash.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{hash}"
    );
    common::assert_cells(&t.row(&rs1), &[("DESIRED", "10"), ("CURRENT", "10"), ("READY", "10")]);
    let ps = pods(&s, "run=nginx");
    assert_eq!(ps.len(), 10);
    for (name, status) in &ps {
        let rand = name
            .strip_prefix(&format!("{rs1}-"))
            .unwrap_or_else(|| panic!("pod {name}"));
        assert_eq!((rand.len(), status.as_str()), (5, "Running"), "{name}");
    }

    // kubectl set image … --record: a rolling update to 1.9.1.
    let out = k.run(&[
        "set",
        "image",
        "deployment",
        "mydeploy",
        "nginx=nginx:1.9.1",
        "--record",
    ]);
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stdout, "deployment.apps/mydeploy image updated");
    rollout_done(&s, "deployment/mydeploy");
    let ps = pods(&s, "run=nginx");
    assert_eq!(ps.len(), 10);
    let pod_yaml = k.ok(&["get", "pod", &ps[0].0, "-o", "yaml"]);
    assert_contains(&pod_yaml, "image: nginx:1.9.1");

    // An image that does not exist: the rollout stalls with 8 old pods serving and 5 new
    // ones failing to pull (maxUnavailable 2 rounded down, maxSurge 3 rounded up).
    k.ok(&[
        "set",
        "image",
        "deployment",
        "mydeploy",
        "nginx=nginx:1.9.21",
        "--record",
    ]);
    let bad = wait_for(T, "5 pods failing to pull and 8 running", || {
        let ps = pods(&s, "run=nginx");
        let failing: Vec<String> = ps
            .iter()
            .filter(|(_, st)| st == "ErrImagePull" || st == "ImagePullBackOff")
            .map(|(n, _)| n.clone())
            .collect();
        let running = ps.iter().filter(|(_, st)| st == "Running").count();
        (failing.len() == 5 && running == 8 && ps.len() == 13).then_some(failing)
    });
    let t = Table::parse(&k.ok(&["get", "deployment", "mydeploy"]));
    common::assert_cells(
        &t.row("mydeploy"),
        &[("READY", "8/10"), ("UP-TO-DATE", "5"), ("AVAILABLE", "8")],
    );
    let new_rs = rs_with_image(&s, "mydeploy", "nginx:1.9.21").expect("new replica set");
    let old_rs = rs_with_image(&s, "mydeploy", "nginx:1.9.1").expect("old replica set");
    let t = Table::parse(&k.ok(&["get", "rs"]));
    common::assert_cells(&t.row(&new_rs), &[("DESIRED", "5"), ("CURRENT", "5"), ("READY", "0")]);
    common::assert_cells(&t.row(&old_rs), &[("DESIRED", "8"), ("CURRENT", "8"), ("READY", "8")]);
    let out = k.run(&["rollout", "status", "deployment/mydeploy", "--timeout=2s"]);
    assert!(!out.success());
    assert_contains(
        &out.stdout,
        "Waiting for deployment \"mydeploy\" rollout to finish: 5 out of 10 new replicas have been updated...",
    );
    wait_until(T, "pull failure events on a failing pod", || {
        let d = k.run(&["describe", "pod", &bad[0]]).stdout;
        d.contains("Failed to pull image \"nginx:1.9.21\"")
            && d.contains("failed to resolve reference \"docker.io/library/nginx:1.9.21\"")
            && d.contains("Error: ErrImagePull")
    });

    // kubectl rollout history shows the three revisions with what --record stored.
    let h = history(&s, "deployment/mydeploy");
    let revs: Vec<&str> = h.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(revs, ["1", "2", "3"]);
    assert!(h[0].1.starts_with("kubectl apply --record=true --filename="), "{h:?}");
    assert_eq!(
        h[1].1,
        "kubectl set image deployment mydeploy nginx=nginx:1.9.1 --record=true"
    );
    assert_eq!(
        h[2].1,
        "kubectl set image deployment mydeploy nginx=nginx:1.9.21 --record=true"
    );

    // kubectl rollout undo: back to 1.9.1 by reusing its ReplicaSet (revision 2 becomes 4).
    let out = k.ok(&["rollout", "undo", "deployment", "mydeploy"]);
    assert_contains(&out, "deployment.apps/mydeploy rolled back");
    rollout_done(&s, "deployment/mydeploy");
    let h = history(&s, "deployment/mydeploy");
    let revs: Vec<&str> = h.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(revs, ["1", "3", "4"]);
    assert_eq!(
        h[2].1,
        "kubectl set image deployment mydeploy nginx=nginx:1.9.1 --record=true"
    );
    assert_eq!(
        rs_with_image(&s, "mydeploy", "nginx:1.9.1").as_deref(),
        Some(old_rs.as_str()),
        "the old ReplicaSet is reused"
    );
    assert_eq!(
        jsonpath(
            &s,
            &format!("rs/{old_rs}"),
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision-history}"
        ),
        "2"
    );
    let dep_yaml = k.ok(&["get", "deployment", "mydeploy", "-o", "yaml"]);
    assert_contains(&dep_yaml, "image: nginx:1.9.1");
    assert_eq!(pods(&s, "run=nginx").len(), 10);

    // kubectl rollout undo --to-revision=1: back to 1.7.9, on the first ReplicaSet.
    let out = k.ok(&["rollout", "undo", "deployment", "mydeploy", "--to-revision=1"]);
    assert_contains(&out, "deployment.apps/mydeploy rolled back");
    rollout_done(&s, "deployment/mydeploy");
    assert_eq!(
        jsonpath(&s, "deployment/mydeploy", "{.spec.template.spec.containers[0].image}"),
        "nginx:1.7.9"
    );
    assert_eq!(
        rs_with_image(&s, "mydeploy", "nginx:1.7.9").as_deref(),
        Some(rs1.as_str())
    );
    let revs: Vec<String> = history(&s, "deployment/mydeploy").into_iter().map(|(r, _)| r).collect();
    assert_eq!(revs, ["3", "4", "5"]);
    let out = k.run(&["rollout", "undo", "deployment", "mydeploy", "--to-revision=9"]);
    assert!(!out.success());
    assert_contains(&out.stderr, "unable to find specified revision 9 in history");

    // kubectl scale to 5 and back to 10.
    assert_contains(
        &k.ok(&["scale", "deployment", "mydeploy", "--replicas=5"]),
        "deployment.apps/mydeploy scaled",
    );
    wait_until(T, "5 pods", || pods(&s, "run=nginx").len() == 5);
    k.ok(&["scale", "deployment", "mydeploy", "--replicas=10"]);
    wait_until(T, "10 running pods", || {
        let ps = pods(&s, "run=nginx");
        ps.len() == 10 && ps.iter().all(|(_, st)| st == "Running")
    });

    // kubectl edit: replicas 10 → 3.
    let editor = s.editor_script("edit-replicas.sh", r#"sed -i 's/^  replicas: 10$/  replicas: 3/' "$1""#);
    let out = k.editor(&editor).run(&["edit", "deploy", "mydeploy"]);
    assert!(out.success(), "{}", out.all());
    assert_contains(&out.stdout, "deployment.apps/mydeploy edited");
    wait_until(T, "3 pods after edit", || pods(&s, "run=nginx").len() == 3);
    rollout_done(&s, "deployment/mydeploy");

    // kubectl rollout pause / resume: no new ReplicaSet while paused.
    assert_contains(
        &k.ok(&["rollout", "pause", "deployment/mydeploy"]),
        "deployment.apps/mydeploy paused",
    );
    k.ok(&["set", "image", "deployment/mydeploy", "nginx=nginx:1.9.2"]);
    wait_until(T, "paused condition", || {
        jsonpath(
            &s,
            "deployment/mydeploy",
            "{.status.conditions[?(@.type==\"Progressing\")].reason}",
        ) == "DeploymentPaused"
            && jsonpath(&s, "deployment/mydeploy", "{.status.observedGeneration}")
                == jsonpath(&s, "deployment/mydeploy", "{.metadata.generation}")
    });
    assert_eq!(rs_with_image(&s, "mydeploy", "nginx:1.9.2"), None);
    let out = k.run(&["rollout", "undo", "deployment/mydeploy"]);
    assert!(!out.success());
    assert_contains(&out.stderr, "you cannot rollback a paused deployment");
    assert_contains(
        &k.ok(&["rollout", "resume", "deployment/mydeploy"]),
        "deployment.apps/mydeploy resumed",
    );
    rollout_done(&s, "deployment/mydeploy");
    assert!(rs_with_image(&s, "mydeploy", "nginx:1.9.2").is_some());

    // kubectl rollout restart: a new ReplicaSet with the restartedAt annotation.
    let before = jsonpath(
        &s,
        "deployment/mydeploy",
        "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    );
    assert_contains(
        &k.ok(&["rollout", "restart", "deployment/mydeploy"]),
        "deployment.apps/mydeploy restarted",
    );
    rollout_done(&s, "deployment/mydeploy");
    let after = jsonpath(
        &s,
        "deployment/mydeploy",
        "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
    );
    assert_eq!(after.parse::<i32>().unwrap(), before.parse::<i32>().unwrap() + 1);
    let ps = pods(&s, "run=nginx");
    assert_eq!(ps.len(), 3);
    let restarted = jsonpath(
        &s,
        &format!("pod/{}", ps[0].0),
        "{.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    );
    assert!(!restarted.is_empty(), "pods carry the restartedAt annotation");

    // kubectl describe deployment reads like a real cluster's.
    let d = k.ok(&["describe", "deployment", "mydeploy"]);
    assert_eq!(
        describe_field(&d, "Replicas").as_deref(),
        Some("3 desired | 3 updated | 3 total | 3 available | 0 unavailable")
    );
    assert_eq!(describe_field(&d, "StrategyType").as_deref(), Some("RollingUpdate"));
    assert_eq!(
        describe_field(&d, "RollingUpdateStrategy").as_deref(),
        Some("25% max unavailable, 25% max surge")
    );
    assert_contains(&d, "Available      True    MinimumReplicasAvailable");
    assert_contains(&d, "Progressing    True    NewReplicaSetAvailable");
    let new_rs = describe_field(&d, "NewReplicaSet").unwrap();
    assert!(
        new_rs.starts_with("mydeploy-") && new_rs.ends_with("(3/3 replicas created)"),
        "{new_rs}"
    );
    assert_contains(&d, "ScalingReplicaSet");
    assert_contains(&d, "deployment-controller");
    assert_contains(&d, "Scaled up replica set mydeploy-");

    // kubectl create deployment, as seed 003 does, then scale.
    assert_contains(
        &k.ok(&["create", "deployment", "kubia-deploy", "--image=luksa/kubia"]),
        "deployment.apps/kubia-deploy created",
    );
    rollout_done(&s, "deployment/kubia-deploy");
    common::assert_cells(
        &Table::parse(&k.ok(&["get", "deploy", "kubia-deploy"])).row("kubia-deploy"),
        &[("READY", "1/1"), ("UP-TO-DATE", "1"), ("AVAILABLE", "1")],
    );
    k.ok(&["scale", "deploy", "kubia-deploy", "--replicas=3"]);
    wait_until(T, "3 kubia pods", || {
        let ps = pods(&s, "app=kubia-deploy");
        ps.len() == 3
            && ps
                .iter()
                .all(|(n, st)| n.starts_with("kubia-deploy-") && st == "Running")
    });
    let out = k.ok(&["delete", "deployment", "--all"]);
    assert_contains(&out, "deployment.apps \"mydeploy\" deleted");
}

#[test]
fn deployment_rolls_out_on_process_nodes() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    wait_until(T, "two Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 2
    });
    let manifest = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo hi from $VERSION; sleep 3600"]
        env:
        - name: VERSION
          value: one
"#;
    k.ok_stdin(&["apply", "-f", "-"], manifest);
    rollout_done(&s, "deployment/hello");
    let ps = pods(&s, "app=hello");
    assert_eq!(ps.len(), 2);
    wait_until(T, "first version logs", || {
        k.run(&["logs", &ps[0].0]).stdout.contains("hi from one")
    });

    k.ok(&["set", "env", "deployment/hello", "VERSION=two"]);
    rollout_done(&s, "deployment/hello");
    wait_until(T, "two new pods with the second version", || {
        let ps = pods(&s, "app=hello");
        ps.len() == 2
            && ps
                .iter()
                .all(|(n, st)| st == "Running" && k.run(&["logs", n]).stdout.contains("hi from two"))
    });
    let revs: Vec<String> = history(&s, "deployment/hello").into_iter().map(|(r, _)| r).collect();
    assert_eq!(revs, ["1", "2"]);

    k.ok(&["rollout", "undo", "deployment/hello"]);
    rollout_done(&s, "deployment/hello");
    wait_until(T, "pods back on the first version", || {
        let ps = pods(&s, "app=hello");
        ps.len() == 2
            && ps
                .iter()
                .all(|(n, st)| st == "Running" && k.run(&["logs", n]).stdout.contains("hi from one"))
    });
    let t = Table::parse(&k.ok(&["get", "deploy", "hello"]));
    common::assert_cells(
        &t.row("hello"),
        &[("READY", "2/2"), ("UP-TO-DATE", "2"), ("AVAILABLE", "2")],
    );
}
