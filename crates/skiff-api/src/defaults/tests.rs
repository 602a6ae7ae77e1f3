//! Defaulting tests: minimal objects as kubectl sends them, and the shape a real cluster returns.

use super::apply;
use crate::registry::find_kind;
use serde_json::{json, Value};

fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
    let def = find_kind(api_version, kind).unwrap();
    apply(def, &mut obj);
    obj
}

fn nginx_pod_spec() -> Value {
    json!({
        "containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
        "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "restartPolicy": "Always",
        "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30
    })
}

#[test]
fn kinds_get_the_upstream_shape() {
    let cases: Vec<(&str, &str, &str, Value, Value)> = vec![
        (
            "kubectl create deployment",
            "apps/v1",
            "Deployment",
            json!({"metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}}}}),
            json!({"metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                    "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": nginx_pod_spec()}}}),
        ),
        (
            "kubectl run",
            "v1",
            "Pod",
            json!({"metadata": {"name": "nginx", "creationTimestamp": null, "labels": {"run": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"},
                "status": {}}),
            json!({"metadata": {"name": "nginx", "creationTimestamp": null, "labels": {"run": "nginx"}},
                "spec": nginx_pod_spec(), "status": {"phase": "Pending", "qosClass": "BestEffort"}}),
        ),
        (
            "minimal service",
            "v1",
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "type": "ClusterIP", "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
                "status": {"loadBalancer": {}}}),
        ),
        (
            "job with generated selector",
            "batch/v1",
            "Job",
            json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}], "restartPolicy": "Never"}}}}),
            json!({"metadata": {"name": "pi", "uid": "u1", "labels": {"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi", "controller-uid": "u1", "job-name": "pi"}},
                "spec": {"backoffLimit": 6, "completionMode": "NonIndexed", "completions": 1, "parallelism": 1,
                    "podReplacementPolicy": "TerminatingOrFailed", "suspend": false,
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                    "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "batch.kubernetes.io/job-name": "pi", "controller-uid": "u1", "job-name": "pi"}},
                        "spec": {"containers": [{"name": "pi", "image": "perl:5.34", "imagePullPolicy": "IfNotPresent", "resources": {},
                            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "restartPolicy": "Never",
                            "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30}}}}),
        ),
        (
            "cronjob",
            "batch/v1",
            "CronJob",
            json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"metadata": {"creationTimestamp": null},
                "spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}}}),
            json!({"metadata": {"name": "c"}, "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Allow", "suspend": false,
                "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                "jobTemplate": {"metadata": {}, "spec": {"template": {"spec": nginx_pod_spec()}}}}}),
        ),
        (
            "statefulset",
            "apps/v1",
            "StatefulSet",
            json!({"metadata": {"name": "s"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "s",
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
            json!({"metadata": {"name": "s"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "serviceName": "s",
                "podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": nginx_pod_spec()},
                "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}]}}),
        ),
        (
            "daemonset",
            "apps/v1",
            "DaemonSet",
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
            json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": nginx_pod_spec()}}}),
        ),
        (
            "secret",
            "v1",
            "Secret",
            json!({"metadata": {"name": "s"}, "data": {"a": "Yg=="}}),
            json!({"metadata": {"name": "s"}, "data": {"a": "Yg=="}, "type": "Opaque"}),
        ),
        (
            "namespace",
            "v1",
            "Namespace",
            json!({"metadata": {"name": "dev"}}),
            json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        ),
        (
            "replication controller takes selector and labels from the template",
            "v1",
            "ReplicationController",
            json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
            json!({"metadata": {"name": "r", "labels": {"a": "b"}}, "spec": {"replicas": 1, "selector": {"a": "b"},
                "template": {"metadata": {"labels": {"a": "b"}}, "spec": nginx_pod_spec()}}}),
        ),
        (
            "pvc",
            "v1",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOnce"]}}),
            json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
        ),
        (
            "storageclass",
            "storage.k8s.io/v1",
            "StorageClass",
            json!({"metadata": {"name": "sc"}, "provisioner": "example.com/p"}),
            json!({"metadata": {"name": "sc"}, "provisioner": "example.com/p", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
        ),
        (
            "limitrange: default limit from max, default request from default then min",
            "v1",
            "LimitRange",
            json!({"metadata": {"name": "l"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}}]}}),
            json!({"metadata": {"name": "l"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
                    "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}},
                {"type": "Pod", "max": {"cpu": "4"}}]}}),
        ),
    ];
    for (name, api_version, kind, input, want) in cases {
        assert_eq!(defaulted(api_version, kind, input), want, "{name}");
    }
}

#[test]
fn pod_details_are_defaulted() {
    let pod = defaulted(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
            "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}, {"name": "c", "secret": {"secretName": "s"}}]}}),
    );
    let c = &pod["spec"]["containers"][0];
    let cases: Vec<(&str, &Value, Value)> = vec![
        ("pull policy for a tag", &c["imagePullPolicy"], json!("IfNotPresent")),
        ("port protocol", &c["ports"][0]["protocol"], json!("TCP")),
        (
            "fieldRef apiVersion",
            &c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
            json!("v1"),
        ),
        (
            "probe",
            &c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}),
        ),
        (
            "requests from limits",
            &c["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"}),
        ),
        (
            "emptyDir",
            &pod["spec"]["volumes"][0],
            json!({"name": "a", "emptyDir": {}}),
        ),
        (
            "configMap mode",
            &pod["spec"]["volumes"][1]["configMap"]["defaultMode"],
            json!(420),
        ),
        (
            "secret mode",
            &pod["spec"]["volumes"][2]["secret"]["defaultMode"],
            json!(420),
        ),
        ("qos", &pod["status"]["qosClass"], json!("Guaranteed")),
    ];
    for (name, got, want) in cases {
        assert_eq!(got, &want, "{name}");
    }
}

#[test]
fn defaults_keep_explicit_values_and_ignore_odd_input() {
    let d = defaulted(
        "apps/v1",
        "Deployment",
        json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(d["spec"]["replicas"], json!(0));
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    let s = defaulted(
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}),
    );
    assert!(s["spec"].get("ipFamilies").is_none());
    for odd in [
        json!(null),
        json!(1),
        json!({"spec": 3}),
        json!({"spec": {"template": []}}),
    ] {
        defaulted("apps/v1", "Deployment", odd);
    }
}
