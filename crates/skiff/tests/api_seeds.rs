//! `kubectl apply -f` / `create -f` of every seed manifest (tests/seeds, taken from the study
//! notes), then get/describe of what they created, and re-apply after edits (three-way merge).
mod common;

use common::*;

/// What `kubectl apply -f FILE` prints for each seed, or the error a real 1.33 server gives.
enum Want {
    Created(&'static [&'static str]),
    /// stderr must contain this (`{file}` is replaced by the path given to kubectl).
    Refused(&'static str),
}

fn expectations() -> Vec<(&'static str, Want)> {
    use Want::*;
    vec![
        ("configmap-my-configmap.yaml", Created(&["configmap/my-configmap"])),
        (
            "cronjob-every-fifteen-minutes.yaml",
            Refused(
                "Error from server (BadRequest): error when creating \"{file}\": CronJob in version \"v1\" cannot be \
                 handled as a CronJob: strict decoding error: unknown field \"spec.startingDeadlineSenconds\"",
            ),
        ),
        ("cronjob-example-cronjob.yaml", Created(&["cronjob.batch/example-cronjob"])),
        ("cronjob-hello-batch-v1beta1.yaml", Refused("no matches for kind \"CronJob\" in version \"batch/v1beta1\"")),
        ("cronjob-hello.yaml", Created(&["cronjob.batch/hello"])),
        ("daemonset-fluentd.yaml", Created(&["daemonset.apps/fluentd"])),
        ("daemonset-nginx-daemonset.yaml", Created(&["daemonset.apps/nginx-daemonset"])),
        ("daemonset-ssd-monitor.yaml", Created(&["daemonset.apps/ssd-monitor"])),
        ("deployment-mydeploy.yaml", Created(&["deployment.apps/mydeploy"])),
        ("deployment-nginx-deployment.yaml", Created(&["deployment.apps/nginx-deployment"])),
        ("job-batch-job.yaml", Created(&["job.batch/batch-job"])),
        (
            "job-example-job.yaml",
            Refused(
                "Error from server (BadRequest): error when creating \"{file}\": Job in version \"v1\" cannot be handled \
                 as a Job: strict decoding error: unknown field \"spec.template.backoffLimit\"",
            ),
        ),
        ("job-multi-completion-parallel.yaml", Created(&["job.batch/multi-completion-batch-job"])),
        ("job-multi-completion.yaml", Created(&["job.batch/multi-completion-batch-job"])),
        ("job-myjob.yaml", Created(&["job.batch/myjob"])),
        ("job-pi.yaml", Created(&["job.batch/pi"])),
        ("pod-kubia-liveness.yaml", Created(&["pod/kubia-liveness"])),
        ("pod-nginx-labeled.yaml", Created(&["pod/nginx"])),
        ("pod-nginx.yaml", Created(&["pod/nginx"])),
        ("replicaset-kubia-matchexpressions.yaml", Created(&["replicaset.apps/kubia"])),
        ("replicaset-kubia.yaml", Created(&["replicaset.apps/kubia"])),
        ("replicaset-myreplicaset.yaml", Created(&["replicaset.apps/myreplicaset"])),
        ("replicaset-nginx-replicaset.yaml", Created(&["replicaset.apps/nginx-replicaset"])),
        ("replicationcontroller-kubia.yaml", Created(&["replicationcontroller/kubia"])),
        ("secret-mysecret.yaml", Created(&["secret/mysecret"])),
        ("service-ex-svc.yaml", Created(&["service/ex-svc"])),
        ("service-externalname.yaml", Created(&["service/my-external-service"])),
        ("service-my-service.yaml", Created(&["service/my-service"])),
        ("statefulset-mysts-with-service.yaml", Created(&["statefulset.apps/mysts", "service/mysts"])),
        ("statefulset-nginx-statefulset.yaml", Created(&["statefulset.apps/nginx-statefulset"])),
    ]
}

/// What kubectl prints when the same file is applied again. StatefulSets with
/// volumeClaimTemplates say "configured": the server defaults the claim templates
/// (`volumeMode`, `status.phase`), the list has no merge key, so kubectl's three-way diff sends it
/// again, as it does against a real cluster. The server must still store nothing new.
fn reapply_word(obj: &str) -> &'static str {
    if obj.starts_with("statefulset.apps/") {
        "configured"
    } else {
        "unchanged"
    }
}

fn stem(file: &str) -> &str {
    file.strip_suffix(".yaml").unwrap()
}

/// The namespace a seed file is applied to (object names repeat across the notes).
fn ns_for(file: &str) -> String {
    if file == "service-externalname.yaml" {
        // The manifest names `namespace: default` itself.
        "default".to_string()
    } else {
        format!("seed-{}", stem(file))
    }
}

#[test]
fn apply_every_seed_manifest_then_get_and_describe() {
    let srv = Server::start();
    let k = srv.k();

    // Every seed file is covered by an expectation, and the other way round.
    let files: Vec<String> = all_seeds()
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    let exp = expectations();
    let mut names: Vec<&str> = exp.iter().map(|(f, _)| *f).collect();
    names.sort();
    assert_eq!(files, names, "seed files and expectations differ");

    // All namespaces in one multi-document apply.
    let mut doc = String::new();
    for (f, _) in &exp {
        if ns_for(f) != "default" {
            doc.push_str(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n---\n",
                ns_for(f)
            ));
        }
    }
    let out = k.ok_stdin(&["apply", "-f", "-"], &doc);
    assert_eq!(lines(&out).len(), exp.len() - 1, "{out}");
    assert!(
        lines(&out)
            .iter()
            .all(|l| l.starts_with("namespace/seed-") && l.ends_with(" created")),
        "{out}"
    );

    // apply -f of every seed, then again (unchanged).
    for (f, want) in &exp {
        let path = seed(f);
        let p = path.to_str().unwrap();
        let ns = ns_for(f);
        let out = k.run(&["apply", "-f", p, "-n", &ns]);
        match want {
            Want::Created(objs) => {
                assert!(out.success(), "apply {f} failed:\n{out:?}");
                let want_lines: Vec<String> = objs.iter().map(|o| format!("{o} created")).collect();
                assert_eq!(lines(&out.stdout), want_lines, "apply {f}");
                let again = k.ok(&["apply", "-f", p, "-n", &ns]);
                let want_lines: Vec<String> = objs.iter().map(|o| format!("{o} {}", reapply_word(o))).collect();
                assert_eq!(lines(&again), want_lines, "re-apply {f}");
            }
            Want::Refused(msg) => {
                assert!(!out.success(), "apply {f} should be refused:\n{out:?}");
                assert_contains(&out.stderr, &msg.replace("{file}", p));
            }
        }
    }

    // The externalname manifest names namespace default: kubectl refuses another -n, as upstream.
    let p = seed("service-externalname.yaml");
    let err = k.fails(&["apply", "-f", p.to_str().unwrap(), "-n", "seed-service-my-service"]);
    assert_contains(
        &err,
        "the namespace from the provided object \"default\" does not match the namespace \"seed-service-my-service\". \
         You must pass '--namespace=default' to perform this operation.",
    );

    // The refused seeds: the batch/v1 form of the v1beta1 CronJob applies; the two with unknown
    // fields apply with --validate=false (the field is dropped) and warn with --validate=warn.
    let v1beta1 = std::fs::read_to_string(seed("cronjob-hello-batch-v1beta1.yaml")).unwrap();
    let v1 = v1beta1.replace("apiVersion: batch/v1beta1", "apiVersion: batch/v1");
    let out = k.ok_stdin(&["apply", "-f", "-", "-n", "seed-cronjob-hello-batch-v1beta1"], &v1);
    assert_eq!(lines(&out), ["cronjob.batch/hello created"]);

    let job = seed("job-example-job.yaml");
    let out = k.ok(&[
        "apply",
        "--validate=false",
        "-f",
        job.to_str().unwrap(),
        "-n",
        "seed-job-example-job",
    ]);
    assert_eq!(lines(&out), ["job.batch/example-job created"]);
    let bl = k.ok(&[
        "get",
        "job",
        "example-job",
        "-n",
        "seed-job-example-job",
        "-o",
        "jsonpath={.spec.backoffLimit}",
    ]);
    assert_eq!(bl, "6", "the misplaced backoffLimit is dropped and the default applies");
    k.ok(&["create", "namespace", "seed-warn"]);
    let out = k.run(&[
        "apply",
        "--validate=warn",
        "-f",
        job.to_str().unwrap(),
        "-n",
        "seed-warn",
    ]);
    assert!(out.success(), "{out:?}");
    assert_eq!(lines(&out.stdout), ["job.batch/example-job created"]);
    assert_contains(&out.stderr, "Warning: unknown field \"spec.template.backoffLimit\"");

    let cj = seed("cronjob-every-fifteen-minutes.yaml");
    let ns = "seed-cronjob-every-fifteen-minutes";
    let out = k.ok(&["apply", "--validate=false", "-f", cj.to_str().unwrap(), "-n", ns]);
    assert_eq!(lines(&out), ["cronjob.batch/batch-job-every-fifteen-minutes created"]);
    let sched = k.ok(&[
        "get",
        "cj",
        "batch-job-every-fifteen-minutes",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.schedule}",
    ]);
    assert_eq!(sched, "0,15,30,45 * * * *");

    check_tables(&srv);
    check_defaults(&srv);
    check_describe(&srv);
}

/// `kubectl get` tables for what the seeds created (no controllers run yet, so status is empty).
fn check_tables(srv: &Server) {
    let k = srv.k();
    let get = |args: &[&str]| Table::parse(&k.ok(args));

    let t = get(&["get", "pods", "-n", "seed-pod-nginx"]);
    t.assert_headers(&["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_cells(
        &t.row("nginx"),
        &[("READY", "0/1"), ("STATUS", "Pending"), ("RESTARTS", "0")],
    );
    let t = get(&["get", "pods", "-n", "seed-pod-nginx", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]);
    assert_cells(
        &t.row("nginx"),
        &[
            ("IP", "<none>"),
            ("NODE", "<none>"),
            ("NOMINATED NODE", "<none>"),
            ("READINESS GATES", "<none>"),
        ],
    );

    let t = get(&["get", "svc", "-n", "seed-service-my-service"]);
    t.assert_headers(&["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]);
    let r = t.row("my-service");
    assert_cells(
        &r,
        &[("TYPE", "ClusterIP"), ("EXTERNAL-IP", "<none>"), ("PORT(S)", "80/TCP")],
    );
    assert!(
        r["CLUSTER-IP"].parse::<std::net::Ipv4Addr>().is_ok(),
        "a cluster IP is allocated: {r:?}"
    );
    let t = get(&["get", "svc", "-n", "seed-service-my-service", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "AGE",
        "SELECTOR",
    ]);
    assert_cells(&t.row("my-service"), &[("SELECTOR", "app=myapp")]);
    let t = get(&["get", "svc", "-n", "seed-statefulset-mysts-with-service"]);
    assert_cells(
        &t.row("mysts"),
        &[("TYPE", "ClusterIP"), ("CLUSTER-IP", "None"), ("PORT(S)", "8080/TCP")],
    );
    let t = get(&["get", "svc", "my-external-service", "-n", "default"]);
    assert_cells(
        &t.row("my-external-service"),
        &[
            ("TYPE", "ExternalName"),
            ("CLUSTER-IP", "<none>"),
            ("EXTERNAL-IP", "external.example.com"),
            ("PORT(S)", "<none>"),
        ],
    );
    let t = get(&["get", "svc", "ex-svc", "-n", "seed-service-ex-svc"]);
    assert_cells(&t.row("ex-svc"), &[("TYPE", "ClusterIP"), ("PORT(S)", "8080/TCP")]);

    // The deployment controller creates a ReplicaSet whose 10 pods stay Pending (no nodes).
    wait_until(std::time::Duration::from_secs(30), "the deployment's pods", || {
        k.run(&[
            "get",
            "deploy",
            "mydeploy",
            "-n",
            "seed-deployment-mydeploy",
            "-o",
            "jsonpath={.status.updatedReplicas}",
        ])
        .stdout
            == "10"
    });
    let t = get(&["get", "deploy", "-n", "seed-deployment-mydeploy"]);
    t.assert_headers(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_cells(
        &t.row("mydeploy"),
        &[("READY", "0/10"), ("UP-TO-DATE", "10"), ("AVAILABLE", "0")],
    );
    let t = get(&["get", "deploy", "-n", "seed-deployment-mydeploy", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]);
    assert_cells(
        &t.row("mydeploy"),
        &[
            ("CONTAINERS", "nginx"),
            ("IMAGES", "nginx:1.7.9"),
            ("SELECTOR", "run=nginx"),
        ],
    );

    // The replication controller creates the pods (Pending: this cluster has no nodes).
    for (kind, ns, name, n) in [
        ("rs", "seed-replicaset-myreplicaset", "myreplicaset", "2"),
        ("rc", "seed-replicationcontroller-kubia", "kubia", "3"),
    ] {
        wait_until(std::time::Duration::from_secs(30), "the controller's pods", || {
            k.run(&["get", kind, name, "-n", ns, "-o", "jsonpath={.status.replicas}"])
                .stdout
                == n
        });
    }
    let t = get(&["get", "rs", "-n", "seed-replicaset-myreplicaset"]);
    t.assert_headers(&["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert_cells(
        &t.row("myreplicaset"),
        &[("DESIRED", "2"), ("CURRENT", "2"), ("READY", "0")],
    );
    let t = get(&[
        "get",
        "rs",
        "-n",
        "seed-replicaset-kubia-matchexpressions",
        "-o",
        "wide",
    ]);
    t.assert_headers(&[
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]);
    assert_cells(
        &t.row("kubia"),
        &[
            ("DESIRED", "3"),
            ("CONTAINERS", "kubia"),
            ("IMAGES", "luksa/kubia"),
            ("SELECTOR", "app in (kubia)"),
        ],
    );

    let t = get(&["get", "rc", "-n", "seed-replicationcontroller-kubia", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]);
    assert_cells(
        &t.row("kubia"),
        &[
            ("DESIRED", "3"),
            ("CURRENT", "3"),
            ("READY", "0"),
            ("IMAGES", "luksa/kubia"),
            ("SELECTOR", "app=kubia"),
        ],
    );

    let t = get(&["get", "sts", "-n", "seed-statefulset-mysts-with-service"]);
    t.assert_headers(&["NAME", "READY", "AGE"]);
    assert_cells(&t.row("mysts"), &[("READY", "0/3")]);
    let t = get(&["get", "sts", "-n", "seed-statefulset-nginx-statefulset", "-o", "wide"]);
    t.assert_headers(&["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]);
    assert_cells(
        &t.row("nginx-statefulset"),
        &[("READY", "0/3"), ("CONTAINERS", "nginx"), ("IMAGES", "nginx:latest")],
    );

    let t = get(&["get", "ds", "-n", "seed-daemonset-fluentd"]);
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
    assert_cells(
        &t.row("fluentd"),
        &[
            ("DESIRED", "0"),
            ("CURRENT", "0"),
            ("READY", "0"),
            ("UP-TO-DATE", "0"),
            ("AVAILABLE", "0"),
            ("NODE SELECTOR", "<none>"),
        ],
    );
    let t = get(&["get", "ds", "-n", "seed-daemonset-ssd-monitor", "-o", "wide"]);
    assert_cells(
        &t.row("ssd-monitor"),
        &[
            ("NODE SELECTOR", "disk=ssd"),
            ("IMAGES", "luksa/ssd-monito"),
            ("SELECTOR", "app=ssd-monitor"),
        ],
    );

    let t = get(&["get", "jobs", "-n", "seed-job-myjob"]);
    t.assert_headers(&["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]);
    // The Job controller started it (its pod waits for a node): DURATION counts from then.
    let r = t.row("myjob");
    assert_cells(&r, &[("STATUS", "Running"), ("COMPLETIONS", "0/1")]);
    assert!(r["DURATION"].ends_with('s'), "{r:?}");
    let t = get(&["get", "jobs", "-n", "seed-job-multi-completion-parallel", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "STATUS",
        "COMPLETIONS",
        "DURATION",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]);
    let r = t.row("multi-completion-batch-job");
    assert_cells(
        &r,
        &[
            ("COMPLETIONS", "0/5"),
            ("CONTAINERS", "main"),
            ("IMAGES", "luksa/batch-job"),
        ],
    );
    assert!(
        r["SELECTOR"].starts_with("batch.kubernetes.io/controller-uid="),
        "generated job selector: {r:?}"
    );

    let t = get(&["get", "cronjobs", "-n", "seed-cronjob-hello"]);
    t.assert_headers(&[
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
    ]);
    // A minute may have turned since the apply: then the CronJob has run once.
    let r = t.row("hello");
    let ran = r["LAST SCHEDULE"] != "<none>";
    assert_eq!(r["ACTIVE"], if ran { "1" } else { "0" }, "{r:?}");
    assert_cells(
        &r,
        &[
            ("SCHEDULE", "*/1 * * * *"),
            ("TIMEZONE", "<none>"),
            ("SUSPEND", "False"),
        ],
    );
    let t = get(&["get", "cj", "-n", "seed-cronjob-example-cronjob", "-o", "wide"]);
    t.assert_headers(&[
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST SCHEDULE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ]);
    assert_cells(
        &t.row("example-cronjob"),
        &[("CONTAINERS", "example"), ("IMAGES", "busybox"), ("SELECTOR", "<none>")],
    );

    let t = get(&["get", "cm", "my-configmap", "-n", "seed-configmap-my-configmap"]);
    t.assert_headers(&["NAME", "DATA", "AGE"]);
    assert_cells(&t.row("my-configmap"), &[("DATA", "2")]);
    let t = get(&["get", "secrets", "mysecret", "-n", "seed-secret-mysecret"]);
    t.assert_headers(&["NAME", "TYPE", "DATA", "AGE"]);
    assert_cells(&t.row("mysecret"), &[("TYPE", "Opaque"), ("DATA", "2")]);

    // Short names and singular names resolve.
    for (res, ns) in [
        ("po/nginx", "seed-pod-nginx"),
        ("pod/nginx", "seed-pod-nginx"),
        ("deployment/mydeploy", "seed-deployment-mydeploy"),
        ("deploy/mydeploy", "seed-deployment-mydeploy"),
        ("deployments.apps/mydeploy", "seed-deployment-mydeploy"),
        ("sts/mysts", "seed-statefulset-mysts-with-service"),
        ("ds/fluentd", "seed-daemonset-fluentd"),
        ("cj/hello", "seed-cronjob-hello"),
        ("job/pi", "seed-job-pi"),
        ("rc/kubia", "seed-replicationcontroller-kubia"),
        ("rs/myreplicaset", "seed-replicaset-myreplicaset"),
        ("cm/my-configmap", "seed-configmap-my-configmap"),
        ("svc/my-service", "seed-service-my-service"),
    ] {
        let out = k.ok(&["get", res, "-n", ns, "-o", "name"]);
        let name = res.split('/').nth(1).unwrap();
        assert!(out.trim().ends_with(&format!("/{name}")), "get {res}: {out}");
    }
}

/// Upstream defaulting as it shows in `-o json`.
fn check_defaults(srv: &Server) {
    let k = srv.k();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = k.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    };

    let d = json(&[
        "get",
        "deploy",
        "mydeploy",
        "-n",
        "seed-deployment-mydeploy",
        "-o",
        "json",
    ]);
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36), "{d}");
    assert!(
        d["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "{d}"
    );
    assert!(
        d["metadata"]["creationTimestamp"]
            .as_str()
            .is_some_and(|v| v.ends_with('Z')),
        "{d}"
    );
    let last = d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .unwrap();
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["spec"]["replicas"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    let c = &pod["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent", "tagged image");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");

    let rs = json(&[
        "get",
        "rs",
        "myreplicaset",
        "-n",
        "seed-replicaset-myreplicaset",
        "-o",
        "json",
    ]);
    assert_eq!(
        rs["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always",
        "untagged image"
    );

    let s = json(&[
        "get",
        "svc",
        "my-service",
        "-n",
        "seed-service-my-service",
        "-o",
        "json",
    ]);
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(s["spec"]["clusterIPs"][0], s["spec"]["clusterIP"]);
    assert_eq!(s["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 9376);

    let sts = json(&[
        "get",
        "sts",
        "mysts",
        "-n",
        "seed-statefulset-mysts-with-service",
        "-o",
        "json",
    ]);
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"], 0);

    let job = json(&["get", "job", "pi", "-n", "seed-job-pi", "-o", "json"]);
    assert_eq!(job["spec"]["backoffLimit"], 4);
    assert_eq!(job["spec"]["completions"], 1);
    assert_eq!(job["spec"]["parallelism"], 1);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    assert_eq!(job["spec"]["template"]["metadata"]["labels"]["job-name"], "pi");

    let cj = json(&["get", "cj", "hello", "-n", "seed-cronjob-hello", "-o", "json"]);
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);

    let sec = k.ok(&[
        "get",
        "secret",
        "mysecret",
        "-n",
        "seed-secret-mysecret",
        "-o",
        "jsonpath={.data.username}",
    ]);
    assert_eq!(sec, "YWRtaW4=");

    let ns = json(&["get", "ns", "seed-pod-nginx", "-o", "json"]);
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "seed-pod-nginx"
    );
}

/// `kubectl describe` of every kind the seeds create.
fn check_describe(srv: &Server) {
    let k = srv.k();
    let cases: &[(&str, &str, &str)] = &[
        ("pod", "nginx", "seed-pod-nginx"),
        ("pod", "kubia-liveness", "seed-pod-kubia-liveness"),
        ("service", "my-service", "seed-service-my-service"),
        ("deployment", "mydeploy", "seed-deployment-mydeploy"),
        ("replicaset", "myreplicaset", "seed-replicaset-myreplicaset"),
        ("replicationcontroller", "kubia", "seed-replicationcontroller-kubia"),
        ("statefulset", "mysts", "seed-statefulset-mysts-with-service"),
        ("daemonset", "fluentd", "seed-daemonset-fluentd"),
        ("job", "myjob", "seed-job-myjob"),
        ("cronjob", "hello", "seed-cronjob-hello"),
        ("configmap", "my-configmap", "seed-configmap-my-configmap"),
        ("secret", "mysecret", "seed-secret-mysecret"),
    ];
    for (kind, name, ns) in cases {
        let out = k.ok(&["describe", kind, name, "-n", ns]);
        assert_eq!(
            describe_field(&out, "Name").as_deref(),
            Some(*name),
            "describe {kind} {name}:\n{out}"
        );
        assert_eq!(
            describe_field(&out, "Namespace").as_deref(),
            Some(*ns),
            "describe {kind} {name}:\n{out}"
        );
        if *kind != "secret" {
            assert!(
                out.lines().any(|l| l.starts_with("Events:")),
                "describe {kind} shows events:\n{out}"
            );
        }
    }
    let out = k.ok(&["describe", "namespace", "seed-pod-nginx"]);
    assert_eq!(describe_field(&out, "Name").as_deref(), Some("seed-pod-nginx"));
    assert_eq!(describe_field(&out, "Status").as_deref(), Some("Active"));

    let d = k.ok(&["describe", "deploy", "mydeploy", "-n", "seed-deployment-mydeploy"]);
    assert_eq!(describe_field(&d, "Selector").as_deref(), Some("run=nginx"), "{d}");
    assert_eq!(
        describe_field(&d, "Replicas").as_deref(),
        Some("10 desired | 10 updated | 10 total | 0 available | 10 unavailable"),
        "{d}"
    );
    assert_eq!(
        describe_field(&d, "StrategyType").as_deref(),
        Some("RollingUpdate"),
        "{d}"
    );
    assert_eq!(
        describe_field(&d, "RollingUpdateStrategy").as_deref(),
        Some("25% max unavailable, 25% max surge")
    );
    assert_eq!(describe_field(&d, "Image").as_deref(), Some("nginx:1.7.9"));

    let p = k.ok(&["describe", "pod", "nginx", "-n", "seed-pod-nginx"]);
    assert_eq!(describe_field(&p, "Status").as_deref(), Some("Pending"), "{p}");
    assert_eq!(describe_field(&p, "Image").as_deref(), Some("nginx:1.7.9"), "{p}");
    assert_eq!(describe_field(&p, "Port").as_deref(), Some("8090/TCP"), "{p}");
    let p = k.ok(&["describe", "pod", "kubia-liveness", "-n", "seed-pod-kubia-liveness"]);
    assert_eq!(
        describe_field(&p, "Liveness").as_deref(),
        Some("http-get http://:8080/ delay=0s timeout=1s period=10s #success=1 #failure=3"),
        "probe defaults:\n{p}"
    );

    let s = k.ok(&["describe", "svc", "my-service", "-n", "seed-service-my-service"]);
    assert_eq!(describe_field(&s, "Type").as_deref(), Some("ClusterIP"), "{s}");
    assert_eq!(describe_field(&s, "Selector").as_deref(), Some("app=myapp"), "{s}");
    assert_eq!(describe_field(&s, "TargetPort").as_deref(), Some("9376/TCP"), "{s}");

    let c = k.ok(&["describe", "cm", "my-configmap", "-n", "seed-configmap-my-configmap"]);
    assert_contains(&c, "key1:\n----\nvalue1");
    let sec = k.ok(&["describe", "secret", "mysecret", "-n", "seed-secret-mysecret"]);
    assert_eq!(describe_field(&sec, "Type").as_deref(), Some("Opaque"), "{sec}");
    assert_eq!(describe_field(&sec, "username").as_deref(), Some("5 bytes"), "{sec}");
    assert_eq!(describe_field(&sec, "password").as_deref(), Some("8 bytes"), "{sec}");

    let j = k.ok(&[
        "describe",
        "job",
        "multi-completion-batch-job",
        "-n",
        "seed-job-multi-completion-parallel",
    ]);
    assert_eq!(describe_field(&j, "Parallelism").as_deref(), Some("2"), "{j}");
    assert_eq!(describe_field(&j, "Completions").as_deref(), Some("5"), "{j}");
    let cj = k.ok(&["describe", "cj", "hello", "-n", "seed-cronjob-hello"]);
    assert_eq!(describe_field(&cj, "Schedule").as_deref(), Some("*/1 * * * *"), "{cj}");
    let rc = k.ok(&["describe", "rc", "kubia", "-n", "seed-replicationcontroller-kubia"]);
    assert_eq!(
        describe_field(&rc, "Replicas").as_deref(),
        Some("3 current / 3 desired"),
        "{rc}"
    );
}

#[test]
fn create_f_of_seeds_and_duplicates() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "created"]);
    // Seeds whose object names do not collide, in one invocation.
    let files = [
        "pod-nginx.yaml",
        "service-my-service.yaml",
        "job-pi.yaml",
        "replicaset-myreplicaset.yaml",
        "deployment-mydeploy.yaml",
        "statefulset-mysts-with-service.yaml",
        "daemonset-fluentd.yaml",
        "cronjob-hello.yaml",
        "configmap-my-configmap.yaml",
        "secret-mysecret.yaml",
        "replicationcontroller-kubia.yaml",
    ];
    let mut args = vec!["create".to_string(), "-n".into(), "created".into()];
    for f in files {
        args.push("-f".into());
        args.push(seed(f).to_str().unwrap().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = k.ok(&args);
    assert_eq!(
        lines(&out),
        [
            "pod/nginx created",
            "service/my-service created",
            "job.batch/pi created",
            "replicaset.apps/myreplicaset created",
            "deployment.apps/mydeploy created",
            "statefulset.apps/mysts created",
            "service/mysts created",
            "daemonset.apps/fluentd created",
            "cronjob.batch/hello created",
            "configmap/my-configmap created",
            "secret/mysecret created",
            "replicationcontroller/kubia created",
        ]
    );
    // create -f sets no last-applied annotation.
    let ann = k.ok(&[
        "get",
        "deploy",
        "mydeploy",
        "-n",
        "created",
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(!ann.contains("last-applied-configuration"), "{ann}");

    // Again: every object already exists; kubectl reports each and exits 1.
    let out = k.run(&args);
    assert!(!out.success());
    let cm = seed("configmap-my-configmap.yaml");
    assert_contains(
        &out.stderr,
        &format!(
            "Error from server (AlreadyExists): error when creating \"{}\": configmaps \"my-configmap\" already exists",
            cm.display()
        ),
    );
    let dp = seed("deployment-mydeploy.yaml");
    assert_contains(
        &out.stderr,
        &format!(
            "Error from server (AlreadyExists): error when creating \"{}\": deployments.apps \"mydeploy\" already exists",
            dp.display()
        ),
    );
    assert_eq!(out.stderr.matches("(AlreadyExists)").count(), 12, "{}", out.stderr);

    // apply over an object made by create: kubectl warns about the missing annotation, patches.
    let out = k.run(&["apply", "-f", cm.to_str().unwrap(), "-n", "created"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(lines(&out.stdout), ["configmap/my-configmap configured"]);
    assert_contains(
        &out.stderr,
        "missing the kubectl.kubernetes.io/last-applied-configuration annotation",
    );
}

#[test]
fn reapply_after_edit_keeps_fields_set_by_others() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "ra"]);
    let get = |res: &str, path: &str| k.ok(&["get", res, "-n", "ra", "-o", &format!("jsonpath={path}")]);

    // 1. Labels and annotations set by others survive a re-apply of an edited file.
    let orig = std::fs::read_to_string(seed("deployment-mydeploy.yaml")).unwrap();
    let f = srv.write_file("mydeploy.yaml", &orig);
    let fp = f.to_str().unwrap();
    assert_eq!(
        lines(&k.ok(&["apply", "-f", fp, "-n", "ra"])),
        ["deployment.apps/mydeploy created"]
    );
    assert_eq!(
        lines(&k.ok(&["label", "deploy", "mydeploy", "team=blue", "-n", "ra"])),
        ["deployment.apps/mydeploy labeled"]
    );
    assert_eq!(
        lines(&k.ok(&["annotate", "deploy", "mydeploy", "owner=ops", "-n", "ra"])),
        ["deployment.apps/mydeploy annotated"]
    );
    let edited = orig.replace("image: nginx:1.7.9", "image: nginx:1.9.1").replace(
        "  name: mydeploy\n",
        "  name: mydeploy\n  labels:\n    tier: web\n    app: mydeploy\n",
    );
    srv.write_file("mydeploy.yaml", &edited);
    assert_eq!(
        lines(&k.ok(&["apply", "-f", fp, "-n", "ra"])),
        ["deployment.apps/mydeploy configured"]
    );
    assert_eq!(
        get("deploy/mydeploy", "{.spec.template.spec.containers[0].image}"),
        "nginx:1.9.1"
    );
    assert_eq!(get("deploy/mydeploy", "{.metadata.labels.team}"), "blue");
    assert_eq!(get("deploy/mydeploy", "{.metadata.labels.tier}"), "web");
    assert_eq!(get("deploy/mydeploy", "{.metadata.annotations.owner}"), "ops");
    assert_eq!(
        get("deploy/mydeploy", "{.metadata.generation}"),
        "2",
        "a template change bumps generation"
    );
    // A field removed from the file that was applied before is removed; others' fields stay.
    // (Removing the whole `labels` map from the file would delete every label, others' too, as
    // upstream kubectl does; so one applied label stays in the file.)
    srv.write_file("mydeploy.yaml", edited.replace("    tier: web\n", ""));
    assert_eq!(
        lines(&k.ok(&["apply", "-f", fp, "-n", "ra"])),
        ["deployment.apps/mydeploy configured"]
    );
    assert_eq!(
        get("deploy/mydeploy", "{.metadata.labels}"),
        r#"{"app":"mydeploy","team":"blue"}"#
    );
    assert_eq!(
        lines(&k.ok(&["apply", "-f", fp, "-n", "ra"])),
        ["deployment.apps/mydeploy unchanged"]
    );

    // 2. Scale, then apply a file without replicas: the scaled value stays.
    let no_replicas = std::fs::read_to_string(seed("deployment-nginx-deployment.yaml"))
        .unwrap()
        .replace("  replicas: 3                   # 유지할 파드 개수\n", "");
    assert!(!no_replicas.contains("replicas:"));
    let g = srv.write_file("nginx-deployment.yaml", &no_replicas);
    let gp = g.to_str().unwrap();
    k.ok(&["apply", "-f", gp, "-n", "ra"]);
    assert_eq!(get("deploy/nginx-deployment", "{.spec.replicas}"), "1", "defaulted");
    assert_eq!(
        lines(&k.ok(&["scale", "deploy", "nginx-deployment", "--replicas=4", "-n", "ra"])),
        ["deployment.apps/nginx-deployment scaled"]
    );
    srv.write_file(
        "nginx-deployment.yaml",
        no_replicas.replace("image: nginx:latest", "image: nginx:1.27"),
    );
    assert_eq!(
        lines(&k.ok(&["apply", "-f", gp, "-n", "ra"])),
        ["deployment.apps/nginx-deployment configured"]
    );
    assert_eq!(get("deploy/nginx-deployment", "{.spec.replicas}"), "4");
    assert_eq!(
        get("deploy/nginx-deployment", "{.spec.template.spec.containers[0].image}"),
        "nginx:1.27"
    );

    // 3. Lists merged by key: env set by `kubectl set env` survives; env removed from the file goes.
    let env_v1 = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: envy\nspec:\n  selector:\n    matchLabels:\n      app: envy\n  template:\n    metadata:\n      labels:\n        app: envy\n    spec:\n      containers:\n      - name: app\n        image: busybox\n        env:\n        - name: A\n          value: \"1\"\n        - name: B\n          value: \"2\"\n";
    let e = srv.write_file("envy.yaml", env_v1);
    let ep = e.to_str().unwrap();
    k.ok(&["apply", "-f", ep, "-n", "ra"]);
    assert_eq!(
        lines(&k.ok(&["set", "env", "deploy/envy", "C=3", "-n", "ra"])),
        ["deployment.apps/envy env updated"]
    );
    srv.write_file(
        "envy.yaml",
        env_v1.replace(
            "          value: \"1\"\n        - name: B\n          value: \"2\"\n",
            "          value: \"10\"\n",
        ),
    );
    k.ok(&["apply", "-f", ep, "-n", "ra"]);
    let env = get(
        "deploy/envy",
        "{range .spec.template.spec.containers[0].env[*]}{.name}={.value};{end}",
    );
    assert_eq!(env, "A=10;C=3;");

    // 4. Labels added by others to a pod do not make a re-apply change anything.
    let p = seed("pod-nginx-labeled.yaml");
    k.ok(&["apply", "-f", p.to_str().unwrap(), "-n", "ra"]);
    k.ok(&["label", "pod", "nginx", "extra=1", "-n", "ra"]);
    assert_eq!(
        lines(&k.ok(&["apply", "-f", p.to_str().unwrap(), "-n", "ra"])),
        ["pod/nginx unchanged"]
    );
    assert_eq!(get("pod/nginx", "{.metadata.labels.extra}"), "1");

    // 5. Multi-document re-apply. The StatefulSet's claim templates are sent again (see
    // reapply_word) but the patched object equals the stored one: no new generation, no write.
    let m = seed("statefulset-mysts-with-service.yaml");
    k.ok(&["apply", "-f", m.to_str().unwrap(), "-n", "ra"]);
    let before = get("sts/mysts", "{.metadata.generation}/{.metadata.resourceVersion}");
    assert_eq!(
        lines(&k.ok(&["apply", "-f", m.to_str().unwrap(), "-n", "ra"])),
        ["statefulset.apps/mysts configured", "service/mysts unchanged"]
    );
    assert_eq!(
        get("sts/mysts", "{.metadata.generation}/{.metadata.resourceVersion}"),
        before,
        "a patch that changes nothing after defaulting must not bump generation or resourceVersion"
    );

    // 6. Server-side apply.
    let c = seed("configmap-my-configmap.yaml");
    assert_eq!(
        lines(&k.ok(&["apply", "--server-side", "-f", c.to_str().unwrap(), "-n", "ra"])),
        ["configmap/my-configmap serverside-applied"]
    );
    let changed = std::fs::read_to_string(&c)
        .unwrap()
        .replace("key2: value2", "key2: value3");
    assert_eq!(
        lines(&k.ok_stdin(&["apply", "--server-side", "-f", "-", "-n", "ra"], &changed)),
        ["configmap/my-configmap serverside-applied"]
    );
    assert_eq!(get("cm/my-configmap", "{.data.key2}"), "value3");
}
