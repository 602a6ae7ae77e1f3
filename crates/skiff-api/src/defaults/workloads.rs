//! apps/v1 and batch/v1 defaults (pkg/apis/apps/v1/defaults.go, pkg/apis/batch/v1/defaults.go),
//! plus the Job selector generation the Job strategy performs on create.

use super::pod::template;
use super::util::{child, each, existing, has, set, strip_null_timestamp};
use serde_json::{json, Map, Value};

fn spec_template(spec: &mut Map<String, Value>) {
    if let Some(t) = existing(spec, "template") {
        template(t);
    }
}

/// Deployment.
pub(crate) fn deployment(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "replicas", json!(1));
    if let Some(strategy) = child(spec, "strategy") {
        set(strategy, "type", json!("RollingUpdate"));
        if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = child(strategy, "rollingUpdate") {
                set(ru, "maxUnavailable", json!("25%"));
                set(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    spec_template(spec);
}

/// ReplicaSet.
pub(crate) fn replica_set(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "replicas", json!(1));
    spec_template(spec);
}

/// ReplicationController: selector and labels come from the template when empty.
pub(crate) fn replication_controller(obj: &mut Map<String, Value>) {
    let tl = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned();
    if let Some(tl) = tl.filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) {
        if let Some(spec) = child(obj, "spec") {
            if spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                spec.insert("selector".into(), tl.clone());
            }
        }
        if let Some(meta) = child(obj, "metadata") {
            if meta.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty) {
                meta.insert("labels".into(), tl);
            }
        }
    }
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "replicas", json!(1));
    spec_template(spec);
}

/// StatefulSet.
pub(crate) fn stateful_set(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    if let Some(us) = child(spec, "updateStrategy") {
        set(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = child(us, "rollingUpdate") {
                set(ru, "partition", json!(0));
            }
        }
    }
    if let Some(p) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        set(p, "whenDeleted", json!("Retain"));
        set(p, "whenScaled", json!("Retain"));
    }
    set(spec, "replicas", json!(1));
    set(spec, "revisionHistoryLimit", json!(10));
    for pvc in each(spec, "volumeClaimTemplates") {
        strip_null_timestamp(existing(pvc, "metadata"));
        if let Some(s) = child(pvc, "spec") {
            set(s, "volumeMode", json!("Filesystem"));
        }
        if let Some(st) = child(pvc, "status") {
            set(st, "phase", json!("Pending"));
        }
    }
    spec_template(spec);
}

/// DaemonSet.
pub(crate) fn daemon_set(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    if let Some(us) = child(spec, "updateStrategy") {
        set(us, "type", json!("RollingUpdate"));
        if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            if let Some(ru) = child(us, "rollingUpdate") {
                set(ru, "maxUnavailable", json!(1));
                set(ru, "maxSurge", json!(0));
            }
        }
    }
    set(spec, "revisionHistoryLimit", json!(10));
    spec_template(spec);
}

/// Job: counts, policies, the generated selector and labels (when the uid is known).
pub(crate) fn job(obj: &mut Map<String, Value>) {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = obj
        .get("metadata")
        .and_then(|m| m.get("uid"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = child(obj, "spec") else { return };
    if !has(spec, "completions") && !has(spec, "parallelism") {
        spec.insert("completions".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    let backoff = if has(spec, "backoffLimitPerIndex") {
        json!(i32::MAX)
    } else {
        json!(6)
    };
    set(spec, "backoffLimit", backoff);
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    let replacement = if has(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set(spec, "podReplacementPolicy", json!(replacement));
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && !uid.is_empty() {
        generate_selector(spec, &name, &uid);
    }
    spec_template(spec);
    let tl = spec
        .get("template")
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned();
    if let Some(tl) = tl.filter(Value::is_object) {
        if let Some(meta) = child(obj, "metadata") {
            if meta.get("labels").and_then(Value::as_object).is_none_or(Map::is_empty) {
                meta.insert("labels".into(), tl);
            }
        }
    }
}

/// The Job strategy's `generateSelector`: job-name and controller-uid labels on the template
/// (both the legacy and the `batch.kubernetes.io/` forms), and a selector on the uid.
fn generate_selector(spec: &mut Map<String, Value>, name: &str, uid: &str) {
    if let Some(labels) = child(spec, "template")
        .and_then(|t| child(t, "metadata"))
        .and_then(|m| child(m, "labels"))
    {
        for (k, v) in [
            ("job-name", name),
            ("batch.kubernetes.io/job-name", name),
            ("controller-uid", uid),
            ("batch.kubernetes.io/controller-uid", uid),
        ] {
            set(labels, k, json!(v));
        }
    }
    if let Some(ml) = child(spec, "selector").and_then(|s| child(s, "matchLabels")) {
        set(ml, "batch.kubernetes.io/controller-uid", json!(uid));
    }
}

/// CronJob.
pub(crate) fn cron_job(obj: &mut Map<String, Value>) {
    let Some(spec) = child(obj, "spec") else { return };
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(jt) = existing(spec, "jobTemplate") {
        strip_null_timestamp(existing(jt, "metadata"));
        if let Some(js) = existing(jt, "spec") {
            spec_template(js);
        }
    }
}
