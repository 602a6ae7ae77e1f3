//! Imperative kubectl: create generators, run, expose, label/annotate, scale, set image, edit
//! (EDITOR script), patch, replace and delete in all its forms.
mod common;

use common::*;

#[test]
fn create_generators_and_run() {
    let srv = Server::start();
    let k = srv.k();
    assert_eq!(lines(&k.ok(&["create", "namespace", "gen"])), ["namespace/gen created"]);
    assert_eq!(k.ok(&["get", "ns", "gen", "-o", "jsonpath={.status.phase}"]), "Active");
    let n = "gen";
    let jp = |res: &str, path: &str| k.ok(&["get", res, "-n", n, "-o", &format!("jsonpath={path}")]);

    // configmaps
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "configmap",
            "lit",
            "-n",
            n,
            "--from-literal=a=1",
            "--from-literal=greeting=hello world"
        ])),
        ["configmap/lit created"]
    );
    assert_eq!(jp("cm/lit", "{.data.a}"), "1");
    assert_eq!(jp("cm/lit", "{.data.greeting}"), "hello world");
    let props = srv.write_file("app.properties", "x=1\ny=2\n");
    let dir = srv.dir().join("confdir");
    srv.write_file("confdir/one.conf", "first\n");
    srv.write_file("confdir/two.conf", "second\n");
    let envf = srv.write_file("app.env", "# a comment\nA=1\nB=two words\n\nC=\n");
    k.ok(&[
        "create",
        "configmap",
        "files",
        "-n",
        n,
        &format!("--from-file={}", props.display()),
    ]);
    assert_eq!(jp("cm/files", "{.data.app\\.properties}"), "x=1\ny=2\n");
    k.ok(&[
        "create",
        "configmap",
        "keyed",
        "-n",
        n,
        &format!("--from-file=conf={}", props.display()),
    ]);
    assert_eq!(jp("cm/keyed", "{.data.conf}"), "x=1\ny=2\n");
    k.ok(&[
        "create",
        "configmap",
        "dir",
        "-n",
        n,
        &format!("--from-file={}", dir.display()),
    ]);
    assert_eq!(jp("cm/dir", "{.data.one\\.conf}"), "first\n");
    assert_eq!(jp("cm/dir", "{.data.two\\.conf}"), "second\n");
    k.ok(&[
        "create",
        "configmap",
        "envs",
        "-n",
        n,
        &format!("--from-env-file={}", envf.display()),
    ]);
    let data: serde_json::Value = serde_json::from_str(&jp("cm/envs", "{.data}")).unwrap();
    assert_eq!(data, serde_json::json!({"A": "1", "B": "two words", "C": ""}));
    let t = Table::parse(&k.ok(&["get", "cm", "-n", n]));
    assert_cells(&t.row("lit"), &[("DATA", "2")]);
    assert_cells(&t.row("envs"), &[("DATA", "3")]);

    // secrets
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "secret",
            "generic",
            "s1",
            "-n",
            n,
            "--from-literal=password=s3cr3t"
        ])),
        ["secret/s1 created"]
    );
    assert_eq!(jp("secret/s1", "{.data.password}"), "czNjcjN0");
    assert_eq!(jp("secret/s1", "{.type}"), "Opaque", "type defaults to Opaque");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s2",
        "-n",
        n,
        &format!("--from-file=cfg={}", props.display()),
    ]);
    assert_eq!(jp("secret/s2", "{.data.cfg}"), "eD0xCnk9Mgo=");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s3",
        "-n",
        n,
        &format!("--from-env-file={}", envf.display()),
    ]);
    assert_eq!(jp("secret/s3", "{.data.B}"), "dHdvIHdvcmRz");
    k.ok(&[
        "create",
        "secret",
        "generic",
        "basic",
        "-n",
        n,
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=u",
        "--from-literal=password=p",
    ]);
    let t = Table::parse(&k.ok(&["get", "secrets", "-n", n]));
    assert_cells(&t.row("s1"), &[("TYPE", "Opaque"), ("DATA", "1")]);
    assert_cells(&t.row("s3"), &[("DATA", "3")]);
    assert_cells(&t.row("basic"), &[("TYPE", "kubernetes.io/basic-auth"), ("DATA", "2")]);

    // deployment
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "deployment",
            "web",
            "-n",
            n,
            "--image=nginx",
            "--replicas=2",
            "--port=80"
        ])),
        ["deployment.apps/web created"]
    );
    let d: serde_json::Value = serde_json::from_str(&k.ok(&["get", "deploy", "web", "-n", n, "-o", "json"])).unwrap();
    assert_eq!(d["metadata"]["labels"]["app"], "web");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(d["spec"]["template"]["metadata"]["labels"]["app"], "web");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], "25%");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "nginx");
    assert_eq!(c["image"], "nginx");
    assert_eq!(c["ports"][0]["containerPort"], 80);
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["imagePullPolicy"], "Always");
    let t = Table::parse(&k.ok(&["get", "deploy", "web", "-n", n, "-o", "wide"]));
    assert_cells(
        &t.row("web"),
        &[
            ("READY", "0/2"),
            ("CONTAINERS", "nginx"),
            ("IMAGES", "nginx"),
            ("SELECTOR", "app=web"),
        ],
    );

    // job and cronjob
    assert_eq!(
        lines(&k.ok(&["create", "job", "hello", "-n", n, "--image=busybox", "--", "echo", "hi"])),
        ["job.batch/hello created"]
    );
    assert_eq!(jp("job/hello", "{.spec.template.spec.restartPolicy}"), "Never");
    assert_eq!(
        jp("job/hello", "{.spec.template.spec.containers[0].command}"),
        r#"["echo","hi"]"#
    );
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "cronjob",
            "tick",
            "-n",
            n,
            "--image=busybox",
            "--schedule=*/5 * * * *",
            "--",
            "date"
        ])),
        ["cronjob.batch/tick created"]
    );
    assert_eq!(jp("cj/tick", "{.spec.schedule}"), "*/5 * * * *");
    assert_eq!(
        jp("cj/tick", "{.spec.jobTemplate.spec.template.spec.restartPolicy}"),
        "OnFailure"
    );
    assert_eq!(
        lines(&k.ok(&["create", "job", "manual", "-n", n, "--from=cronjob/tick"])),
        ["job.batch/manual created"]
    );
    assert_eq!(jp("job/manual", "{.metadata.ownerReferences[0].kind}"), "CronJob");
    assert_eq!(jp("job/manual", "{.metadata.ownerReferences[0].name}"), "tick");
    assert_eq!(
        jp(
            "job/manual",
            "{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"
        ),
        "manual"
    );

    // service account and service
    assert_eq!(
        lines(&k.ok(&["create", "serviceaccount", "robot", "-n", n])),
        ["serviceaccount/robot created"]
    );
    assert_eq!(
        lines(&k.ok(&["create", "service", "clusterip", "my-cs", "-n", n, "--tcp=5678:8080"])),
        ["service/my-cs created"]
    );
    let t = Table::parse(&k.ok(&["get", "svc", "my-cs", "-n", n, "-o", "wide"]));
    assert_cells(
        &t.row("my-cs"),
        &[
            ("TYPE", "ClusterIP"),
            ("PORT(S)", "5678/TCP"),
            ("SELECTOR", "app=my-cs"),
        ],
    );
    assert_eq!(
        lines(&k.ok(&["create", "service", "nodeport", "my-np", "-n", n, "--tcp=80:8080"])),
        ["service/my-np created"]
    );
    let np = jp("svc/my-np", "{.spec.ports[0].nodePort}")
        .parse::<u32>()
        .expect("a node port is allocated");
    assert!((30000..=32767).contains(&np), "nodePort {np}");
    let t = Table::parse(&k.ok(&["get", "svc", "my-np", "-n", n]));
    assert_cells(
        &t.row("my-np"),
        &[("TYPE", "NodePort"), ("PORT(S)", &format!("80:{np}/TCP"))],
    );

    // expose
    assert_eq!(
        lines(&k.ok(&[
            "expose",
            "deploy",
            "web",
            "-n",
            n,
            "--port=8080",
            "--target-port=80",
            "--name=web-svc"
        ])),
        ["service/web-svc exposed"]
    );
    assert_eq!(jp("svc/web-svc", "{.spec.selector.app}"), "web");
    assert_eq!(jp("svc/web-svc", "{.spec.ports[0].targetPort}"), "80");

    // run
    assert_eq!(
        lines(&k.ok(&["run", "single", "-n", n, "--image=nginx"])),
        ["pod/single created"]
    );
    assert_eq!(jp("pod/single", "{.metadata.labels.run}"), "single");
    assert_eq!(jp("pod/single", "{.spec.containers[0].name}"), "single");
    assert_eq!(jp("pod/single", "{.spec.restartPolicy}"), "Always");
    assert_eq!(jp("pod/single", "{.spec.dnsPolicy}"), "ClusterFirst");
    assert_eq!(jp("pod/single", "{.status.phase}"), "Pending");
    assert_eq!(jp("pod/single", "{.status.qosClass}"), "BestEffort");
    assert_eq!(
        lines(&k.ok(&["run", "exposed", "-n", n, "--image=nginx", "--port=80", "--expose"])),
        ["service/exposed created", "pod/exposed created"]
    );
    assert_eq!(jp("svc/exposed", "{.spec.selector.run}"), "exposed");
    k.ok(&[
        "run",
        "once",
        "-n",
        n,
        "--image=busybox",
        "--restart=Never",
        "--command",
        "--",
        "sleep",
        "10",
    ]);
    assert_eq!(jp("pod/once", "{.spec.restartPolicy}"), "Never");
    assert_eq!(jp("pod/once", "{.spec.containers[0].command}"), r#"["sleep","10"]"#);
    let t = Table::parse(&k.ok(&["get", "pods", "-n", n, "-L", "run"]));
    t.assert_headers(&["NAME", "READY", "STATUS", "RESTARTS", "AGE", "RUN"]);
    assert_cells(
        &t.row("single"),
        &[("READY", "0/1"), ("STATUS", "Pending"), ("RUN", "single")],
    );

    // dry runs change nothing
    let out = k.ok(&[
        "create",
        "configmap",
        "dry",
        "-n",
        n,
        "--from-literal=a=b",
        "--dry-run=server",
    ]);
    assert_eq!(lines(&out), ["configmap/dry created (server dry run)"]);
    let err = k.fails(&["get", "cm", "dry", "-n", n]);
    assert_contains(&err, "Error from server (NotFound): configmaps \"dry\" not found");
}

#[test]
fn label_annotate_scale_set_image_edit_patch_replace() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "mut"]);
    // Every namespace gets the cluster CA ConfigMap, as on a real cluster.
    common::wait_until(std::time::Duration::from_secs(30), "kube-root-ca.crt in mut", || {
        k.run(&["get", "cm", "kube-root-ca.crt", "-n", "mut"]).success()
    });
    let n = "mut";
    let jp = |res: &str, path: &str| k.ok(&["get", res, "-n", n, "-o", &format!("jsonpath={path}")]);
    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        n,
        "--image=nginx:1.25",
        "--replicas=1",
    ]);
    k.ok(&["create", "configmap", "cfg", "-n", n, "--from-literal=a=1"]);

    // label: add, refuse without --overwrite, overwrite, remove
    assert_eq!(
        lines(&k.ok(&["label", "deploy", "web", "tier=frontend", "-n", n])),
        ["deployment.apps/web labeled"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.labels.tier}"), "frontend");
    let err = k.fails(&["label", "deploy", "web", "tier=backend", "-n", n]);
    assert_contains(
        &err,
        "error: 'tier' already has a value (frontend), and --overwrite is false",
    );
    assert_eq!(
        lines(&k.ok(&["label", "deploy", "web", "tier=backend", "--overwrite", "-n", n])),
        ["deployment.apps/web labeled"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.labels.tier}"), "backend");
    assert_eq!(
        lines(&k.ok(&["label", "deploy", "web", "tier-", "-n", n])),
        ["deployment.apps/web unlabeled"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.labels}"), r#"{"app":"web"}"#);
    assert_eq!(
        lines(&k.ok(&["label", "cm", "--all", "-n", n, "swept=yes"])),
        ["configmap/cfg labeled", "configmap/kube-root-ca.crt labeled"]
    );
    let err = k.fails(&["label", "cm", "cfg", "-n", n, "bad key=x"]);
    assert!(!err.is_empty());
    // A label value the server must refuse.
    let err = k.fails(&["label", "cm", "cfg", "-n", n, "v=not valid!"]);
    assert!(!err.is_empty());

    // annotate: add, overwrite, remove
    assert_eq!(
        lines(&k.ok(&["annotate", "deploy", "web", "note=hi", "-n", n])),
        ["deployment.apps/web annotated"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.annotations.note}"), "hi");
    k.fails(&["annotate", "deploy", "web", "note=again", "-n", n]);
    assert_eq!(
        lines(&k.ok(&["annotate", "deploy", "web", "note=again", "--overwrite", "-n", n])),
        ["deployment.apps/web annotated"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.annotations.note}"), "again");
    assert_eq!(
        lines(&k.ok(&["annotate", "deploy", "web", "note-", "-n", n])),
        ["deployment.apps/web annotated"]
    );
    assert_eq!(jp("deploy/web", "{.metadata.annotations.note}"), "");

    // scale through the scale subresource
    assert_eq!(
        lines(&k.ok(&["scale", "deploy", "web", "--replicas=3", "-n", n])),
        ["deployment.apps/web scaled"]
    );
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "3");
    let scale: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/apis/apps/v1/namespaces/mut/deployments/web/scale"])).unwrap();
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    assert_eq!(
        lines(&k.ok(&["scale", "deploy/web", "--current-replicas=3", "--replicas=2", "-n", n])),
        ["deployment.apps/web scaled"]
    );
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "2");
    let err = k.fails(&["scale", "deploy/web", "--current-replicas=7", "--replicas=1", "-n", n]);
    assert_contains(&err, "Expected replicas to be 7, was 2");
    for f in [
        "replicaset-myreplicaset.yaml",
        "statefulset-mysts-with-service.yaml",
        "replicationcontroller-kubia.yaml",
    ] {
        k.ok(&["apply", "-n", n, "-f", seed(f).to_str().unwrap()]);
    }
    assert_eq!(
        lines(&k.ok(&["scale", "rs", "myreplicaset", "--replicas=4", "-n", n])),
        ["replicaset.apps/myreplicaset scaled"]
    );
    assert_eq!(jp("rs/myreplicaset", "{.spec.replicas}"), "4");
    assert_eq!(
        lines(&k.ok(&["scale", "sts", "mysts", "--replicas=0", "-n", n])),
        ["statefulset.apps/mysts scaled"]
    );
    assert_eq!(jp("sts/mysts", "{.spec.replicas}"), "0");
    assert_eq!(
        lines(&k.ok(&["scale", "rc", "kubia", "--replicas=1", "-n", n])),
        ["replicationcontroller/kubia scaled"]
    );
    assert_eq!(jp("rc/kubia", "{.spec.replicas}"), "1");
    let t = Table::parse(&k.ok(&["get", "rs", "myreplicaset", "-n", n]));
    assert_cells(&t.row("myreplicaset"), &[("DESIRED", "4")]);

    // set image
    assert_eq!(
        lines(&k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27", "-n", n])),
        ["deployment.apps/web image updated"]
    );
    assert_eq!(
        jp("deploy/web", "{.spec.template.spec.containers[0].image}"),
        "nginx:1.27"
    );
    assert_eq!(
        jp("deploy/web", "{.metadata.generation}"),
        "4",
        "every spec change counts: two scales and the image"
    );
    let err = k.fails(&["set", "image", "deployment/web", "nope=nginx:1", "-n", n]);
    assert_contains(&err, "unable to find container named \"nope\"");
    assert_eq!(
        lines(&k.ok(&["set", "image", "rs/myreplicaset", "nginx=nginx:1.26", "-n", n])),
        ["replicaset.apps/myreplicaset image updated"]
    );

    // edit with EDITOR
    let ed = srv.editor_script("bump.sh", r#"sed -i 's/^  replicas: 2$/  replicas: 5/' "$1""#);
    let out = k.editor(&ed).run(&["edit", "deploy", "web", "-n", n]);
    assert!(out.success(), "{out:?}");
    assert_eq!(lines(&out.stdout), ["deployment.apps/web edited"]);
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "5");
    let noop = srv.editor_script("noop.sh", "true");
    let out = k.editor(&noop).run(&["edit", "deploy", "web", "-n", n]);
    assert!(out.success(), "{out:?}");
    assert_contains(&out.all(), "Edit cancelled, no changes made.");
    let ed = srv.editor_script("data.sh", r#"sed -i 's/^  a: "1"$/  a: "2"\n  b: "3"/' "$1""#);
    let out = k.editor(&ed).run(&["edit", "cm/cfg", "-n", n]);
    assert!(out.success(), "{out:?}");
    assert_eq!(lines(&out.stdout), ["configmap/cfg edited"]);
    assert_eq!(jp("cm/cfg", "{.data}"), r#"{"a":"2","b":"3"}"#);
    // An invalid edit is refused by the server; nothing changes.
    let bad = srv.editor_script("bad.sh", r#"sed -i 's/^  replicas: 5$/  replicas: -1/' "$1""#);
    let out = k.editor(&bad).run(&["edit", "deploy", "web", "-n", n]);
    assert!(!out.success(), "{out:?}");
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "5");

    // patch: strategic (default), merge, json
    assert_eq!(
        lines(&k.ok(&["patch", "deploy", "web", "-n", n, "-p", r#"{"spec":{"replicas":2}}"#])),
        ["deployment.apps/web patched"]
    );
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "2");
    assert_eq!(
        lines(&k.ok(&["patch", "deploy", "web", "-n", n, "-p", r#"{"spec":{"replicas":2}}"#])),
        ["deployment.apps/web patched (no change)"]
    );
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        n,
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox"}]}}}}"#,
    ]);
    assert_eq!(
        jp("deploy/web", "{.spec.template.spec.containers[*].name}"),
        "sidecar nginx",
        "SMP merges by name"
    );
    k.ok(&[
        "patch",
        "deploy",
        "web",
        "-n",
        n,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/template/spec/containers/0"}]"#,
    ]);
    assert_eq!(jp("deploy/web", "{.spec.template.spec.containers[*].name}"), "nginx");
    k.ok(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        n,
        "--type=merge",
        "-p",
        r#"{"data":{"b":null,"c":"4"}}"#,
    ]);
    assert_eq!(jp("cm/cfg", "{.data}"), r#"{"a":"2","c":"4"}"#);
    let err = k.fails(&[
        "patch",
        "cm",
        "cfg",
        "-n",
        n,
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"9"}]"#,
    ]);
    assert!(!err.is_empty());

    // replace
    let y = k
        .ok(&["get", "cm", "cfg", "-n", n, "-o", "yaml"])
        .replace("  c: \"4\"\n", "  c: \"5\"\n");
    let f = srv.write_file("cfg.yaml", &y);
    assert_eq!(
        lines(&k.ok(&["replace", "-f", f.to_str().unwrap()])),
        ["configmap/cfg replaced"]
    );
    assert_eq!(jp("cm/cfg", "{.data.c}"), "5");
    // status subresource is separate from the main resource
    let gen = jp("deploy/web", "{.metadata.generation}");
    k.ok(&["label", "deploy", "web", "-n", n, "x=y"]);
    assert_eq!(
        jp("deploy/web", "{.metadata.generation}"),
        gen,
        "metadata changes do not bump generation"
    );
}

#[test]
fn delete_by_name_selector_all_and_file() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "del"]);
    let n = "del";
    for (name, app) in [("one", "x"), ("two", "x"), ("three", "y"), ("four", "z")] {
        k.ok(&["create", "configmap", name, "-n", n, "--from-literal=k=v"]);
        k.ok(&["label", "configmap", name, "-n", n, &format!("app={app}")]);
    }
    let remaining = || lines(&k.ok(&["get", "cm", "-n", n, "-l", "app", "-o", "name"]));

    let out = k.ok(&["delete", "configmap", "one", "-n", n]);
    assert!(lines(&out)[0].starts_with("configmap \"one\" deleted"), "{out}");
    let err = k.fails(&["get", "cm", "one", "-n", n]);
    assert_contains(&err, "Error from server (NotFound): configmaps \"one\" not found");

    let out = k.ok(&["delete", "cm", "-l", "app=x", "-n", n]);
    assert_eq!(lines(&out).len(), 1, "{out}");
    assert!(lines(&out)[0].starts_with("configmap \"two\" deleted"), "{out}");
    assert_eq!(remaining(), ["configmap/four", "configmap/three"]);

    let out = k.ok(&["delete", "cm", "-l", "app in (y,z)", "--dry-run=server", "-n", n]);
    assert!(out.contains("(server dry run)"), "{out}");
    assert_eq!(remaining(), ["configmap/four", "configmap/three"]);

    let out = k.run(&["delete", "cm", "-l", "app=nothing", "-n", n]);
    assert!(out.success());
    assert_contains(&out.all(), "No resources found");

    let out = k.ok(&["delete", "cm", "--all", "-n", n]);
    let l = lines(&out);
    assert!(l.iter().any(|x| x.starts_with("configmap \"three\" deleted")), "{out}");
    assert!(l.iter().any(|x| x.starts_with("configmap \"four\" deleted")), "{out}");
    assert!(remaining().is_empty());

    // -f with a multi-document file; a second time reports NotFound per object.
    let m = seed("statefulset-mysts-with-service.yaml");
    k.ok(&["apply", "-n", n, "-f", m.to_str().unwrap()]);
    let out = k.ok(&["delete", "-n", n, "-f", m.to_str().unwrap()]);
    let l = lines(&out);
    assert!(l[0].starts_with("statefulset.apps \"mysts\" deleted"), "{out}");
    assert!(l[1].starts_with("service \"mysts\" deleted"), "{out}");
    let out = k.run(&["delete", "-n", n, "-f", m.to_str().unwrap()]);
    assert!(!out.success());
    assert_contains(
        &out.stderr,
        &format!(
            "Error from server (NotFound): error when deleting \"{}\": statefulsets.apps \"mysts\" not found",
            m.display()
        ),
    );
    assert_contains(
        &out.stderr,
        &format!(
            "Error from server (NotFound): error when deleting \"{}\": services \"mysts\" not found",
            m.display()
        ),
    );
    let out = k.ok(&["delete", "-n", n, "-f", m.to_str().unwrap(), "--ignore-not-found"]);
    assert_eq!(out.trim(), "");

    // Unscheduled pods are deleted at once (no kubelet to wait for); deployments by name.
    k.ok(&["run", "p", "-n", n, "--image=nginx"]);
    let out = k.ok(&["delete", "pod", "p", "-n", n]);
    assert!(out.starts_with("pod \"p\" deleted"), "{out}");
    k.ok(&["create", "deployment", "web", "-n", n, "--image=nginx"]);
    let out = k.ok(&["delete", "deploy", "web", "-n", n]);
    assert!(out.starts_with("deployment.apps \"web\" deleted"), "{out}");
    // Orphan and foreground propagation are recorded as the upstream finalizer, which the
    // garbage collector removes once it has orphaned or deleted the dependents; then the
    // object goes.
    for (name, cascade) in [("web2", "orphan"), ("web3", "foreground")] {
        k.ok(&["create", "deployment", name, "-n", n, "--image=nginx"]);
        let out = k.ok(&[
            "delete",
            "deploy",
            name,
            "-n",
            n,
            &format!("--cascade={cascade}"),
            "--wait=false",
        ]);
        assert!(out.starts_with(&format!("deployment.apps \"{name}\" deleted")), "{out}");
        wait_until(std::time::Duration::from_secs(30), "the deployment to go", || {
            !k.run(&["get", "deploy", name, "-n", n]).success()
        });
    }

    // A finalizer holds an object: delete marks it (deletionTimestamp), removing the finalizer ends it.
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n";
    k.ok_stdin(&["create", "-n", n, "-f", "-"], held);
    let out = k.ok(&["delete", "cm", "held", "-n", n, "--wait=false"]);
    assert!(out.starts_with("configmap \"held\" deleted"), "{out}");
    let ts = k.ok(&[
        "get",
        "cm",
        "held",
        "-n",
        n,
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(ts.ends_with('Z'), "deletionTimestamp set: {ts:?}");
    k.ok(&[
        "patch",
        "cm",
        "held",
        "-n",
        n,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_until(
        std::time::Duration::from_secs(10),
        "the finalized configmap is gone",
        || !k.run(&["get", "cm", "held", "-n", n]).success(),
    );
}
