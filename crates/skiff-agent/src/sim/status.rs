//! Pod status of simulated pods, written as kubelet writes it (conditions, container statuses,
//! IPs), so `kubectl get pod` shows the READY, STATUS and RESTARTS a real cluster shows.

use serde_json::{json, Value};

use super::pods::{Ctr, SimPod, Stage};
use crate::node::rfc3339;

/// The status patch (strategic merge: conditions merge by type, container statuses replace)
/// for the pod's current stage, with its uid as a precondition as kubelet's status manager
/// sends it.
pub(super) fn patch(p: &SimPod, host_ip: &str) -> Value {
    let (phase, ready, containers_ready_reason) = match &p.stage {
        Stage::Starting { .. } => ("Pending", false, "ContainersNotReady"),
        Stage::Running { .. } => ("Running", true, ""),
        Stage::BackOff { .. } => ("Running", false, "ContainersNotReady"),
        Stage::Done { failed: false, .. } => ("Succeeded", false, "PodCompleted"),
        Stage::Done { failed: true, .. } => ("Failed", false, "PodFailed"),
        Stage::PullFailed { .. } => ("Pending", false, "ContainersNotReady"),
    };
    let start = p.start_time.map(rfc3339);
    let terminal = matches!(p.stage, Stage::Done { .. });
    // Transition times: the sandbox and init at start, readiness at the last change of stage.
    let changed = rfc3339(p.stage_since);
    let cond = |ty: &str, ok: bool, reason: &str, message: &str, ltt: &Option<String>| {
        let mut c = json!({"type": ty, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": ltt});
        if !reason.is_empty() {
            c["reason"] = json!(reason);
        }
        if !message.is_empty() {
            c["message"] = json!(message);
        }
        c
    };
    let unready: Vec<&str> = p.containers.iter().map(|c| c.name.as_str()).collect();
    let not_ready_msg = if containers_ready_reason == "ContainersNotReady" {
        format!("containers with unready status: [{}]", unready.join(" "))
    } else {
        String::new()
    };
    let init_reason = if !p.init.is_empty() && matches!(p.stage, Stage::Done { failed: false, .. }) {
        "PodCompleted"
    } else {
        ""
    };
    let starting = matches!(p.stage, Stage::Starting { .. });
    let sandbox_ltt = if terminal { Some(changed.clone()) } else { start.clone() };
    let initialized = !(starting && p.init.iter().any(|c| !c.sidecar));
    let (init_reason, init_msg) = if !initialized {
        let names: Vec<&str> = p.init.iter().filter(|c| !c.sidecar).map(|c| c.name.as_str()).collect();
        (
            "ContainersNotInitialized",
            format!("containers with incomplete status: [{}]", names.join(" ")),
        )
    } else {
        (init_reason, String::new())
    };
    let mut conditions = vec![
        cond(
            "PodReadyToStartContainers",
            !terminal && !starting,
            "",
            "",
            &sandbox_ltt,
        ),
        cond("Initialized", initialized, init_reason, &init_msg, &start),
        cond(
            "Ready",
            ready,
            containers_ready_reason,
            &not_ready_msg,
            &Some(changed.clone()),
        ),
        cond(
            "ContainersReady",
            ready,
            containers_ready_reason,
            &not_ready_msg,
            &Some(changed.clone()),
        ),
    ];
    if !p.has_scheduled {
        conditions.push(cond("PodScheduled", true, "", "", &start));
    }
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": start,
        "containerStatuses": p.containers.iter().map(|c| container(p, c)).collect::<Vec<_>>(),
    });
    if let Some(ip) = p.ip {
        status["podIP"] = json!(ip.to_string());
        status["podIPs"] = json!([{"ip": ip.to_string()}]);
    }
    if !p.init.is_empty() {
        status["initContainerStatuses"] = json!(p.init.iter().map(|c| init_container(p, c)).collect::<Vec<_>>());
    }
    json!({"metadata": {"uid": p.uid}, "status": status})
}

fn base(p: &SimPod, c: &Ctr, restarts: i32) -> Value {
    let (image, repo) = normalize_image(&c.image);
    let mut v = json!({
        "name": c.name,
        "image": image,
        "imageID": format!("{repo}@sha256:{}", fake_hex(&image, 64)),
        "containerID": format!("sim://{}", fake_hex(&format!("{}/{}/{restarts}", p.uid, c.name), 64)),
        "restartCount": restarts,
        "lastState": {},
    });
    if !c.mounts.is_empty() {
        v["volumeMounts"] = json!(c
            .mounts
            .iter()
            .map(|m| {
                let mut mv = json!({"name": m.name, "mountPath": m.path});
                if m.read_only {
                    mv["readOnly"] = json!(true);
                    mv["recursiveReadOnly"] = json!("Disabled");
                }
                mv
            })
            .collect::<Vec<_>>());
    }
    v
}

fn container(p: &SimPod, c: &Ctr) -> Value {
    let mut v = base(p, c, p.restarts);
    let cid = v["containerID"].clone();
    match &p.stage {
        Stage::Starting { .. } => {
            v["containerID"] = Value::Null;
            v["ready"] = json!(false);
            v["started"] = json!(false);
            v["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
        }
        Stage::Running { .. } => {
            v["ready"] = json!(true);
            v["started"] = json!(true);
            v["state"] = json!({"running": {"startedAt": rfc3339(p.stage_since)}});
        }
        Stage::BackOff { delay_secs, .. } => {
            v["ready"] = json!(false);
            v["started"] = json!(false);
            v["state"] = json!({"waiting": {
                "reason": "CrashLoopBackOff",
                "message": format!("back-off {delay_secs}s restarting failed container={} pod={}_{}({})", c.name, p.name, p.namespace, p.uid),
            }});
        }
        // upstream: the container whose image cannot be pulled waits (no id, no image id);
        // the others of the pod run.
        Stage::PullFailed {
            container,
            image,
            backoff,
            ..
        } if *container == c.name => {
            let (reason, message) = if *backoff {
                ("ImagePullBackOff", crate::images::backoff_message(image))
            } else {
                ("ErrImagePull", crate::images::not_found_message(image))
            };
            v["containerID"] = Value::Null;
            v["image"] = json!(c.image);
            v["imageID"] = json!("");
            v["ready"] = json!(false);
            v["started"] = json!(false);
            v["state"] = json!({"waiting": {"reason": reason, "message": message}});
        }
        Stage::PullFailed { .. } => {
            v["ready"] = json!(true);
            v["started"] = json!(true);
            v["state"] = json!({"running": {"startedAt": rfc3339(p.stage_since)}});
        }
        Stage::Done { exit_code, started, .. } => {
            v["ready"] = json!(false);
            v["started"] = json!(false);
            v["state"] = json!({"terminated": terminated(*exit_code, *started, p.stage_since, &cid)});
        }
    }
    if let Some(t) = &p.last_term {
        let last_cid = base(p, c, p.restarts - 1)["containerID"].clone();
        v["lastState"] = json!({"terminated": terminated(t.exit_code, t.started, t.finished, &last_cid)});
    }
    if v["containerID"].is_null() {
        v.as_object_mut().map(|m| m.remove("containerID"));
    }
    v
}

fn init_container(p: &SimPod, c: &Ctr) -> Value {
    let mut v = base(p, c, 0);
    let start = p.start_time.unwrap_or(p.stage_since);
    let running = !matches!(p.stage, Stage::Starting { .. } | Stage::Done { .. });
    if c.sidecar && running {
        v["ready"] = json!(true);
        v["started"] = json!(true);
        v["state"] = json!({"running": {"startedAt": rfc3339(start)}});
    } else if matches!(p.stage, Stage::Starting { .. }) {
        v.as_object_mut().map(|m| m.remove("containerID"));
        v["ready"] = json!(false);
        v["started"] = json!(false);
        v["state"] = json!({"waiting": {"reason": "PodInitializing"}});
    } else {
        // upstream: a completed init container reports ready true, started false
        let cid = v["containerID"].clone();
        v["ready"] = json!(!c.sidecar);
        v["started"] = json!(false);
        v["state"] = json!({"terminated": terminated(0, start, start, &cid)});
    }
    v
}

fn terminated(exit_code: i32, started: jiff::Timestamp, finished: jiff::Timestamp, cid: &Value) -> Value {
    json!({
        "exitCode": exit_code,
        "reason": if exit_code == 0 { "Completed" } else { "Error" },
        "startedAt": rfc3339(started),
        "finishedAt": rfc3339(finished),
        "containerID": cid,
    })
}

/// The image as containerd reports it (`nginx` → `docker.io/library/nginx:latest`) and its
/// repository (for the image ID).
pub(super) fn normalize_image(image: &str) -> (String, String) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    let (repo, tag) = match last.split_once(':') {
        Some((_, tag)) => (full[..full.len() - tag.len() - 1].to_string(), Some(tag.to_string())),
        None => (full.clone(), None),
    };
    match (digest, tag) {
        (Some(d), _) => {
            full = format!("{repo}@{d}");
        }
        (None, None) => full = format!("{repo}:latest"),
        (None, Some(_)) => {}
    }
    (full, repo)
}

/// `len` hex digits derived from `seed` (stable; a stand-in for ids and digests).
pub(crate) fn fake_hex(seed: &str, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    let mut round = 0u64;
    while out.len() < len {
        // FNV-1a, salted per round
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in seed.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
        round += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_normalized_as_containerd_reports_them() {
        let cases = [
            (
                "bare",
                "nginx",
                "docker.io/library/nginx:latest",
                "docker.io/library/nginx",
            ),
            (
                "tag",
                "nginx:1.27",
                "docker.io/library/nginx:1.27",
                "docker.io/library/nginx",
            ),
            (
                "user",
                "bitnami/redis",
                "docker.io/bitnami/redis:latest",
                "docker.io/bitnami/redis",
            ),
            (
                "registry",
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/pause",
            ),
            (
                "port",
                "localhost:5000/app",
                "localhost:5000/app:latest",
                "localhost:5000/app",
            ),
            (
                "digest",
                "busybox@sha256:abc",
                "docker.io/library/busybox@sha256:abc",
                "docker.io/library/busybox",
            ),
        ];
        for (name, input, image, repo) in cases {
            assert_eq!(normalize_image(input), (image.to_string(), repo.to_string()), "{name}");
        }
    }

    #[test]
    fn fake_hex_is_stable_and_sized() {
        assert_eq!(fake_hex("a", 64).len(), 64);
        assert_eq!(fake_hex("a", 64), fake_hex("a", 64));
        assert_ne!(fake_hex("a", 64), fake_hex("b", 64));
    }
}
