//! Pod phase, conditions and QoS class computed as kubelet computes them.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

/// The state of one container as the phase computation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Waiting; `restarting` when it has terminated before (kubelet counts those as stopped).
    Waiting {
        restarting: bool,
        failed_before: bool,
    },
    Running,
    Terminated {
        exit_code: i32,
    },
}

/// upstream `getPhase`.
pub(crate) fn phase(restart_policy: &str, init: &[State], containers: &[State], terminal: bool) -> &'static str {
    let mut pending_init = false;
    let mut failed_init = false;
    for s in init {
        match *s {
            State::Terminated { exit_code: 0 } => {}
            State::Terminated { .. } => failed_init = true,
            State::Waiting {
                failed_before: true, ..
            } => failed_init = true,
            _ => pending_init = true,
        }
    }
    if failed_init && restart_policy == "Never" {
        return "Failed";
    }
    if failed_init {
        pending_init = true;
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        match *s {
            State::Running => running += 1,
            State::Terminated { exit_code } => {
                stopped += 1;
                if exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { restarting: true, .. } => stopped += 1,
            State::Waiting { .. } => waiting += 1,
        }
    }
    if pending_init {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if terminal {
            return if stopped == succeeded { "Succeeded" } else { "Failed" };
        }
        if restart_policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if restart_policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

/// A condition as kubelet computes it (without times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Condition {
    pub(crate) type_: &'static str,
    pub(crate) status: bool,
    pub(crate) reason: Option<String>,
    pub(crate) message: Option<String>,
}

/// Inputs of the kubelet-owned conditions.
pub(crate) struct Facts<'a> {
    pub(crate) phase: &'a str,
    pub(crate) sandbox_ready: bool,
    /// Init containers not (yet) completed successfully.
    pub(crate) incomplete_init: Vec<String>,
    pub(crate) has_init: bool,
    /// Containers not ready.
    pub(crate) unready: Vec<String>,
}

/// PodReadyToStartContainers, Initialized, Ready, ContainersReady, in kubelet's order.
pub(crate) fn conditions(f: &Facts) -> Vec<Condition> {
    let completed = f.phase == "Succeeded" || f.phase == "Failed";
    let list = |v: &[String]| format!("[{}]", v.join(" "));
    let initialized = if !f.has_init || f.incomplete_init.is_empty() {
        Condition {
            type_: "Initialized",
            status: true,
            reason: (f.has_init && f.phase == "Succeeded").then(|| "PodCompleted".to_string()),
            message: None,
        }
    } else {
        Condition {
            type_: "Initialized",
            status: false,
            reason: Some("ContainersNotInitialized".into()),
            message: Some(format!(
                "containers with incomplete status: {}",
                list(&f.incomplete_init)
            )),
        }
    };
    let ready = |type_: &'static str| {
        if completed {
            Condition {
                type_,
                status: false,
                reason: Some("PodCompleted".into()),
                message: None,
            }
        } else if f.unready.is_empty() {
            Condition {
                type_,
                status: true,
                reason: None,
                message: None,
            }
        } else {
            Condition {
                type_,
                status: false,
                reason: Some("ContainersNotReady".into()),
                message: Some(format!("containers with unready status: {}", list(&f.unready))),
            }
        }
    };
    vec![
        Condition {
            type_: "PodReadyToStartContainers",
            status: f.sandbox_ready && !completed,
            reason: None,
            message: None,
        },
        initialized,
        ready("Ready"),
        ready("ContainersReady"),
    ]
}

/// The conditions as JSON, keeping `lastTransitionTime` of those whose status did not change
/// (from `previous`), and the conditions kubelet does not own (PodScheduled, gates, …).
pub(crate) fn conditions_json(pod: &Pod, conds: &[Condition], now: &str) -> Vec<Value> {
    let existing: BTreeMap<String, (String, Option<String>)> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c.type_.clone(),
                (
                    c.status.clone(),
                    c.last_transition_time.as_ref().map(|t| crate::node::rfc3339(t.0)),
                ),
            )
        })
        .collect();
    let mut out = Vec::new();
    for c in conds {
        let status = if c.status { "True" } else { "False" };
        let since = match existing.get(c.type_) {
            Some((s, Some(t))) if s == status => t.clone(),
            _ => now.to_string(),
        };
        let mut v = json!({
            "type": c.type_,
            "status": status,
            "lastProbeTime": null,
            "lastTransitionTime": since,
        });
        if let Some(r) = &c.reason {
            v["reason"] = json!(r);
        }
        if let Some(m) = &c.message {
            v["message"] = json!(m);
        }
        out.push(v);
    }
    for c in pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        if !conds.iter().any(|k| k.type_ == c.type_) {
            out.push(serde_json::to_value(c).unwrap_or(Value::Null));
        }
    }
    out
}

/// Whether the pod status in the API (`api`) disagrees with the status the agent means to
/// hold (`want`) on what others may overwrite: the phase, the status of each condition the
/// agent writes, and each container's readiness. The node lifecycle controller marks pods
/// Ready=False when their node stops heartbeating; kubelet's status manager notices such a
/// difference (`needsReconcile`) and writes its own status again.
pub(crate) fn api_differs(api: &Value, want: &Value) -> bool {
    if api.get("phase") != want.get("phase") {
        return true;
    }
    let list = |v: &Value, k: &str| v.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let find = |items: &[Value], key: &str, name: &Value| items.iter().find(|i| i.get(key) == Some(name)).cloned();
    let api_conds = list(api, "conditions");
    let conds_differ = list(want, "conditions").iter().any(|w| {
        let have = find(&api_conds, "type", &w["type"]);
        have.as_ref().and_then(|h| h.get("status")) != w.get("status")
    });
    let api_ctrs = list(api, "containerStatuses");
    let ctrs_differ = list(want, "containerStatuses").iter().any(|w| {
        let have = find(&api_ctrs, "name", &w["name"]);
        have.as_ref().and_then(|h| h.get("ready")) != w.get("ready")
    });
    conds_differ || ctrs_differ
}

/// upstream `GetPodQOS`.
pub(crate) fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else { return "BestEffort" };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        let r = c.resources.as_ref();
        let limits = r.and_then(|r| r.limits.clone()).unwrap_or_default();
        let requests = r.and_then(|r| r.requests.clone()).unwrap_or_default();
        for k in ["cpu", "memory"] {
            let l = limits.get(k).map(|q| q.0.clone());
            let q = requests.get(k).map(|q| q.0.clone()).or_else(|| l.clone());
            if l.is_some() || q.is_some() {
                any = true;
            }
            if l.is_none() || l != q {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_differs_on_what_others_overwrite() {
        let want = json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [{"name": "c", "ready": true}],
        });
        let mut api = want.clone();
        api["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "PodScheduled", "status": "True"}));
        api["conditions"][0]["lastTransitionTime"] = json!("2024-01-01T00:00:00Z");
        assert!(
            !api_differs(&api, &want),
            "extra conditions and times are not a difference"
        );
        let mut marked = api.clone();
        marked["conditions"][0]["status"] = json!("False");
        assert!(
            api_differs(&marked, &want),
            "Ready=False written by the node controller"
        );
        let mut unready = api.clone();
        unready["containerStatuses"][0]["ready"] = json!(false);
        assert!(api_differs(&unready, &want));
        let mut phase = api.clone();
        phase["phase"] = json!("Pending");
        assert!(api_differs(&phase, &want));
    }

    #[test]
    fn phases_follow_kubelet() {
        let w = State::Waiting {
            restarting: false,
            failed_before: false,
        };
        let crash = State::Waiting {
            restarting: true,
            failed_before: true,
        };
        let ok = State::Terminated { exit_code: 0 };
        let bad = State::Terminated { exit_code: 3 };
        type Case<'a> = (&'a str, &'a [State], &'a [State], bool, &'a str);
        let cases: &[Case] = &[
            ("all waiting", &[], &[w, w], false, "Pending"),
            ("running", &[], &[State::Running], false, "Running"),
            ("crashloop", &[], &[crash], false, "Running"),
            ("completed never", &[], &[ok], false, "Succeeded"),
            ("error never", &[], &[bad], false, "Failed"),
            ("init running", &[State::Running], &[w], false, "Pending"),
            ("init failed never", &[bad], &[w], false, "Failed"),
            ("deleted always", &[], &[bad], true, "Failed"),
            ("deleted clean", &[], &[ok], true, "Succeeded"),
        ];
        for (name, init, ctrs, terminal, want) in cases {
            let policy = if name.contains("never") { "Never" } else { "Always" };
            assert_eq!(phase(policy, init, ctrs, *terminal), *want, "{name}");
        }
    }
}
