use jiff::Timestamp;
use serde_json::{json, Value};

use super::*;
use crate::registry::{find, RESOURCES};

const NOW: &str = "2024-05-01T12:00:00Z";
const CREATED: &str = "2024-05-01T11:55:00Z";

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": CREATED})
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "side", "image": "busybox"}]}})
}

/// One realistic object per kind and the full row upstream prints for it.
fn rows() -> Vec<(&'static str, &'static str, &'static str, Value, Value)> {
    vec![
        (
            "",
            "v1",
            "pods",
            json!({"metadata": meta("web-7d9c"), "spec": {"nodeName": "node-1", "containers": [{"name": "nginx"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}],
                "containerStatuses": [{"name": "nginx", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
            json!([
                "web-7d9c",
                "1/1",
                "Running",
                "0",
                "5m",
                "10.244.0.5",
                "node-1",
                "<none>",
                "<none>"
            ]),
        ),
        (
            "apps",
            "v1",
            "deployments",
            json!({"metadata": meta("web"), "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}),
            json!(["web", "2/3", 3, 2, "5m", "nginx,side", "nginx:1.27,busybox", "app=web"]),
        ),
        (
            "apps",
            "v1",
            "replicasets",
            json!({"metadata": meta("web-7d9c"), "spec": {"replicas": 3,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d9c"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 3}}),
            json!([
                "web-7d9c",
                3,
                3,
                3,
                "5m",
                "nginx,side",
                "nginx:1.27,busybox",
                "app=web,pod-template-hash=7d9c"
            ]),
        ),
        (
            "",
            "v1",
            "replicationcontrollers",
            json!({"metadata": meta("rc"), "spec": {"replicas": 2, "selector": {"app": "web"},
            "template": template()}, "status": {"replicas": 2, "readyReplicas": 1}}),
            json!(["rc", 2, 2, 1, "5m", "nginx,side", "nginx:1.27,busybox", "app=web"]),
        ),
        (
            "apps",
            "v1",
            "statefulsets",
            json!({"metadata": meta("db"), "spec": {"replicas": 3, "template": template()},
            "status": {"readyReplicas": 1}}),
            json!(["db", "1/3", "5m", "nginx,side", "nginx:1.27,busybox"]),
        ),
        (
            "apps",
            "v1",
            "daemonsets",
            json!({"metadata": meta("agent"), "spec": {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
            json!([
                "agent",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "5m",
                "a",
                "agent:1",
                "app=agent"
            ]),
        ),
        (
            "batch",
            "v1",
            "jobs",
            json!({"metadata": meta("pi"), "spec": {"completions": 1, "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}, "template": template()},
            "status": {"succeeded": 1, "startTime": "2024-05-01T11:55:00Z", "completionTime": "2024-05-01T11:55:12Z",
                "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}),
            json!([
                "pi",
                "Complete",
                "1/1",
                "12s",
                "5m",
                "nginx,side",
                "nginx:1.27,busybox",
                "batch.kubernetes.io/controller-uid=abc"
            ]),
        ),
        (
            "batch",
            "v1",
            "cronjobs",
            json!({"metadata": meta("hello"), "spec": {"schedule": "*/1 * * * *", "suspend": false,
            "jobTemplate": {"spec": {"template": template()}}},
            "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": "2024-05-01T11:59:00Z"}}),
            json!([
                "hello",
                "*/1 * * * *",
                "<none>",
                "False",
                1,
                "60s",
                "5m",
                "nginx,side",
                "nginx:1.27,busybox",
                "<none>"
            ]),
        ),
        (
            "",
            "v1",
            "services",
            json!({"metadata": meta("web"), "spec": {"type": "NodePort", "clusterIP": "10.43.0.12",
            "clusterIPs": ["10.43.0.12"], "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 31190, "protocol": "TCP"}]}}),
            json!([
                "web",
                "NodePort",
                "10.43.0.12",
                "<none>",
                "80:31190/TCP",
                "5m",
                "app=web"
            ]),
        ),
        (
            "",
            "v1",
            "endpoints",
            json!({"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "ports": [{"port": 80}]}]}),
            json!(["web", "10.244.0.5:80", "5m"]),
        ),
        (
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            json!({"metadata": meta("web-abc"), "addressType": "IPv4",
            "ports": [{"name": "http", "port": 80}], "endpoints": [{"addresses": ["10.244.0.5"]}, {"addresses": ["10.244.0.6"]}]}),
            json!(["web-abc", "IPv4", "80", "10.244.0.5,10.244.0.6", "5m"]),
        ),
        (
            "",
            "v1",
            "configmaps",
            json!({"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
            json!(["cfg", 3, "5m"]),
        ),
        (
            "",
            "v1",
            "secrets",
            json!({"metadata": meta("s"), "type": "Opaque", "data": {"k": "dg=="}}),
            json!(["s", "Opaque", 1, "5m"]),
        ),
        (
            "",
            "v1",
            "namespaces",
            json!({"metadata": {"name": "default", "creationTimestamp": CREATED}, "status": {"phase": "Active"}}),
            json!(["default", "Active", "5m"]),
        ),
        (
            "",
            "v1",
            "nodes",
            json!({"metadata": {"name": "node-1", "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0", "containerRuntimeVersion": "skiff://0.1.0"}}}),
            json!([
                "node-1",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "5m",
                "v1.33.0",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "skiff://0.1.0"
            ]),
        ),
        (
            "",
            "v1",
            "persistentvolumeclaims",
            json!({"metadata": meta("data"), "spec": {"volumeName": "pv-1", "storageClassName": "local",
            "volumeMode": "Filesystem", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}),
            json!([
                "data",
                "Bound",
                "pv-1",
                "1Gi",
                "RWO",
                "local",
                "<unset>",
                "5m",
                "Filesystem"
            ]),
        ),
        (
            "",
            "v1",
            "persistentvolumes",
            json!({"metadata": {"name": "pv-1", "creationTimestamp": CREATED},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "local", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}}),
            json!([
                "pv-1",
                "1Gi",
                "RWO,RWX",
                "Delete",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "5m",
                "Filesystem"
            ]),
        ),
        (
            "",
            "v1",
            "events",
            json!({"metadata": meta("web.17a"), "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{nginx}"},
            "reason": "Pulled", "message": "Container image pulled\n", "type": "Normal", "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T11:56:00Z", "lastTimestamp": "2024-05-01T11:58:00Z", "count": 2}),
            json!([
                "2m",
                "Normal",
                "Pulled",
                "pod/web",
                "spec.containers{nginx}",
                "kubelet, node-1",
                "Container image pulled",
                "4m",
                2,
                "web.17a"
            ]),
        ),
        (
            "events.k8s.io",
            "v1",
            "events",
            json!({"apiVersion": "events.k8s.io/v1", "metadata": meta("web.17b"),
            "regarding": {"kind": "Pod", "name": "web"}, "reason": "Scheduled", "note": "Successfully assigned default/web to node-1",
            "type": "Normal", "reportingController": "default-scheduler", "reportingInstance": "sched-1", "eventTime": "2024-05-01T11:59:00.000000Z"}),
            json!([
                "60s",
                "Normal",
                "Scheduled",
                "pod/web",
                "",
                "default-scheduler, sched-1",
                "Successfully assigned default/web to node-1",
                "60s",
                1,
                "web.17b"
            ]),
        ),
        (
            "",
            "v1",
            "serviceaccounts",
            json!({"metadata": meta("default"), "secrets": [{"name": "t"}]}),
            json!(["default", 1, "5m"]),
        ),
        (
            "networking.k8s.io",
            "v1",
            "ingresses",
            json!({"metadata": meta("ing"), "spec": {"ingressClassName": "nginx",
            "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}], "tls": [{"hosts": ["a.example.com"]}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.50"}]}}}),
            json!([
                "ing",
                "nginx",
                "a.example.com,b.example.com",
                "192.168.1.50",
                "80, 443",
                "5m"
            ]),
        ),
        (
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            json!({"metadata": meta("web"), "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2}}),
            json!(["web", "Deployment/web", "cpu: <unknown>/50%", "1", 10, 2, "5m"]),
        ),
        (
            "storage.k8s.io",
            "v1",
            "storageclasses",
            json!({"metadata": {"name": "local-path", "creationTimestamp": CREATED,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}),
            json!([
                "local-path (default)",
                "rancher.io/local-path",
                "Delete",
                "WaitForFirstConsumer",
                false,
                "5m"
            ]),
        ),
        (
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            json!({"metadata": meta("v1.apps"), "spec": {"group": "apps", "version": "v1"},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}}),
            json!(["v1.apps", "Local", "True", "5m"]),
        ),
        (
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            json!({"metadata": meta("v1beta1.metrics.k8s.io"),
            "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
            json!([
                "v1beta1.metrics.k8s.io",
                "kube-system/metrics-server",
                "False (MissingEndpoints)",
                "5m"
            ]),
        ),
        (
            "coordination.k8s.io",
            "v1",
            "leases",
            json!({"metadata": meta("node-1"), "spec": {"holderIdentity": "node-1"}}),
            json!(["node-1", "node-1", "5m"]),
        ),
        (
            "apps",
            "v1",
            "controllerrevisions",
            json!({"metadata": {"name": "db-5d8f", "namespace": "default", "creationTimestamp": CREATED,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2}),
            json!(["db-5d8f", "statefulset.apps/db", 2, "5m"]),
        ),
        (
            "",
            "v1",
            "resourcequotas",
            json!({"metadata": meta("q"), "status": {"hard": {"pods": "10", "limits.memory": "1Gi"},
            "used": {"pods": "2", "limits.memory": "256Mi"}}}),
            json!(["q", "pods: 2/10", "limits.memory: 256Mi/1Gi", "5m"]),
        ),
        (
            "",
            "v1",
            "limitranges",
            json!({"metadata": meta("limits")}),
            json!(["limits", "2024-05-01T11:55:00Z"]),
        ),
    ]
}

#[test]
fn one_row_per_kind() {
    let now: Timestamp = NOW.parse().unwrap();
    let mut seen = Vec::new();
    for (group, version, plural, obj, want) in rows() {
        let def = find(group, version, plural).unwrap_or_else(|| panic!("{group}/{plural} not served"));
        let got = Value::Array(cells(def, &obj, now));
        assert_eq!(got, want, "{group}/{plural}");
        assert_eq!(
            columns(def).len(),
            got.as_array().map_or(0, Vec::len),
            "{group}/{plural} cell count"
        );
        seen.push((def.group, def.plural));
    }
    for def in RESOURCES {
        assert!(
            seen.contains(&(def.group, def.plural)),
            "no row test for {}/{}",
            def.group,
            def.plural
        );
    }
}

#[test]
fn column_definitions_match_upstream() {
    let names = |g: &str, v: &str, p: &str| -> Vec<(String, String, i64)> {
        columns(find(g, v, p).unwrap())
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["type"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let s = |n: &str, t: &str, p: i64| (n.to_string(), t.to_string(), p);
    assert_eq!(
        names("", "v1", "pods"),
        vec![
            s("Name", "string", 0),
            s("Ready", "string", 0),
            s("Status", "string", 0),
            s("Restarts", "string", 0),
            s("Age", "string", 0),
            s("IP", "string", 1),
            s("Node", "string", 1),
            s("Nominated Node", "string", 1),
            s("Readiness Gates", "string", 1)
        ]
    );
    assert_eq!(
        names("", "v1", "events"),
        vec![
            s("Last Seen", "string", 0),
            s("Type", "string", 0),
            s("Reason", "string", 0),
            s("Object", "string", 0),
            s("Subobject", "string", 1),
            s("Source", "string", 1),
            s("Message", "string", 0),
            s("First Seen", "string", 1),
            s("Count", "string", 1),
            s("Name", "string", 1)
        ]
    );
    assert_eq!(
        names("", "v1", "limitranges"),
        vec![s("Name", "string", 0), s("Created At", "date", 0)]
    );
    assert_eq!(names("batch", "v1", "cronjobs")[3], s("Suspend", "boolean", 0));
    let pod_cols = columns(find("", "v1", "pods").unwrap());
    assert_eq!(pod_cols[0]["format"], json!("name"));
    assert_eq!(pod_cols[1]["format"], json!(""));
    let ev_cols = columns(find("", "v1", "events").unwrap());
    assert_eq!(ev_cols[9]["format"], json!("name"));
}

#[test]
fn numbers_are_json_integers() {
    let now: Timestamp = NOW.parse().unwrap();
    for (group, version, plural, obj, _) in rows() {
        let def = find(group, version, plural).unwrap();
        let row = cells(def, &obj, now);
        for (i, (cell, col)) in row.iter().zip(columns(def)).enumerate() {
            if col["type"] == json!("integer") {
                assert!(cell.is_i64(), "{plural} column {i} must be an integer");
            }
        }
    }
}

#[test]
fn deployment_selector_prints_empty_not_none() {
    let now: Timestamp = NOW.parse().unwrap();
    let d = find("apps", "v1", "deployments").unwrap();
    let row = cells(d, &json!({"metadata": meta("x")}), now);
    assert_eq!(row[7], json!(""));
    let rs = find("apps", "v1", "replicasets").unwrap();
    let row = cells(rs, &json!({"metadata": meta("x")}), now);
    assert_eq!(row[7], json!("<none>"));
}
