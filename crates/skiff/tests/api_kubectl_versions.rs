//! The core learner commands with every kubectl from 1.27 to 1.33 explicitly, and with the
//! dispatcher on PATH. The versions differ on the wire (discovery v2beta1 vs v2, OpenAPI v2
//! protobuf vs v3, JSON vs protobuf bodies for `create <generator>`); the output must not.
mod common;

use common::*;
use std::time::Duration;

fn core_suite(v: Option<&str>) {
    let srv = Server::start();
    let k = match v {
        Some(v) => srv.kv(v),
        None => srv.k(),
    };
    let minor: u32 = v.map(|v| v.split('.').nth(1).unwrap().parse().unwrap()).unwrap_or(33);

    // version, with the skew warning kubectl prints for clients more than one minor behind.
    let out = k.run(&["version"]);
    assert!(out.success(), "{out:?}");
    if minor >= 28 {
        assert_contains(&out.stdout, &format!("Client Version: v1.{minor}."));
        assert_contains(&out.stdout, "Server Version: v1.33.");
    } else {
        // 1.27 still prints the long form by default.
        assert_contains(
            &out.stdout,
            &format!("Client Version: version.Info{{Major:\"1\", Minor:\"{minor}\""),
        );
        assert_contains(
            &out.stdout,
            "Server Version: version.Info{Major:\"1\", Minor:\"33\", GitVersion:\"v1.33.",
        );
    }
    if minor < 32 {
        assert_contains(
            &out.stderr,
            &format!(
                "WARNING: version difference between client (1.{minor}) and server (1.33) exceeds the supported minor version skew of +/-1"
            ),
        );
    }

    // discovery
    let t = Table::parse(&k.ok(&["api-resources"]));
    assert!(
        t.rows
            .iter()
            .any(|r| r[0] == "deployments" && r[1] == "deploy" && r[2] == "apps/v1"),
        "{t:?}"
    );
    assert!(
        t.rows
            .iter()
            .any(|r| r[0] == "cronjobs" && r[1] == "cj" && r[2] == "batch/v1"),
        "{t:?}"
    );

    // create namespace (protobuf body from 1.32)
    assert_eq!(
        lines(&k.ok(&["create", "namespace", "core"])),
        ["namespace/core created"]
    );
    let n = "core";
    let jp = |res: &str, path: &str| k.ok(&["get", res, "-n", n, "-o", &format!("jsonpath={path}")]);

    // apply, multi-document apply, re-apply, apply after an edit
    let dep = seed("deployment-mydeploy.yaml");
    let dp = dep.to_str().unwrap();
    assert_eq!(
        lines(&k.ok(&["apply", "-f", dp, "-n", n])),
        ["deployment.apps/mydeploy created"]
    );
    assert_eq!(
        lines(&k.ok(&["apply", "-f", dp, "-n", n])),
        ["deployment.apps/mydeploy unchanged"]
    );
    let sts = seed("statefulset-mysts-with-service.yaml");
    assert_eq!(
        lines(&k.ok(&["apply", "-f", sts.to_str().unwrap(), "-n", n])),
        ["statefulset.apps/mysts created", "service/mysts created"]
    );
    k.ok(&["label", "deploy", "mydeploy", "-n", n, "by-others=yes"]);
    let edited = std::fs::read_to_string(&dep)
        .unwrap()
        .replace("nginx:1.7.9", "nginx:1.9.1");
    assert_eq!(
        lines(&k.ok_stdin(&["apply", "-f", "-", "-n", n], &edited)),
        ["deployment.apps/mydeploy configured"]
    );
    assert_eq!(
        jp("deploy/mydeploy", "{.spec.template.spec.containers[0].image}"),
        "nginx:1.9.1"
    );
    assert_eq!(jp("deploy/mydeploy", "{.metadata.labels.by-others}"), "yes");

    // create -f and AlreadyExists
    let cm = seed("configmap-my-configmap.yaml");
    let cmp = cm.to_str().unwrap();
    assert_eq!(
        lines(&k.ok(&["create", "-f", cmp, "-n", n])),
        ["configmap/my-configmap created"]
    );
    assert_eq!(
        k.fails(&["create", "-f", cmp, "-n", n]).trim(),
        format!("Error from server (AlreadyExists): error when creating \"{cmp}\": configmaps \"my-configmap\" already exists")
    );

    // get: table, wide, yaml, json, name, jsonpath, selectors, -L, --show-labels, -A
    // The rollout to 1.9.1 stalls as on a real cluster without nodes: no pod ever becomes
    // available, so the new ReplicaSet stops at 5 (10 + 3 surge − 8 kept for availability).
    wait_until(Duration::from_secs(30), "mydeploy's rollout stalled", || {
        k.run(&[
            "get",
            "deploy",
            "mydeploy",
            "-n",
            n,
            "-o",
            "jsonpath={.status.updatedReplicas}",
        ])
        .stdout
            == "5"
    });
    let t = Table::parse(&k.ok(&["get", "deploy", "-n", n]));
    t.assert_headers(&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_cells(
        &t.row("mydeploy"),
        &[("READY", "0/10"), ("UP-TO-DATE", "5"), ("AVAILABLE", "0")],
    );
    let t = Table::parse(&k.ok(&["get", "deploy", "-n", n, "-o", "wide"]));
    assert_cells(
        &t.row("mydeploy"),
        &[
            ("CONTAINERS", "nginx"),
            ("IMAGES", "nginx:1.9.1"),
            ("SELECTOR", "run=nginx"),
        ],
    );
    let y = k.ok(&["get", "cm", "my-configmap", "-n", n, "-o", "yaml"]);
    assert!(
        y.starts_with("apiVersion: v1\ndata:\n  key1: value1\n  key2: value2\nkind: ConfigMap\n"),
        "{y}"
    );
    let j: serde_json::Value = serde_json::from_str(&k.ok(&["get", "sts", "mysts", "-n", n, "-o", "json"])).unwrap();
    assert_eq!(j["kind"], "StatefulSet");
    assert_eq!(j["spec"]["replicas"], 3);
    assert_eq!(lines(&k.ok(&["get", "svc", "-n", n, "-o", "name"])), ["service/mysts"]);
    assert_eq!(jp("cm/my-configmap", "{.data.key2}"), "value2");
    assert_eq!(
        lines(&k.ok(&["get", "deploy,sts", "-n", n, "-l", "by-others=yes", "-o", "name"])),
        ["deployment.apps/mydeploy"]
    );
    assert_eq!(
        lines(&k.ok(&["get", "deploy,sts", "-n", n, "-l", "!by-others", "-o", "name"])),
        ["statefulset.apps/mysts"]
    );
    assert_eq!(
        lines(&k.ok(&["get", "deploy", "-n", n, "-l", "by-others in (yes,no)", "-o", "name"])),
        ["deployment.apps/mydeploy"]
    );
    let t = Table::parse(&k.ok(&["get", "deploy", "-n", n, "-L", "by-others"]));
    assert_cells(&t.row("mydeploy"), &[("BY-OTHERS", "yes")]);
    let t = Table::parse(&k.ok(&["get", "deploy", "-n", n, "--show-labels"]));
    assert_cells(&t.row("mydeploy"), &[("LABELS", "by-others=yes")]);
    let t = Table::parse(&k.ok(&["get", "sts", "-A"]));
    assert_cells(&t.row_by("NAME", "mysts"), &[("NAMESPACE", "core"), ("READY", "0/3")]);

    // label, annotate, scale, set image, edit
    assert_eq!(
        lines(&k.ok(&["label", "sts", "mysts", "-n", n, "a=b"])),
        ["statefulset.apps/mysts labeled"]
    );
    assert_eq!(
        lines(&k.ok(&["label", "sts", "mysts", "-n", n, "a=c", "--overwrite"])),
        ["statefulset.apps/mysts labeled"]
    );
    assert_eq!(
        lines(&k.ok(&["label", "sts", "mysts", "-n", n, "a-"])),
        ["statefulset.apps/mysts unlabeled"]
    );
    // (kubectl 1.27 itself prints "annotate" here; fixed in 1.28)
    let word = if minor == 27 { "annotate" } else { "annotated" };
    assert_eq!(
        lines(&k.ok(&["annotate", "sts", "mysts", "-n", n, "note=x"])),
        [format!("statefulset.apps/mysts {word}")]
    );
    assert_eq!(
        lines(&k.ok(&["scale", "deploy", "mydeploy", "-n", n, "--replicas=3"])),
        ["deployment.apps/mydeploy scaled"]
    );
    assert_eq!(
        lines(&k.ok(&["scale", "sts", "mysts", "-n", n, "--replicas=1"])),
        ["statefulset.apps/mysts scaled"]
    );
    assert_eq!(jp("sts/mysts", "{.spec.replicas}"), "1");
    assert_eq!(
        lines(&k.ok(&["set", "image", "deploy/mydeploy", "nginx=nginx:1.27", "-n", n])),
        ["deployment.apps/mydeploy image updated"]
    );
    let ed = srv.editor_script("ed.sh", r#"sed -i 's/^  replicas: 3$/  replicas: 6/' "$1""#);
    let out = k.editor(&ed).run(&["edit", "deploy", "mydeploy", "-n", n]);
    assert!(out.success(), "{out:?}");
    assert_eq!(lines(&out.stdout), ["deployment.apps/mydeploy edited"]);
    assert_eq!(jp("deploy/mydeploy", "{.spec.replicas}"), "6");

    // generators (JSON before 1.32, protobuf from 1.32)
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "configmap",
            "lit",
            "-n",
            n,
            "--from-literal=a=1",
            "--from-literal=b=2"
        ])),
        ["configmap/lit created"]
    );
    assert_eq!(jp("cm/lit", "{.data}"), r#"{"a":"1","b":"2"}"#);
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "secret",
            "generic",
            "sec",
            "-n",
            n,
            "--from-literal=password=s3cr3t"
        ])),
        ["secret/sec created"]
    );
    assert_eq!(jp("secret/sec", "{.data.password}"), "czNjcjN0");
    assert_eq!(jp("secret/sec", "{.type}"), "Opaque");
    assert_eq!(
        lines(&k.ok(&["create", "deployment", "web", "-n", n, "--image=nginx", "--replicas=2"])),
        ["deployment.apps/web created"]
    );
    assert_eq!(jp("deploy/web", "{.spec.selector.matchLabels.app}"), "web");
    assert_eq!(jp("deploy/web", "{.spec.replicas}"), "2");
    assert_eq!(
        lines(&k.ok(&["create", "job", "j", "-n", n, "--image=busybox", "--", "true"])),
        ["job.batch/j created"]
    );
    assert_eq!(
        lines(&k.ok(&[
            "create",
            "cronjob",
            "cj",
            "-n",
            n,
            "--image=busybox",
            "--schedule=0 * * * *",
            "--",
            "true"
        ])),
        ["cronjob.batch/cj created"]
    );
    assert_eq!(
        lines(&k.ok(&["run", "single", "-n", n, "--image=nginx"])),
        ["pod/single created"]
    );
    assert_eq!(jp("pod/single", "{.metadata.labels.run}"), "single");
    assert_eq!(
        k.fails(&["create", "configmap", "lit", "-n", n, "--from-literal=a=1"])
            .trim(),
        "error: failed to create configmap: configmaps \"lit\" already exists"
    );

    // describe
    // The deployment controller's ReplicaSet makes 2 pods, Pending without nodes.
    wait_until(Duration::from_secs(30), "web's pods created", || {
        jp("deploy/web", "{.status.updatedReplicas}") == "2"
    });
    let d = k.ok(&["describe", "deploy", "web", "-n", n]);
    assert_eq!(describe_field(&d, "Name").as_deref(), Some("web"), "{d}");
    assert_eq!(
        describe_field(&d, "Replicas").as_deref(),
        Some("2 desired | 2 updated | 2 total | 0 available | 2 unavailable"),
        "{d}"
    );
    let d = k.ok(&["describe", "pod", "single", "-n", n]);
    assert_eq!(describe_field(&d, "Status").as_deref(), Some("Pending"), "{d}");

    // errors
    assert_eq!(
        k.fails(&["get", "pod", "nope", "-n", n]).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );
    let bad = std::fs::read_to_string(&dep)
        .unwrap()
        .replace("replicas: 10", "replicas: -1")
        .replace("name: mydeploy", "name: bad");
    assert_eq!(
        k.fails_stdin(&["apply", "-f", "-", "-n", n], &bad).trim(),
        "The Deployment \"bad\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let stale = k.ok(&["get", "cm", "lit", "-n", n, "-o", "yaml"]);
    srv.write_file("lit-old.yaml", &stale);
    k.ok(&["label", "cm", "lit", "-n", n, "bump=1"]);
    assert_eq!(
        k.fails(&["replace", "-f", "lit-old.yaml"]).trim(),
        "Error from server (Conflict): error when replacing \"lit-old.yaml\": Operation cannot be fulfilled on configmaps \"lit\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // explain
    let ex = k.ok(&["explain", "pods.spec"]);
    assert_eq!(describe_field(&ex, "KIND").as_deref(), Some("Pod"), "{ex}");
    assert!(ex.lines().any(|l| l.trim_start().starts_with("containers\t<")), "{ex}");

    // watch (explicit binaries only: the dispatcher's own process is not the watch)
    if let Some(ver) = v {
        let mut w = srv.spawn_kubectl(Some(ver), &["get", "cm", "-n", n, "-w"]);
        w.wait_line(Duration::from_secs(20), "the existing configmap", |l| {
            l.starts_with("lit ")
        });
        k.ok(&["create", "configmap", "watched", "-n", n]);
        w.wait_line(Duration::from_secs(20), "the new configmap", |l| {
            l.starts_with("watched ")
        });
        assert!(w.running());
        w.kill();
    }

    // delete by name, -l, --all, -f
    assert!(k
        .ok(&["delete", "cm", "lit", "-n", n])
        .starts_with("configmap \"lit\" deleted"));
    k.ok(&["label", "deploy", "web", "-n", n, "gone=soon"]);
    assert!(k
        .ok(&["delete", "deploy", "-l", "gone=soon", "-n", n])
        .starts_with("deployment.apps \"web\" deleted"));
    let out = k.ok(&["delete", "-f", sts.to_str().unwrap(), "-n", n]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = k.ok(&["delete", "cm", "--all", "-n", n]);
    assert_contains(&out, "configmap \"my-configmap\" deleted");
    let out = k.run(&["get", "sts,svc", "-n", n]);
    assert!(out.success());
    assert_eq!(out.stderr.trim(), "No resources found in core namespace.");
}

#[test]
fn kubectl_1_27() {
    core_suite(Some("1.27"));
}

#[test]
fn kubectl_1_28() {
    core_suite(Some("1.28"));
}

#[test]
fn kubectl_1_29() {
    core_suite(Some("1.29"));
}

#[test]
fn kubectl_1_30() {
    core_suite(Some("1.30"));
}

#[test]
fn kubectl_1_31() {
    core_suite(Some("1.31"));
}

#[test]
fn kubectl_1_32() {
    core_suite(Some("1.32"));
}

#[test]
fn kubectl_1_33() {
    core_suite(Some("1.33"));
}

#[test]
fn kubectl_on_path_dispatcher() {
    core_suite(None);
}
