//! Startup contract, health endpoints, version, discovery, OpenAPI (`explain`), cluster-info and
//! authentication, with the kubectl on PATH.
mod common;

use common::*;

#[test]
fn startup_health_version_and_cluster_info() {
    let srv = Server::start();

    // `skiff up` prints the kubeconfig path on stdout.
    let stdout = std::fs::read_to_string(srv.stdout_log()).unwrap();
    assert_contains(&stdout, srv.kubeconfig.to_str().unwrap());

    // The kubeconfig: HTTPS server URL, CA data, and a bearer token for the admin.
    let server = srv.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    assert_eq!(server.trim(), srv.url());
    let ca = srv.ok(&[
        "config",
        "view",
        "--raw",
        "-o",
        "jsonpath={.clusters[0].cluster.certificate-authority-data}",
    ]);
    assert!(ca.trim().len() > 100, "certificate-authority-data missing: {ca:?}");
    let token = srv.token();

    for ep in ["/readyz", "/livez", "/healthz"] {
        assert_eq!(srv.ok(&["get", "--raw", ep]).trim(), "ok", "{ep}");
    }

    // /version reports Kubernetes 1.33; the dispatcher on PATH then runs kubectl 1.33.
    let v: serde_json::Value = serde_json::from_str(&srv.ok(&["get", "--raw", "/version"])).unwrap();
    assert_eq!(v["major"], "1");
    assert_eq!(v["minor"], "33");
    for k in [
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    ] {
        assert!(v[k].is_string(), "/version lacks {k}: {v}");
    }
    assert!(v["gitVersion"].as_str().unwrap().starts_with("v1.33."), "{v}");

    let out = srv.k().run(&["version"]);
    assert!(out.success(), "{out:?}");
    assert_contains(&out.stdout, "Client Version: v1.33.");
    assert_contains(
        &out.stdout,
        &format!("Server Version: {}", v["gitVersion"].as_str().unwrap()),
    );
    assert_not_contains(&out.stderr, "WARNING: version difference");
    let vj: serde_json::Value = serde_json::from_str(&srv.ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(vj["serverVersion"]["minor"], "33");

    // cluster-info: the control plane line (no add-on services yet).
    let ci = srv.ok(&["cluster-info"]);
    assert_eq!(
        lines(&ci)[0],
        format!("Kubernetes control plane is running at {}", srv.url())
    );
    assert_contains(
        &ci,
        "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.",
    );

    // The four built-in namespaces exist and are Active.
    let t = Table::parse(&srv.ok(&["get", "namespaces"]));
    t.assert_headers(&["NAME", "STATUS", "AGE"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_cells(&t.row(ns), &[("STATUS", "Active")]);
    }

    // A raw request with the admin token works.
    let (code, body) = srv.curl("GET", "/api", Some(&token), None, "");
    assert_eq!(code, 200, "{body}");
}

#[test]
fn api_resources_and_explain() {
    let srv = Server::start();
    let out = srv.ok(&["api-resources"]);
    let t = Table::parse(&out);
    t.assert_headers(&["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    // (resource, shortnames, apiVersion, namespaced, kind), as upstream 1.33 lists them.
    let want = [
        ("configmaps", "cm", "v1", "true", "ConfigMap"),
        ("endpoints", "ep", "v1", "true", "Endpoints"),
        ("events", "ev", "v1", "true", "Event"),
        ("limitranges", "limits", "v1", "true", "LimitRange"),
        ("namespaces", "ns", "v1", "false", "Namespace"),
        ("nodes", "no", "v1", "false", "Node"),
        ("persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim"),
        ("persistentvolumes", "pv", "v1", "false", "PersistentVolume"),
        ("pods", "po", "v1", "true", "Pod"),
        ("replicationcontrollers", "rc", "v1", "true", "ReplicationController"),
        ("resourcequotas", "quota", "v1", "true", "ResourceQuota"),
        ("secrets", "", "v1", "true", "Secret"),
        ("serviceaccounts", "sa", "v1", "true", "ServiceAccount"),
        ("services", "svc", "v1", "true", "Service"),
        ("controllerrevisions", "", "apps/v1", "true", "ControllerRevision"),
        ("daemonsets", "ds", "apps/v1", "true", "DaemonSet"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
        ("statefulsets", "sts", "apps/v1", "true", "StatefulSet"),
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ),
        ("cronjobs", "cj", "batch/v1", "true", "CronJob"),
        ("jobs", "", "batch/v1", "true", "Job"),
        ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
        ("endpointslices", "", "discovery.k8s.io/v1", "true", "EndpointSlice"),
        ("ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"),
        ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"),
    ];
    for (name, short, av, nsd, kind) in want {
        let row = t
            .rows
            .iter()
            .find(|r| r[0] == name && r[2] == av)
            .unwrap_or_else(|| panic!("api-resources lacks {name} {av}\n{out}"));
        assert_eq!(
            row,
            &vec![name.to_string(), short.into(), av.into(), nsd.into(), kind.into()]
        );
    }
    // events.k8s.io/v1 Event is listed too (same short name as upstream).
    assert!(
        t.rows
            .iter()
            .any(|r| r[0] == "events" && r[2] == "events.k8s.io/v1" && r[4] == "Event"),
        "{out}"
    );
    // Core group first, as upstream.
    assert_eq!(t.rows[0][2], "v1", "{out}");

    // -o wide adds VERBS and CATEGORIES.
    let wide = Table::parse(&srv.ok(&["api-resources", "-o", "wide"]));
    wide.assert_headers(&[
        "NAME",
        "SHORTNAMES",
        "APIVERSION",
        "NAMESPACED",
        "KIND",
        "VERBS",
        "CATEGORIES",
    ]);
    let dep = wide.row("deployments");
    assert_cells(
        &dep,
        &[
            ("VERBS", "create,delete,deletecollection,get,list,patch,update,watch"),
            ("CATEGORIES", "all"),
        ],
    );
    // Namespaced filter and name output.
    let cluster_scoped = srv.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    for r in ["namespaces", "nodes", "persistentvolumes"] {
        assert!(lines(&cluster_scoped).contains(&r.to_string()), "{cluster_scoped}");
    }
    assert!(!lines(&cluster_scoped).contains(&"pods".to_string()));
    // api-versions
    let versions = lines(&srv.ok(&["api-versions"]));
    for gv in [
        "v1",
        "apps/v1",
        "batch/v1",
        "autoscaling/v2",
        "coordination.k8s.io/v1",
        "discovery.k8s.io/v1",
        "events.k8s.io/v1",
        "networking.k8s.io/v1",
    ] {
        assert!(
            versions.contains(&gv.to_string()),
            "api-versions lacks {gv}: {versions:?}"
        );
    }

    // explain shows the real field documentation from OpenAPI v3.
    let ex = srv.ok(&["explain", "pods.spec"]);
    assert_eq!(describe_field(&ex, "KIND").as_deref(), Some("Pod"), "{ex}");
    assert_eq!(describe_field(&ex, "VERSION").as_deref(), Some("v1"), "{ex}");
    assert_contains(&ex, "FIELD: spec <PodSpec>");
    assert_contains(&ex, "PodSpec is a description of a pod.");
    assert!(
        ex.lines().any(|l| l.trim() == "containers\t<[]Container> -required-"),
        "{ex}"
    );
    assert!(ex.lines().any(|l| l.trim() == "restartPolicy\t<string>"), "{ex}");
    let ex = srv.ok(&["explain", "deployments.spec.strategy"]);
    assert_eq!(describe_field(&ex, "GROUP").as_deref(), Some("apps"), "{ex}");
    assert_contains(&ex, "FIELD: strategy <DeploymentStrategy>");
    assert!(
        ex.lines()
            .any(|l| l.trim() == "rollingUpdate\t<RollingUpdateDeployment>"),
        "{ex}"
    );
    let ex = srv.ok(&["explain", "cronjobs.spec.schedule"]);
    assert_contains(&ex, "FIELD: schedule <string>");
    assert_contains(&ex, "Cron format");
    // Recursive explain works for a nested type.
    let ex = srv.ok(&["explain", "configmaps", "--recursive"]);
    assert!(
        ex.lines()
            .any(|l| l.trim_start().starts_with("binaryData\t<map[string]string>")),
        "{ex}"
    );
    // An unknown field is refused by kubectl from the schema.
    let err = srv.fails(&["explain", "pods.spec.nope"]);
    assert_contains(&err, "field \"nope\" does not exist");
}

#[test]
fn requests_without_valid_credentials_are_unauthorized() {
    let srv = Server::start();
    // kubectl with a bogus token. kubectl >= 1.2x words the 401 from discovery generically
    // ("the server has asked for the client to provide credentials"), older ones print the
    // Status message ("Unauthorized"); either way it starts like this.
    let err = srv.fails(&["--token=bogus", "get", "pods"]);
    assert_contains(&err, "error: You must be logged in to the server (");
    let err = srv
        .kv("1.27")
        .fails(&["--token=bogus", "get", "configmaps", "-n", "default"]);
    assert_contains(&err, "error: You must be logged in to the server (");

    // No token at all.
    let (code, body) = srv.curl("GET", "/api", None, None, "");
    assert_eq!(code, 401, "{body}");
    let st: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("401 body is not JSON ({e}): {body}"));
    assert_eq!(st["kind"], "Status");
    assert_eq!(st["status"], "Failure");
    assert_eq!(st["reason"], "Unauthorized");
    assert_eq!(st["code"], 401);
    let (code, _) = srv.curl("GET", "/api/v1/namespaces/default/configmaps", None, None, "");
    assert_eq!(code, 401);
    let (code, _) = srv.curl(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        Some("not-the-token"),
        None,
        "",
    );
    assert_eq!(code, 401);
    // A refused request with a body: the answer must arrive intact (HTTP/2 included).
    for _ in 0..5 {
        let (code, _) = srv.curl(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            None,
            Some(b"{}"),
            "application/json",
        );
        assert_eq!(
            code, 401,
            "POST without credentials (curl reports 0 when the stream breaks)"
        );
    }
}
