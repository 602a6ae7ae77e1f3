//! `kubectl get` in all its forms: tables of every kind, `-o wide|yaml|json|name|jsonpath`,
//! label selectors, `-L`, `--show-labels`, `-A`, `get all`, pagination, field selectors; and
//! `describe` of the kinds the seeds do not cover, with events.
mod common;

use common::*;

const LABELLED: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  labels: {env: prod, tier: fe}
data: {k: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: b
  labels: {env: dev, tier: be}
data: {k: "2", l: "3"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c
  labels: {env: qa}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: d
data: {x: "y"}
"#;

fn names(out: &str) -> Vec<String> {
    lines(out)
}

#[test]
fn selectors_output_formats_and_listing() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "sel"]);
    k.ok(&["create", "namespace", "sel2"]);
    // Every namespace gets the cluster CA ConfigMap, as on a real cluster.
    common::wait_until(std::time::Duration::from_secs(30), "kube-root-ca.crt in sel", || {
        k.run(&["get", "cm", "kube-root-ca.crt", "-n", "sel"]).success()
    });
    let out = k.ok_stdin(&["apply", "-n", "sel", "-f", "-"], LABELLED);
    assert_eq!(
        lines(&out),
        [
            "configmap/a created",
            "configmap/b created",
            "configmap/c created",
            "configmap/d created"
        ]
    );
    k.ok(&["create", "configmap", "other", "-n", "sel2", "--from-literal=k=v"]);
    k.ok(&["label", "configmap", "other", "env=prod", "-n", "sel2"]);

    let sel = |s: &str| -> Vec<String> { names(&k.ok(&["get", "cm", "-n", "sel", "-l", s, "-o", "name"])) };
    let cm = |v: &[&str]| -> Vec<String> { v.iter().map(|n| format!("configmap/{n}")).collect() };
    assert_eq!(sel("env=prod"), cm(&["a"]));
    assert_eq!(sel("env==prod"), cm(&["a"]));
    assert_eq!(
        sel("env!=prod"),
        cm(&["b", "c", "d", "kube-root-ca.crt"]),
        "!= also matches objects without the key"
    );
    assert_eq!(sel("env in (prod,qa)"), cm(&["a", "c"]));
    assert_eq!(sel("env in (prod, qa)"), cm(&["a", "c"]));
    assert_eq!(sel("env notin (prod,qa)"), cm(&["b", "d", "kube-root-ca.crt"]));
    assert_eq!(sel("env"), cm(&["a", "b", "c"]));
    assert_eq!(sel("!env"), cm(&["d", "kube-root-ca.crt"]));
    assert_eq!(sel("env=prod,tier=fe"), cm(&["a"]));
    assert_eq!(sel("env,!tier"), cm(&["c"]));
    assert_eq!(sel("tier in (fe,be),env!=dev"), cm(&["a"]));
    let out = k.run(&["get", "cm", "-n", "sel", "-l", "env=none"]);
    assert!(out.success(), "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr.trim(), "No resources found in sel namespace.");
    // A malformed selector is refused.
    let err = k.fails(&["get", "cm", "-n", "sel", "-l", "env in (prod"]);
    assert!(!err.is_empty());

    // Table with -L and --show-labels.
    let t = Table::parse(&k.ok(&["get", "cm", "-n", "sel", "-L", "env,tier"]));
    t.assert_headers(&["NAME", "DATA", "AGE", "ENV", "TIER"]);
    assert_cells(&t.row("a"), &[("DATA", "1"), ("ENV", "prod"), ("TIER", "fe")]);
    assert_cells(&t.row("b"), &[("DATA", "2"), ("ENV", "dev"), ("TIER", "be")]);
    assert_cells(&t.row("c"), &[("DATA", "0"), ("ENV", "qa"), ("TIER", "")]);
    assert_cells(&t.row("d"), &[("DATA", "1"), ("ENV", ""), ("TIER", "")]);
    assert_eq!(
        t.column("NAME"),
        ["a", "b", "c", "d", "kube-root-ca.crt"],
        "lists are sorted by name"
    );
    let t = Table::parse(&k.ok(&["get", "cm", "-n", "sel", "--show-labels"]));
    t.assert_headers(&["NAME", "DATA", "AGE", "LABELS"]);
    assert_cells(&t.row("a"), &[("LABELS", "env=prod,tier=fe")]);
    assert_cells(&t.row("d"), &[("LABELS", "<none>")]);

    // -A: NAMESPACE column, objects from every namespace.
    let t = Table::parse(&k.ok(&["get", "cm", "-A", "-l", "env=prod"]));
    t.assert_headers(&["NAMESPACE", "NAME", "DATA", "AGE"]);
    assert_cells(&t.row_by("NAME", "a"), &[("NAMESPACE", "sel")]);
    assert_cells(&t.row_by("NAME", "other"), &[("NAMESPACE", "sel2")]);
    assert_eq!(t.rows.len(), 2);
    let out = k.ok(&["get", "cm", "--all-namespaces", "-l", "env=prod", "-o", "name"]);
    assert_eq!(names(&out), cm(&["a", "other"]));

    // Single object and several names.
    let t = Table::parse(&k.ok(&["get", "cm", "a", "-n", "sel"]));
    assert_eq!(t.rows.len(), 1);
    assert_eq!(
        names(&k.ok(&["get", "cm", "a", "c", "-n", "sel", "-o", "name"])),
        cm(&["a", "c"])
    );
    let out = k.run(&["get", "cm", "a", "nope", "-n", "sel", "-o", "name"]);
    assert!(!out.success());
    assert_eq!(names(&out.stdout), cm(&["a"]));
    assert_contains(
        &out.stderr,
        "Error from server (NotFound): configmaps \"nope\" not found",
    );

    // -o yaml / json of one object and of a list.
    let y = k.ok(&["get", "cm", "b", "-n", "sel", "-o", "yaml"]);
    assert!(
        y.starts_with("apiVersion: v1\ndata:\n  k: \"2\"\n  l: \"3\"\nkind: ConfigMap\nmetadata:\n"),
        "{y}"
    );
    for needle in [
        "  name: b\n",
        "  namespace: sel\n",
        "    env: dev\n",
        "  resourceVersion: \"",
        "  uid: ",
        "  creationTimestamp: \"",
    ] {
        assert_contains(&y, needle);
    }
    let y = k.ok(&["get", "cm", "-n", "sel", "-l", "env", "-o", "yaml"]);
    assert!(y.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n"), "{y}");
    assert!(y.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"), "{y}");
    let j: serde_json::Value = serde_json::from_str(&k.ok(&["get", "cm", "a", "-n", "sel", "-o", "json"])).unwrap();
    assert_eq!(j["kind"], "ConfigMap");
    assert_eq!(j["apiVersion"], "v1");
    assert_eq!(j["metadata"]["name"], "a");
    assert_eq!(j["metadata"]["labels"]["tier"], "fe");
    assert_eq!(j["data"]["k"], "1");
    let j: serde_json::Value = serde_json::from_str(&k.ok(&["get", "cm", "-n", "sel", "-o", "json"])).unwrap();
    assert_eq!(j["kind"], "List");
    let items = j["items"].as_array().unwrap();
    let item_names: Vec<&str> = items.iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    for n in ["a", "b", "c", "d"] {
        assert!(item_names.contains(&n), "{item_names:?}");
    }
    assert!(items
        .iter()
        .all(|i| i["kind"] == "ConfigMap" && i["apiVersion"] == "v1"));

    // jsonpath, custom-columns, sort-by, field selectors, pagination.
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-n",
            "sel",
            "-l",
            "env",
            "-o",
            "jsonpath={.items[*].metadata.name}"
        ]),
        "a b c"
    );
    assert_eq!(k.ok(&["get", "cm", "b", "-n", "sel", "-o", "jsonpath={.data.l}"]), "3");
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "-n",
            "sel",
            "-o",
            "jsonpath={range .items[?(@.metadata.labels.env==\"qa\")]}{.metadata.name}{end}"
        ]),
        "c"
    );
    let t = Table::parse(&k.ok(&[
        "get",
        "cm",
        "-n",
        "sel",
        "-l",
        "env",
        "-o",
        "custom-columns=NAME:.metadata.name,ENV:.metadata.labels.env",
    ]));
    t.assert_headers(&["NAME", "ENV"]);
    assert_eq!(t.rows, [["a", "prod"], ["b", "dev"], ["c", "qa"]]);
    let out = k.ok(&[
        "get",
        "cm",
        "-n",
        "sel",
        "-l",
        "env",
        "--sort-by=.metadata.labels.env",
        "-o",
        "name",
    ]);
    assert_eq!(names(&out), cm(&["b", "a", "c"]));
    let t = Table::parse(&k.ok(&["get", "cm", "-n", "sel", "-l", "env", "--sort-by=.metadata.labels.env"]));
    assert_eq!(t.column("NAME"), ["b", "a", "c"]);
    assert_eq!(
        names(&k.ok(&[
            "get",
            "cm",
            "-n",
            "sel",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name"
        ])),
        cm(&["b"])
    );
    assert_eq!(
        names(&k.ok(&[
            "get",
            "cm",
            "-n",
            "sel",
            "--field-selector",
            "metadata.name!=b",
            "-l",
            "env",
            "-o",
            "name"
        ])),
        cm(&["a", "c"])
    );
    let paged = k.ok(&["get", "cm", "-n", "sel", "--chunk-size=1", "-o", "name"]);
    let mine: Vec<String> = names(&paged)
        .into_iter()
        .filter(|n| cm(&["a", "b", "c", "d"]).contains(n))
        .collect();
    assert_eq!(
        mine,
        cm(&["a", "b", "c", "d"]),
        "pagination with continue tokens returns every item once"
    );
    let t = Table::parse_all(&k.ok(&["get", "cm", "-n", "sel", "--chunk-size=2"]));
    assert_eq!(t.len(), 1, "one header for all pages");
    // Raw list: resourceVersion and continue.
    let raw: serde_json::Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1/namespaces/sel/configmaps?limit=2"])).unwrap();
    assert_eq!(raw["kind"], "ConfigMapList");
    assert_eq!(raw["items"].as_array().unwrap().len(), 2);
    assert!(
        raw["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{raw}"
    );
    let cont = raw["metadata"]["continue"].as_str().expect("continue token");
    let raw2: serde_json::Value = serde_json::from_str(&k.ok(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/sel/configmaps?limit=2&continue={cont}"),
    ]))
    .unwrap();
    assert_eq!(raw2["items"][0]["metadata"]["name"], "c");
}

#[test]
fn every_kind_as_table_get_all_and_describe() {
    let srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "kinds"]);
    let ns = "kinds";
    for f in [
        "pod-nginx-labeled.yaml",
        "service-my-service.yaml",
        "deployment-mydeploy.yaml",
        "replicaset-myreplicaset.yaml",
        "statefulset-mysts-with-service.yaml",
        "daemonset-fluentd.yaml",
        "job-pi.yaml",
        "cronjob-hello.yaml",
        "replicationcontroller-kubia.yaml",
        "configmap-my-configmap.yaml",
        "secret-mysecret.yaml",
    ] {
        k.ok(&["apply", "-n", ns, "-f", seed(f).to_str().unwrap()]);
    }
    let extra = r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: builder}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: team-quota}
spec:
  hard: {pods: "10", requests.cpu: "4"}
---
apiVersion: v1
kind: LimitRange
metadata: {name: limits}
spec:
  limits:
  - type: Container
    default: {cpu: 500m}
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
- addresses: [{ip: 10.0.0.1}, {ip: 10.0.0.2}]
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-abc
  labels: {kubernetes.io/service-name: manual}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- addresses: [10.0.0.1]
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: my-lock}
spec: {holderIdentity: node-a, leaseDurationSeconds: 40}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web, port: {number: 80}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: mydeploy}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
---
apiVersion: apps/v1
kind: ControllerRevision
metadata: {name: web-rev-1}
revision: 1
data: {spec: {template: {metadata: {labels: {app: web}}}}}
"#;
    let out = k.ok_stdin(&["apply", "-n", ns, "-f", "-"], extra);
    assert_eq!(
        lines(&out),
        [
            "serviceaccount/builder created",
            "persistentvolumeclaim/data created",
            "resourcequota/team-quota created",
            "limitrange/limits created",
            "endpoints/manual created",
            "endpointslice.discovery.k8s.io/manual-abc created",
            "lease.coordination.k8s.io/my-lock created",
            "ingress.networking.k8s.io/web created",
            "horizontalpodautoscaler.autoscaling/web created",
            "controllerrevision.apps/web-rev-1 created",
        ]
    );
    let cluster = r#"apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-kinds}
spec:
  capacity: {storage: 5Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/pv-kinds}
---
apiVersion: v1
kind: Node
metadata:
  name: fake-node
  labels: {node-role.kubernetes.io/control-plane: ""}
"#;
    let out = k.ok_stdin(&["apply", "-f", "-"], cluster);
    assert_eq!(
        lines(&out),
        ["persistentvolume/pv-kinds created", "node/fake-node created"]
    );

    // An event about the pod, as a kubelet would write it.
    let uid = k.ok(&["get", "pod", "nginx", "-n", ns, "-o", "jsonpath={.metadata.uid}"]);
    let now = now_rfc3339();
    let ev = format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: nginx.1}}\ninvolvedObject: {{apiVersion: v1, kind: Pod, name: nginx, namespace: {ns}, uid: {uid}}}\nreason: Pulled\nmessage: Test event message\ntype: Normal\nsource: {{component: kubelet}}\nfirstTimestamp: \"{now}\"\nlastTimestamp: \"{now}\"\ncount: 1\n"
    );
    assert_eq!(
        lines(&k.ok_stdin(&["create", "-n", ns, "-f", "-"], &ev)),
        ["event/nginx.1 created"]
    );

    let get = |args: &[&str]| Table::parse(&k.ok(args));
    let t = get(&["get", "sa", "builder", "-n", ns]);
    t.assert_headers(&["NAME", "SECRETS", "AGE"]);
    assert_cells(&t.row("builder"), &[("SECRETS", "0")]);
    // The default StorageClass (local-path, Immediate) provisions and binds the claim.
    common::wait_until(std::time::Duration::from_secs(30), "the claim is bound", || {
        k.run(&["get", "pvc", "data", "-n", ns, "-o", "jsonpath={.status.phase}"])
            .stdout
            == "Bound"
    });
    let t = get(&["get", "pvc", "-n", ns]);
    t.assert_headers(&[
        "NAME",
        "STATUS",
        "VOLUME",
        "CAPACITY",
        "ACCESS MODES",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "AGE",
    ]);
    assert_cells(
        &t.row("data"),
        &[
            ("STATUS", "Bound"),
            ("CAPACITY", "1Gi"),
            ("STORAGECLASS", "local-path"),
            ("VOLUMEATTRIBUTESCLASS", "<unset>"),
        ],
    );
    let t = get(&["get", "pv", "pv-kinds"]);
    t.assert_headers(&[
        "NAME",
        "CAPACITY",
        "ACCESS MODES",
        "RECLAIM POLICY",
        "STATUS",
        "CLAIM",
        "STORAGECLASS",
        "VOLUMEATTRIBUTESCLASS",
        "REASON",
        "AGE",
    ]);
    assert_cells(
        &t.row("pv-kinds"),
        &[
            ("CAPACITY", "5Gi"),
            ("ACCESS MODES", "RWO"),
            ("RECLAIM POLICY", "Retain"),
        ],
    );
    assert_eq!(
        names(&k.ok(&["get", "quota", "-n", ns, "-o", "name"])),
        ["resourcequota/team-quota"]
    );
    let t = get(&["get", "limits", "-n", ns]);
    t.assert_headers(&["NAME", "CREATED AT"]);
    assert!(t.row("limits")["CREATED AT"].ends_with('Z'));
    let t = get(&["get", "ep", "manual", "-n", ns]);
    t.assert_headers(&["NAME", "ENDPOINTS", "AGE"]);
    assert_cells(&t.row("manual"), &[("ENDPOINTS", "10.0.0.1:80,10.0.0.2:80")]);
    let t = get(&["get", "endpointslices", "-n", ns]);
    t.assert_headers(&["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    assert_cells(
        &t.row("manual-abc"),
        &[("ADDRESSTYPE", "IPv4"), ("PORTS", "80"), ("ENDPOINTS", "10.0.0.1")],
    );
    let t = get(&["get", "leases", "-n", ns]);
    t.assert_headers(&["NAME", "HOLDER", "AGE"]);
    assert_cells(&t.row("my-lock"), &[("HOLDER", "node-a")]);
    let t = get(&["get", "ing", "-n", ns]);
    t.assert_headers(&["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]);
    assert_cells(
        &t.row("web"),
        &[
            ("CLASS", "<none>"),
            ("HOSTS", "example.com"),
            ("ADDRESS", ""),
            ("PORTS", "80"),
        ],
    );
    let t = get(&["get", "hpa", "-n", ns]);
    t.assert_headers(&["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]);
    assert_cells(
        &t.row("web"),
        &[
            ("REFERENCE", "Deployment/mydeploy"),
            ("MINPODS", "1"),
            ("MAXPODS", "5"),
            ("REPLICAS", "0"),
        ],
    );
    let t = get(&["get", "controllerrevisions", "-n", ns]);
    t.assert_headers(&["NAME", "CONTROLLER", "REVISION", "AGE"]);
    assert_cells(&t.row("web-rev-1"), &[("CONTROLLER", "<none>"), ("REVISION", "1")]);
    let t = get(&["get", "nodes"]);
    t.assert_headers(&["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    assert_cells(
        &t.row("fake-node"),
        &[("STATUS", "Unknown"), ("ROLES", "control-plane")],
    );
    let t = get(&["get", "events", "-n", ns]);
    t.assert_headers(&["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]);
    assert_cells(
        &t.row_by("OBJECT", "pod/nginx"),
        &[
            ("TYPE", "Normal"),
            ("REASON", "Pulled"),
            ("MESSAGE", "Test event message"),
        ],
    );
    // The same event through events.k8s.io/v1.
    let out = k.ok(&[
        "get",
        "events.v1.events.k8s.io",
        "-n",
        ns,
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    // (The scheduler may add FailedScheduling events for the pod: there are no nodes.)
    assert!(out.split_whitespace().any(|r| r == "Pulled"), "{out}");

    // describe pod shows the event.
    let d = k.ok(&["describe", "pod", "nginx", "-n", ns]);
    let ev_line = d
        .lines()
        .skip_while(|l| !l.starts_with("Events:"))
        .find(|l| l.contains("Pulled"))
        .unwrap_or_else(|| panic!("event not shown by describe:\n{d}"));
    let cells: Vec<&str> = ev_line.split_whitespace().collect();
    assert_eq!(cells[0], "Normal", "{ev_line}");
    assert_eq!(cells[1], "Pulled", "{ev_line}");
    assert_eq!(cells[3], "kubelet", "{ev_line}");
    assert!(ev_line.trim_end().ends_with("Test event message"), "{ev_line}");

    // describe every other kind.
    for (kind, name, nsd) in [
        ("serviceaccount", "builder", Some(ns)),
        ("pvc", "data", Some(ns)),
        ("pv", "pv-kinds", None),
        ("resourcequota", "team-quota", Some(ns)),
        ("limitrange", "limits", Some(ns)),
        ("endpoints", "manual", Some(ns)),
        ("endpointslice", "manual-abc", Some(ns)),
        ("lease", "my-lock", Some(ns)),
        ("ingress", "web", Some(ns)),
        ("hpa", "web", Some(ns)),
        ("controllerrevision", "web-rev-1", Some(ns)),
        ("node", "fake-node", None),
        ("event", "nginx.1", Some(ns)),
    ] {
        let mut args = vec!["describe", kind, name];
        if let Some(n) = nsd {
            args.extend(["-n", n]);
        }
        let out = k.ok(&args);
        assert_eq!(
            describe_field(&out, "Name").as_deref(),
            Some(name),
            "describe {kind}:\n{out}"
        );
    }
    let n = k.ok(&["describe", "namespace", ns]);
    assert_contains(&n, "Resource Quotas");
    assert_contains(&n, "team-quota");

    // get all: the "all" category, one table per kind with kind prefixes.
    let tables = Table::parse_all(&k.ok(&["get", "all", "-n", ns]));
    let all_names: Vec<String> = tables.iter().flat_map(|t| t.column("NAME")).collect();
    for want in [
        "pod/nginx",
        "replicationcontroller/kubia",
        "service/my-service",
        "service/mysts",
        "daemonset.apps/fluentd",
        "deployment.apps/mydeploy",
        "replicaset.apps/myreplicaset",
        "statefulset.apps/mysts",
        "horizontalpodautoscaler.autoscaling/web",
        "cronjob.batch/hello",
        "job.batch/pi",
    ] {
        assert!(
            all_names.contains(&want.to_string()),
            "get all lacks {want}: {all_names:?}"
        );
    }
    assert!(
        !all_names
            .iter()
            .any(|n| n.starts_with("configmap/") || n.starts_with("secret/")),
        "{all_names:?}"
    );
    assert_eq!(
        tables[0].headers,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "pods come first"
    );
    let out = k.run(&["get", "all", "-n", "default"]);
    assert!(out.success());
    // Several kinds in one get: prefixes and one table per kind.
    let tables = Table::parse_all(&k.ok(&["get", "deploy,rs", "-n", ns, "-o", "wide"]));
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0].column("NAME"), ["deployment.apps/mydeploy"]);
    // mydeploy's own ReplicaSet (made by the deployment controller) is listed too.
    let rs_names = tables[1].column("NAME");
    assert_eq!(rs_names.len(), 2, "{rs_names:?}");
    assert!(rs_names.contains(&"replicaset.apps/myreplicaset".to_string()));
    assert!(rs_names.iter().any(|n| n.starts_with("replicaset.apps/mydeploy-")));
    // -A over a cluster-scoped kind has no NAMESPACE column; nodes are not namespaced.
    let t = get(&["get", "pv", "-A"]);
    assert_eq!(t.headers[0], "NAME");
}
