//! Jobs through the real kubectl, as the seed walkthroughs drive them: completions and
//! parallelism (never more pods at once than parallelism, seen on a watch), backoffLimit,
//! activeDeadlineSeconds, editing parallelism of a running Job, restartPolicy Always refused,
//! a job pod on a dead node rerun elsewhere, and `kubectl logs job/NAME` on process nodes.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{assert_contains, describe_field, seed, wait_for, wait_until, Server, Table};

const T: Duration = Duration::from_secs(90);

/// One row of `kubectl get job NAME` as a map of columns.
fn job_row(s: &Server, ns: &str, name: &str) -> HashMap<String, String> {
    let out = s.k().run(&["get", "job", name, "-n", ns]);
    if !out.success() {
        return HashMap::new();
    }
    Table::parse(&out.stdout).row(name)
}

fn jp(s: &Server, ns: &str, obj: &str, path: &str) -> String {
    s.k()
        .run(&["get", obj, "-n", ns, "-o", &format!("jsonpath={path}")])
        .stdout
}

/// A Job manifest with a pod annotation for the simulated nodes.
fn job_yaml(name: &str, spec: &str, annotations: &str, restart: &str) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{spec}
  template:
    metadata:
      annotations: {{{annotations}}}
    spec:
      restartPolicy: {restart}
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo working; sleep 1"]
"#
    )
}

/// Most pods of a watch's output that were Pending or Running at the same time.
fn max_active(watch_out: &str) -> usize {
    let mut phase: HashMap<String, bool> = HashMap::new();
    let mut max = 0;
    for line in watch_out.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [name, ph, del] = cols[..] else { continue };
        if name == "sentinel" {
            continue;
        }
        let active = matches!(ph, "Pending" | "Running" | "<none>") && del == "<none>";
        phase.insert(name.to_string(), active);
        max = max.max(phase.values().filter(|a| **a).count());
    }
    max
}

#[test]
fn seed_jobs_on_simulated_nodes() {
    let s = Server::start_with(&[
        "--sim-nodes",
        "3",
        "--sim-job-seconds",
        "2",
        "--node-monitor-grace-period",
        "2",
        "--default-toleration-seconds",
        "2",
    ]);
    let k = s.k();
    k.ok(&["create", "namespace", "jobs"]);
    let ns = "jobs";

    // Seed: completions 5, parallelism 2 — two at a time, five Completed pods in the end.
    let name = "multi-completion-batch-job";
    // The watch prints nothing before its first pod: a sentinel pod with the seed's label
    // shows that the watch is established before the Job exists.
    k.ok(&["run", "sentinel", "-n", ns, "--image=busybox", "-l", "app=batch-job"]);
    let mut watch = s.spawn_kubectl(
        None,
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "app=batch-job",
            "-w",
            "-o",
            "custom-columns=NAME:.metadata.name,PHASE:.status.phase,DELETED:.metadata.deletionTimestamp",
        ],
    );
    watch.wait_line(T, "the sentinel on the watch", |l| l.starts_with("sentinel"));
    let out = k.ok(&[
        "apply",
        "-n",
        ns,
        "-f",
        seed("job-multi-completion-parallel.yaml").to_str().unwrap(),
    ]);
    assert_contains(&out, "job.batch/multi-completion-batch-job created");
    wait_until(T, "5/5 completions", || {
        job_row(&s, ns, name).get("COMPLETIONS").map(String::as_str) == Some("5/5")
    });
    let row = job_row(&s, ns, name);
    assert_eq!(row["STATUS"], "Complete", "{row:?}");
    assert!(row["DURATION"].ends_with('s'), "{row:?}");
    let t = Table::parse(&k.ok(&["get", "jobs", "-n", ns]));
    t.assert_headers(&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    wait_until(T, "the watch saw five pods succeed", || {
        watch.stdout().lines().filter(|l| l.contains(" Succeeded ")).count() >= 5
    });
    let seen = watch.stdout();
    watch.kill();
    assert_eq!(max_active(&seen), 2, "never more than parallelism 2 at once:\n{seen}");
    let pods = Table::parse(&k.ok(&["get", "pods", "-n", ns, "-l", &format!("job-name={name}")]));
    assert_eq!(pods.rows.len(), 5);
    assert!(pods.column("STATUS").iter().all(|st| st == "Completed"), "{pods:?}");
    assert!(pods
        .column("NAME")
        .iter()
        .all(|n| n.starts_with("multi-completion-batch-job-")));
    let d = k.ok(&["describe", "job", name, "-n", ns]);
    assert_eq!(
        describe_field(&d, "Pods Statuses").as_deref(),
        Some("0 Active (0 Ready) / 5 Succeeded / 0 Failed"),
        "{d}"
    );
    assert_eq!(describe_field(&d, "Completions").as_deref(), Some("5"), "{d}");
    assert_eq!(describe_field(&d, "Parallelism").as_deref(), Some("2"), "{d}");
    assert_contains(&d, "Created pod: multi-completion-batch-job-");
    assert_contains(&d, "Job completed");
    assert!(d.matches("SuccessfulCreate").count() == 5, "one event per pod:\n{d}");

    // Seed: restartPolicy Always is refused.
    let err = k.fails_stdin(&["apply", "-n", ns, "-f", "-"], &job_yaml("always", "", "", "Always"));
    assert_contains(
        &err,
        "The Job \"always\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
    );

    // Seed (myjob): backoffLimit 2 — three failed pods, then Failed.
    let failing = job_yaml("myjob", "  backoffLimit: 2", "skiff.dev/sim-exit-code: \"1\"", "Never");
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &failing);
    // activeDeadlineSeconds, and a running Job whose parallelism is edited, meanwhile.
    let slow = job_yaml(
        "deadline",
        "  activeDeadlineSeconds: 4",
        "skiff.dev/sim-duration: 120s",
        "Never",
    );
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &slow);
    let widen = job_yaml(
        "widen",
        "  completions: 6\n  parallelism: 1",
        "skiff.dev/sim-duration: 120s",
        "OnFailure",
    );
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &widen);

    let running = |job: &str| {
        let out = k.ok(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            &format!("job-name={job}"),
            "--no-headers",
        ]);
        out.lines().filter(|l| l.contains(" Running ")).count()
    };
    wait_until(T, "widen runs one pod", || running("widen") == 1);
    let editor = s.editor_script("widen.sh", "sed -i 's/parallelism: 1$/parallelism: 3/' \"$1\"");
    let out = k.editor(&editor).ok(&["edit", "job", "widen", "-n", ns]);
    assert_contains(&out, "job.batch/widen edited");
    wait_until(Duration::from_secs(20), "the edit takes effect at once", || {
        running("widen") == 3
    });
    assert_eq!(job_row(&s, ns, "widen")["STATUS"], "Running");
    assert_eq!(job_row(&s, ns, "widen")["COMPLETIONS"], "0/6");

    wait_until(T, "deadline fails", || {
        job_row(&s, ns, "deadline").get("STATUS").map(String::as_str) == Some("Failed")
    });
    let d = k.ok(&["describe", "job", "deadline", "-n", ns]);
    assert_contains(&d, "DeadlineExceeded");
    assert_contains(&d, "Job was active longer than specified deadline");
    wait_until(T, "the deadline job's pod stops", || running("deadline") == 0);

    wait_until(T, "myjob fails after three pods", || {
        job_row(&s, ns, "myjob").get("STATUS").map(String::as_str) == Some("Failed")
    });
    let pods = Table::parse(&k.ok(&["get", "pods", "-n", ns, "-l", "job-name=myjob"]));
    assert_eq!(pods.rows.len(), 3, "backoffLimit 2 means three runs:\n{pods:?}");
    assert!(pods.column("STATUS").iter().all(|st| st == "Error"), "{pods:?}");
    let d = k.ok(&["describe", "job", "myjob", "-n", ns]);
    assert_eq!(
        describe_field(&d, "Pods Statuses").as_deref(),
        Some("0 Active (0 Ready) / 0 Succeeded / 3 Failed"),
        "{d}"
    );
    assert_contains(&d, "BackoffLimitExceeded");
    assert_contains(&d, "Job has reached the specified backoff limit");
    assert_eq!(jp(&s, ns, "job/myjob", "{.status.failed}"), "3");

    // A job pod on a node that dies is rerun on another node; the Job counts the failure.
    let lost = job_yaml("lost", "", "skiff.dev/sim-duration: 6s", "Never");
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &lost);
    let (pod, node) = wait_for(T, "lost runs", || {
        let out = k.ok(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "job-name=lost",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
        ]);
        out.lines().find_map(|l| {
            let c: Vec<&str> = l.split(' ').collect();
            (c.len() == 3 && c[2] == "Running").then(|| (c[0].to_string(), c[1].to_string()))
        })
    });
    k.ok(&["annotate", "node", &node, "skiff.dev/sim-dead=true"]);
    let replacement = wait_for(T, "a replacement on another node", || {
        let out = k.ok(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "job-name=lost",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}",
        ]);
        out.lines().find_map(|l| {
            let c: Vec<&str> = l.split(' ').collect();
            (c.len() == 2 && c[0] != pod && !c[1].is_empty() && c[1] != node).then(|| c[1].to_string())
        })
    });
    assert_ne!(replacement, node);
    assert_eq!(jp(&s, ns, "job/lost", "{.status.failed}"), "1");
    // The dead node's pod stays Terminating until the node is gone, as on a real cluster.
    k.ok(&["delete", "node", &node]);
    wait_until(T, "lost completes", || {
        job_row(&s, ns, "lost").get("STATUS").map(String::as_str) == Some("Complete")
    });
    assert_eq!(job_row(&s, ns, "lost")["COMPLETIONS"], "1/1");
}

#[test]
fn job_logs_on_process_nodes() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    let job = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: hello
spec:
  completions: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo done"]
"#;
    k.ok_stdin(&["apply", "-f", "-"], job);
    wait_until(T, "hello completes", || {
        job_row(&s, "default", "hello").get("STATUS").map(String::as_str) == Some("Complete")
    });
    assert_eq!(job_row(&s, "default", "hello")["COMPLETIONS"], "2/2");
    let pods = Table::parse(&k.ok(&["get", "pods", "-l", "job-name=hello"]));
    assert_eq!(pods.rows.len(), 2);
    assert!(pods.column("STATUS").iter().all(|st| st == "Completed"), "{pods:?}");
    assert_eq!(k.ok(&["logs", "job/hello"]).trim(), "done");
    for p in pods.column("NAME") {
        assert_eq!(k.ok(&["logs", &p]).trim(), "done");
    }
    let d = k.ok(&["describe", "job", "hello"]);
    assert_eq!(
        describe_field(&d, "Pods Statuses").as_deref(),
        Some("0 Active (0 Ready) / 2 Succeeded / 0 Failed"),
        "{d}"
    );
    // A failing command: backoffLimit 0 fails the Job on the first failure.
    let bad = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: bad
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo failing; exit 3"]
"#;
    k.ok_stdin(&["apply", "-f", "-"], bad);
    wait_until(T, "bad fails", || {
        job_row(&s, "default", "bad").get("STATUS").map(String::as_str) == Some("Failed")
    });
    assert_eq!(k.ok(&["logs", "job/bad"]).trim(), "failing");
    assert_eq!(jp(&s, "default", "job/bad", "{.status.failed}"), "1");
}
