//! CronJobs through the real kubectl, as the seed walkthroughs drive them: `*/1 * * * *`
//! creates a Job named `NAME-<minutes since epoch>` within 70 s, the Job runs to completion,
//! the CronJob's status and events follow, `kubectl create job --from=cronjob/NAME` works, and
//! history limits delete the oldest finished Jobs.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{assert_contains, seed, wait_for, wait_until, Server, Table};

const T: Duration = Duration::from_secs(90);

fn row(s: &Server, kind: &str, ns: &str, name: &str) -> HashMap<String, String> {
    let out = s.k().run(&["get", kind, name, "-n", ns]);
    if !out.success() {
        return HashMap::new();
    }
    Table::parse(&out.stdout).row(name)
}

/// Names of the Jobs in `ns`.
fn jobs(s: &Server, ns: &str) -> Vec<String> {
    let out = s
        .k()
        .ok(&["get", "jobs", "-n", ns, "-o", "jsonpath={.items[*].metadata.name}"]);
    out.split_whitespace().map(str::to_string).collect()
}

fn jp(s: &Server, ns: &str, obj: &str, path: &str) -> String {
    s.k()
        .run(&["get", obj, "-n", ns, "-o", &format!("jsonpath={path}")])
        .stdout
}

#[test]
fn seed_cronjob_every_minute() {
    let s = Server::start_with(&["--sim-nodes", "3", "--sim-job-seconds", "2"]);
    let k = s.k();
    k.ok(&["create", "namespace", "cron"]);
    let ns = "cron";

    // Schedules with a time zone prefix are refused; the timeZone field is the way.
    let tz_prefixed = r#"apiVersion: batch/v1
kind: CronJob
metadata: {name: tz}
spec:
  schedule: "TZ=UTC */1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox}]
"#;
    let err = k.fails_stdin(&["apply", "-n", ns, "-f", "-"], tz_prefixed);
    assert_contains(&err, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
    let zoned = tz_prefixed
        .replace("name: tz}", "name: seoul}")
        .replace("\"TZ=UTC */1 * * * *\"", "\"0 9 * * MON-FRI\"\n  timeZone: Asia/Seoul");
    k.ok_stdin(&["apply", "-n", ns, "-f", "-"], &zoned);
    let r = row(&s, "cronjob", ns, "seoul");
    assert_eq!(
        (r["SCHEDULE"].as_str(), r["TIMEZONE"].as_str()),
        ("0 9 * * MON-FRI", "Asia/Seoul")
    );

    // Seed: hello, every minute.
    let out = k.ok(&["apply", "-n", ns, "-f", seed("cronjob-hello.yaml").to_str().unwrap()]);
    assert_contains(&out, "cronjob.batch/hello created");
    let t = Table::parse(&k.ok(&["get", "cronjobs", "-n", ns]));
    t.assert_headers(&[
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]);
    let r = t.row("hello");
    assert_eq!(
        (
            r["SCHEDULE"].as_str(),
            r["SUSPEND"].as_str(),
            r["LAST SCHEDULE"].as_str()
        ),
        ("*/1 * * * *", "False", "<none>")
    );
    let first = wait_for(Duration::from_secs(70), "hello's first Job", || {
        jobs(&s, ns).into_iter().find(|j| j.starts_with("hello-"))
    });
    let minutes: i64 = first.strip_prefix("hello-").unwrap().parse().expect("NAME-<minutes>");
    let scheduled = jp(
        &s,
        ns,
        &format!("job/{first}"),
        "{.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}",
    );
    let want = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", minutes * 60), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(
        scheduled,
        String::from_utf8_lossy(&want.stdout).trim(),
        "the name is the scheduled minute"
    );
    assert_eq!(
        jp(&s, ns, &format!("job/{first}"), "{.metadata.ownerReferences[0].kind}"),
        "CronJob"
    );
    assert_ne!(row(&s, "cronjob", ns, "hello")["LAST SCHEDULE"], "<none>");

    // The Job runs to completion; the CronJob notices.
    wait_until(T, "the first Job completes", || {
        row(&s, "job", ns, &first).get("STATUS").map(String::as_str) == Some("Complete")
    });
    wait_until(T, "hello has no active Job", || {
        row(&s, "cronjob", ns, "hello").get("ACTIVE").map(String::as_str) == Some("0")
            && !jp(&s, ns, "cronjob/hello", "{.status.lastSuccessfulTime}").is_empty()
    });
    let pods = Table::parse(&k.ok(&["get", "pods", "-n", ns, "-l", &format!("job-name={first}")]));
    assert_eq!(pods.column("STATUS"), ["Completed"]);
    let d = k.ok(&["describe", "cronjob", "hello", "-n", ns]);
    assert_contains(&d, &format!("Created job {first}"));
    assert_contains(&d, &format!("Saw completed job: {first}, status: Complete"));

    // A Job made by hand from the CronJob.
    let out = k.ok(&["create", "job", "manual", "-n", ns, "--from=cronjob/hello"]);
    assert_contains(&out, "job.batch/manual created");
    assert_eq!(
        jp(
            &s,
            ns,
            "job/manual",
            "{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"
        ),
        "manual"
    );
    wait_until(T, "manual completes", || {
        row(&s, "job", ns, "manual").get("STATUS").map(String::as_str) == Some("Complete")
    });

    // History limit 1 keeps the newest successful Job only.
    k.ok(&[
        "patch",
        "cronjob",
        "hello",
        "-n",
        ns,
        "-p",
        r#"{"spec":{"successfulJobsHistoryLimit":1}}"#,
    ]);
    // (A later scheduled Job may be running meanwhile; only finished ones are limited.)
    wait_until(T, "the older Jobs are deleted", || {
        let t = Table::parse(&k.ok(&["get", "jobs", "-n", ns]));
        let complete = t.column("STATUS").iter().filter(|st| *st == "Complete").count();
        complete == 1 && !t.column("NAME").contains(&first)
    });
    let d = k.ok(&["describe", "cronjob", "hello", "-n", ns]);
    assert_contains(&d, &format!("Deleted job {first}"));

    // Suspend stops new Jobs.
    k.ok(&[
        "patch",
        "cronjob",
        "hello",
        "-n",
        ns,
        "-p",
        r#"{"spec":{"suspend":true}}"#,
    ]);
    assert_eq!(row(&s, "cronjob", ns, "hello")["SUSPEND"], "True");
}

#[test]
fn cronjob_runs_processes_and_keeps_logs() {
    let s = Server::start_with(&["--nodes", "2"]);
    let k = s.k();
    // The seed's hello CronJob, with `command` (process nodes run commands, not images).
    let hello = r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "*/1 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox
            command: ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]
"#;
    k.ok_stdin(&["apply", "-f", "-"], hello);
    // A run by hand does not wait for the schedule.
    k.ok(&["create", "job", "now", "--from=cronjob/hello"]);
    wait_until(T, "the manual run completes", || {
        row(&s, "job", "default", "now").get("STATUS").map(String::as_str) == Some("Complete")
    });
    assert!(k
        .ok(&["logs", "job/now"])
        .ends_with("Hello from the Kubernetes cluster\n"));
    // The scheduled run.
    let scheduled = wait_for(Duration::from_secs(70), "the scheduled Job", || {
        jobs(&s, "default").into_iter().find(|j| j.starts_with("hello-"))
    });
    wait_until(T, "the scheduled run completes", || {
        row(&s, "job", "default", &scheduled).get("STATUS").map(String::as_str) == Some("Complete")
    });
    let logs = k.ok(&["logs", &format!("job/{scheduled}")]);
    assert!(logs.ends_with("Hello from the Kubernetes cluster\n"), "{logs}");
    let pods = Table::parse(&k.ok(&["get", "pods", "-l", &format!("job-name={scheduled}")]));
    assert_eq!(pods.column("STATUS"), ["Completed"]);
}
