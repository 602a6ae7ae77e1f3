//! apps/v1 and batch/v1 workload checks (pkg/apis/apps/validation, pkg/apis/batch/validation).

use super::cause::{invalid, nonnegative, not_supported, required, Bad, Cause};
use super::json::{arr, at, int_at, present, s};
use super::pod::{selector_value, template};
use super::selector;
use serde_json::Value;

fn opt_nonneg(obj: &Value, path: &[&str], field: &str, out: &mut Vec<Cause>) {
    if let Some(v) = int_at(obj, path) {
        nonnegative(field, v, out);
    }
}

/// Selector presence, syntax, non-emptiness and match against the template labels.
/// Returns false when the selector is missing (callers stop there, as upstream does for Deployments).
fn selector_and_template(spec: &Value, empty_msg: &str, out: &mut Vec<Cause>) -> bool {
    let Some(sel) = spec.get("selector").filter(|v| !v.is_null()) else {
        out.push(required("spec.selector", ""));
        return false;
    };
    selector::validate(sel, "spec.selector", out);
    if selector::is_empty(sel) {
        out.push(invalid("spec.selector", selector_value(sel), empty_msg));
    } else {
        template_labels_match(sel, spec, "spec.template.metadata.labels", out);
    }
    true
}

fn template_labels_match(sel: &Value, spec: &Value, field: &str, out: &mut Vec<Cause>) {
    let tl = at(spec, &["template", "metadata", "labels"]);
    if selector::matches(sel, tl) == Some(false) {
        out.push(invalid(
            field,
            super::cause::bad_json(Some(tl.unwrap_or(&Value::Null))).or_empty_map(),
            "`selector` does not match template `labels`",
        ));
    }
}

impl Bad {
    /// Go prints a nil `map[string]string` as `map[string]string(nil)`.
    fn or_empty_map(self) -> Bad {
        match self {
            Bad::Raw(s) if s == "null" => Bad::Raw("map[string]string(nil)".into()),
            other => other,
        }
    }
}

/// The restart policy rule of ReplicaSet-like templates.
fn restart_always(spec: &Value, out: &mut Vec<Cause>) {
    let rp = s(spec, &["template", "spec", "restartPolicy"]);
    if !rp.is_empty() && rp != "Always" {
        out.push(not_supported("spec.template.spec.restartPolicy", rp, &["Always"]));
    }
}

/// Deployment spec.
pub(crate) fn deployment(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    opt_nonneg(spec, &["replicas"], "spec.replicas", out);
    if !selector_and_template(spec, "empty selector is invalid for deployment", out) {
        return;
    }
    template(at(spec, &["template"]).unwrap_or(&Value::Null), "spec.template", out);
    restart_always(spec, out);
    if present(spec, &["template", "spec", "activeDeadlineSeconds"]) {
        let v = int_at(spec, &["template", "spec", "activeDeadlineSeconds"]).unwrap_or(0);
        out.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            v,
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    match s(spec, &["strategy", "type"]) {
        "Recreate" => {
            if present(spec, &["strategy", "rollingUpdate"]) {
                out.push(super::cause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => rolling_update(spec, out),
        t => out.push(not_supported("spec.strategy.type", t, &["Recreate", "RollingUpdate"])),
    }
    opt_nonneg(spec, &["minReadySeconds"], "spec.minReadySeconds", out);
    opt_nonneg(spec, &["revisionHistoryLimit"], "spec.revisionHistoryLimit", out);
    if let Some(p) = int_at(spec, &["progressDeadlineSeconds"]) {
        nonnegative("spec.progressDeadlineSeconds", p, out);
        if p <= int_at(spec, &["minReadySeconds"]).unwrap_or(0) {
            out.push(invalid(
                "spec.progressDeadlineSeconds",
                p,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

/// An IntOrString percent-or-count as Go's IntOrString Stringer prints it.
fn int_or_percent(v: Option<&Value>, field: &str, out: &mut Vec<Cause>) -> Option<i64> {
    match v {
        Some(Value::String(p)) => {
            let errs = super::names::percent(p);
            for msg in &errs {
                out.push(invalid(field, Bad::Raw(p.clone()), msg));
            }
            if errs.is_empty() {
                let n = p.trim_end_matches('%').parse::<i64>().unwrap_or(0);
                if n > 100 {
                    out.push(invalid(field, Bad::Raw(p.clone()), "must not be greater than 100%"));
                }
                return Some(n);
            }
            None
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            nonnegative(field, n, out);
            Some(n)
        }
        _ => Some(0),
    }
}

fn rolling_update(spec: &Value, out: &mut Vec<Cause>) {
    let Some(ru) = at(spec, &["strategy", "rollingUpdate"]).filter(|v| !v.is_null()) else {
        out.push(required(
            "spec.strategy.rollingUpdate",
            "this should be defaulted and never be nil",
        ));
        return;
    };
    let field = "spec.strategy.rollingUpdate.maxUnavailable";
    let mut scratch = Vec::new();
    let unavailable = int_or_percent(ru.get("maxUnavailable"), field, out);
    let surge = int_or_percent(ru.get("maxSurge"), "spec.strategy.rollingUpdate.maxSurge", &mut scratch);
    // maxSurge may be a percent above 100%, unlike maxUnavailable.
    out.extend(
        scratch
            .into_iter()
            .filter(|c| !c.message.ends_with("must not be greater than 100%")),
    );
    if unavailable == Some(0) && surge == Some(0) {
        let shown = match ru.get("maxUnavailable") {
            Some(Value::String(p)) => p.clone(),
            _ => "0".to_string(),
        };
        out.push(invalid(field, Bad::Raw(shown), "may not be 0 when `maxSurge` is 0"));
    }
}

/// ReplicaSet and ReplicationController specs.
pub(crate) fn replica_set(obj: &Value, legacy_map_selector: bool, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    opt_nonneg(spec, &["replicas"], "spec.replicas", out);
    opt_nonneg(spec, &["minReadySeconds"], "spec.minReadySeconds", out);
    if legacy_map_selector {
        // ReplicationController: a plain map selector, defaulted from the template labels.
        let sel = spec.get("selector").cloned().unwrap_or(Value::Null);
        let map_empty = sel.as_object().is_none_or(|m| m.is_empty());
        if map_empty {
            out.push(required("spec.selector", ""));
        } else {
            super::names::labels(Some(&sel), "spec.selector", out);
            let wrapped = serde_json::json!({"matchLabels": sel});
            if present(spec, &["template"]) {
                template_labels_match(&wrapped, spec, "spec.template.metadata.labels", out);
            }
        }
        if present(spec, &["template"]) {
            template(at(spec, &["template"]).unwrap_or(&Value::Null), "spec.template", out);
            restart_always(spec, out);
        } else {
            out.push(required("spec.template", ""));
        }
        return;
    }
    if !selector_and_template(spec, "empty selector is invalid for deployment", out) {
        return;
    }
    template(at(spec, &["template"]).unwrap_or(&Value::Null), "spec.template", out);
    restart_always(spec, out);
}

/// StatefulSet spec.
pub(crate) fn stateful_set(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    match s(spec, &["podManagementPolicy"]) {
        "" => out.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => out.push(invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    match s(spec, &["updateStrategy", "type"]) {
        "" => out.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if present(spec, &["updateStrategy", "rollingUpdate"]) {
                out.push(invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Bad::Raw("{}".into()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => opt_nonneg(
            spec,
            &["updateStrategy", "rollingUpdate", "partition"],
            "spec.updateStrategy.rollingUpdate.partition",
            out,
        ),
        other => out.push(invalid(
            "spec.updateStrategy",
            other,
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    opt_nonneg(spec, &["replicas"], "spec.replicas", out);
    if !selector_and_template(spec, "empty selector is invalid for statefulset", out) {
        return;
    }
    // Upstream does not validate a StatefulSet's pod spec: its volume mounts may name
    // volumeClaimTemplates, which are not volumes of the template.
    restart_always(spec, out);
    if present(spec, &["template", "spec", "activeDeadlineSeconds"]) {
        let v = int_at(spec, &["template", "spec", "activeDeadlineSeconds"]).unwrap_or(0);
        out.push(invalid(
            "spec.template.spec.activeDeadlineSeconds",
            v,
            "must not be specified",
        ));
    }
    for (i, c) in arr(spec, &["volumeClaimTemplates"]).iter().enumerate() {
        let name = s(c, &["metadata", "name"]);
        if name.is_empty() {
            out.push(required(
                &format!("spec.volumeClaimTemplates[{i}].metadata.name"),
                "name or generateName is required",
            ));
        }
    }
}

/// DaemonSet spec.
pub(crate) fn daemon_set(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    if selector_and_template(spec, "empty selector is invalid for daemonset", out) {
        template(at(spec, &["template"]).unwrap_or(&Value::Null), "spec.template", out);
        restart_always(spec, out);
    }
    opt_nonneg(spec, &["minReadySeconds"], "spec.minReadySeconds", out);
    opt_nonneg(spec, &["revisionHistoryLimit"], "spec.revisionHistoryLimit", out);
    match s(spec, &["updateStrategy", "type"]) {
        "OnDelete" => {}
        "RollingUpdate" => {
            let ru = at(spec, &["updateStrategy", "rollingUpdate"]);
            let mut tmp = Vec::new();
            let u = int_or_percent(
                ru.and_then(|r| r.get("maxUnavailable")),
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
                out,
            );
            let sg = int_or_percent(
                ru.and_then(|r| r.get("maxSurge")),
                "spec.updateStrategy.rollingUpdate.maxSurge",
                &mut tmp,
            );
            out.extend(tmp);
            if u == Some(0) && sg == Some(0) {
                out.push(invalid(
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    Bad::Raw("0".into()),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        other => out.push(not_supported(
            "spec.updateStrategy.type",
            other,
            &["OnDelete", "RollingUpdate"],
        )),
    }
}

/// Job spec at `path` (`spec` for Jobs, `spec.jobTemplate.spec` for CronJobs).
fn job_spec(spec: &Value, path: &str, out: &mut Vec<Cause>) {
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        opt_nonneg(spec, &[k], &format!("{path}.{k}"), out);
    }
    if let Some(mode) = at(spec, &["completionMode"]).and_then(Value::as_str) {
        match mode {
            "NonIndexed" => {}
            "Indexed" => {
                if !present(spec, &["completions"]) {
                    out.push(required(
                        &format!("{path}.completions"),
                        "when completion mode is Indexed",
                    ));
                }
            }
            other => out.push(not_supported(
                &format!("{path}.completionMode"),
                other,
                &["NonIndexed", "Indexed"],
            )),
        }
    }
    if let Some(p) = at(spec, &["podReplacementPolicy"]).and_then(Value::as_str) {
        if !["TerminatingOrFailed", "Failed"].contains(&p) {
            out.push(not_supported(
                &format!("{path}.podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    template(
        at(spec, &["template"]).unwrap_or(&Value::Null),
        &format!("{path}.template"),
        out,
    );
    let rp = s(spec, &["template", "spec", "restartPolicy"]);
    if rp != "OnFailure" && rp != "Never" {
        out.push(not_supported(
            &format!("{path}.template.spec.restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        ));
    }
}

/// Job.
pub(crate) fn job(obj: &Value, out: &mut Vec<Cause>) {
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    job_spec(spec, "spec", out);
    match spec.get("selector").filter(|v| !v.is_null()) {
        None => out.push(required("spec.selector", "")),
        Some(sel) => {
            selector::validate(sel, "spec.selector", out);
            template_labels_match(sel, spec, "spec.template.metadata.labels", out);
        }
    }
}

/// CronJob.
pub(crate) fn cron_job(obj: &Value, out: &mut Vec<Cause>) {
    let name = s(obj, &["metadata", "name"]);
    if name.len() > 52 {
        out.push(invalid("metadata.name", name, "must be no more than 52 characters"));
    }
    let spec = at(obj, &["spec"]).unwrap_or(&Value::Null);
    let schedule = s(spec, &["schedule"]);
    if schedule.is_empty() {
        out.push(required("spec.schedule", ""));
    } else if let Err(msg) = super::cron::check(schedule) {
        out.push(invalid("spec.schedule", schedule, &msg));
    }
    opt_nonneg(spec, &["startingDeadlineSeconds"], "spec.startingDeadlineSeconds", out);
    match s(spec, &["concurrencyPolicy"]) {
        "Allow" | "Forbid" | "Replace" => {}
        "" => out.push(required("spec.concurrencyPolicy", "")),
        other => out.push(not_supported(
            "spec.concurrencyPolicy",
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jt = at(spec, &["jobTemplate", "spec"]).unwrap_or(&Value::Null);
    job_spec(jt, "spec.jobTemplate.spec", out);
    if let Some(sel) = jt.get("selector").filter(|v| !v.is_null()) {
        out.push(invalid(
            "spec.jobTemplate.spec.selector",
            selector_value(sel),
            "`selector` will be auto-generated",
        ));
    }
    if at(jt, &["manualSelector"]).and_then(Value::as_bool) == Some(true) {
        out.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Raw("true".into()),
            &["nil", "false"],
        ));
    }
    opt_nonneg(
        spec,
        &["successfulJobsHistoryLimit"],
        "spec.successfulJobsHistoryLimit",
        out,
    );
    opt_nonneg(spec, &["failedJobsHistoryLimit"], "spec.failedJobsHistoryLimit", out);
}
