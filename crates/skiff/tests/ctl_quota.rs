//! Per-namespace policy through the real kubectl: every namespace gets the `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap; ResourceQuota refuses what would exceed
//! it with upstream's messages and tracks usage; LimitRange fills in and bounds resources.

mod common;

use std::time::Duration;

use common::{wait_until, Server};

const T: Duration = Duration::from_secs(60);

fn pod_yaml(name: &str, ns: &str, request: &str, limit: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  containers:\n  - name: c\n    \
         image: nginx\n    resources:\n      requests:\n        cpu: {request}\n      limits:\n        cpu: {limit}\n"
    )
}

#[test]
fn namespaces_get_default_service_account_and_root_ca() {
    let s = Server::start();
    let k = s.k();
    k.ok(&["create", "namespace", "team-a"]);
    wait_until(T, "default service account in team-a", || {
        k.run(&["get", "serviceaccounts", "-n", "team-a"])
            .stdout
            .contains("default")
    });
    wait_until(T, "kube-root-ca.crt in team-a", || {
        k.run(&[
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team-a",
            "-o",
            r"jsonpath={.data.ca\.crt}",
        ])
        .stdout
        .starts_with("-----BEGIN CERTIFICATE-----")
    });
    // The CA published is the one the kubeconfig trusts.
    let published = k.ok(&[
        "get",
        "cm",
        "kube-root-ca.crt",
        "-n",
        "team-a",
        "-o",
        r"jsonpath={.data.ca\.crt}",
    ]);
    let trusted = k.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ]);
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().map(|mut i| i.write_all(trusted.as_bytes()));
            child.wait_with_output()
        })
        .expect("base64 runs");
    assert_eq!(published.trim(), String::from_utf8_lossy(&decoded.stdout).trim());
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        wait_until(T, &format!("default service account in {ns}"), || {
            k.run(&["get", "sa", "default", "-n", ns]).success()
        });
    }
    // Pods run as the namespace's default service account unless they name another.
    k.ok(&["run", "who", "--image=nginx", "-n", "team-a"]);
    let described = k.ok(&["describe", "pod", "who", "-n", "team-a"]);
    assert!(described.contains("Service Account:  default"), "{described}");
    // Deleted, both come back.
    k.ok(&["delete", "sa", "default", "-n", "team-a"]);
    k.ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team-a"]);
    wait_until(T, "default service account recreated", || {
        k.run(&["get", "sa", "default", "-n", "team-a"]).success()
    });
    wait_until(T, "root CA recreated", || {
        k.run(&["get", "cm", "kube-root-ca.crt", "-n", "team-a"]).success()
    });
}

#[test]
fn quota_refuses_pods_over_the_namespace_cpu_and_tracks_usage() {
    let s = Server::start_with(&["--sim-nodes", "3"]);
    let k = s.k();
    k.ok(&["create", "namespace", "team-a"]);
    k.ok(&[
        "create",
        "quota",
        "team-a-quota",
        "-n",
        "team-a",
        "--hard=requests.cpu=1,limits.cpu=2,pods=3",
    ]);
    wait_until(T, "quota usage computed", || {
        let out = k.run(&["get", "quota", "-n", "team-a"]).stdout;
        out.contains("pods: 0/3, requests.cpu: 0/1") && out.contains("limits.cpu: 0/2")
    });

    // Containers must state what the quota limits.
    let err = k.fails(&["run", "nores", "--image=nginx", "-n", "team-a"]);
    assert!(
        err.contains(
            "Error from server (Forbidden): pods \"nores\" is forbidden: failed quota: team-a-quota: \
             must specify limits.cpu for: nores; requests.cpu for: nores"
        ),
        "{err}"
    );

    k.ok_stdin(&["apply", "-f", "-"], &pod_yaml("p1", "team-a", "600m", "1"));
    let err = k.fails_stdin(&["apply", "-f", "-"], &pod_yaml("p2", "team-a", "600m", "1"));
    assert!(
        err.contains(
            "pods \"p2\" is forbidden: exceeded quota: team-a-quota, requested: requests.cpu=600m, \
             used: requests.cpu=600m, limited: requests.cpu=1"
        ),
        "{err}"
    );
    let described = k.ok(&["describe", "quota", "team-a-quota", "-n", "team-a"]);
    for line in [
        "limits.cpu    1     2",
        "pods          1     3",
        "requests.cpu  600m  1",
    ] {
        assert!(described.contains(line), "missing {line:?} in\n{described}");
    }
    // A dry run is checked but not charged.
    k.ok_stdin(
        &["apply", "--dry-run=server", "-f", "-"],
        &pod_yaml("dry", "team-a", "100m", "100m"),
    );
    assert!(k
        .ok(&["describe", "quota", "-n", "team-a"])
        .contains("requests.cpu  600m  1"));

    // Freed when the pod goes.
    k.ok(&["delete", "pod", "p1", "-n", "team-a", "--grace-period=0", "--force"]);
    wait_until(T, "usage back to zero", || {
        k.run(&["get", "quota", "-n", "team-a"])
            .stdout
            .contains("pods: 0/3, requests.cpu: 0/1")
    });
    k.ok_stdin(&["apply", "-f", "-"], &pod_yaml("p2", "team-a", "600m", "1"));

    // A controller's creations are refused too, and it says so in its events.
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: web\n  namespace: team-a\nspec:\n  replicas: 3\n  \
              selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    \
              spec:\n      containers:\n      - name: c\n        image: nginx\n        resources:\n          requests:\n            \
              cpu: 200m\n          limits:\n            cpu: 200m\n";
    k.ok_stdin(&["apply", "-f", "-"], rs);
    wait_until(T, "FailedCreate for exceeded quota", || {
        k.run(&["describe", "rs", "web", "-n", "team-a"]).stdout.contains(
            "is forbidden: exceeded quota: team-a-quota, requested: pods=1,requests.cpu=200m, used: \
             pods=3,requests.cpu=1, limited: pods=3,requests.cpu=1",
        )
    });
    let pods = k.ok(&["get", "pods", "-n", "team-a", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.lines().count(), 2, "{pods}");
}

#[test]
fn limit_range_defaults_and_bounds_containers() {
    let s = Server::start();
    let k = s.k();
    k.ok(&["create", "namespace", "team-b"]);
    let lr = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: cpu-limits\n  namespace: team-b\nspec:\n  limits:\n  \
              - type: Container\n    default:\n      cpu: 500m\n    defaultRequest:\n      cpu: 200m\n    max:\n      cpu: \"1\"\n";
    k.ok_stdin(&["apply", "-f", "-"], lr);
    k.ok(&["run", "plain", "--image=nginx", "-n", "team-b"]);
    let res = k.ok(&[
        "get",
        "pod",
        "plain",
        "-n",
        "team-b",
        "-o",
        "jsonpath={.spec.containers[0].resources.requests.cpu} {.spec.containers[0].resources.limits.cpu}",
    ]);
    assert_eq!(res, "200m 500m");
    let note = k.ok(&[
        "get",
        "pod",
        "plain",
        "-n",
        "team-b",
        "-o",
        r"jsonpath={.metadata.annotations.kubernetes\.io/limit-ranger}",
    ]);
    assert_eq!(
        note,
        "LimitRanger plugin set: cpu request for container plain; cpu limit for container plain"
    );
    let err = k.fails_stdin(&["apply", "-f", "-"], &pod_yaml("big", "team-b", "500m", "2"));
    assert!(
        err.contains("pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"),
        "{err}"
    );
    let described = k.ok(&["describe", "limitrange", "cpu-limits", "-n", "team-b"]);
    assert!(
        described.contains("Container   cpu       -    1    200m             500m           -"),
        "{described}"
    );
}
