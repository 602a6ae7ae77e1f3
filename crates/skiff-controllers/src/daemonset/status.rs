//! DaemonSet status as upstream computes it: counts over the nodes that should run a pod.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{ignore_gone, oldest_first, placement, Controller, View};
use crate::pods::{is_available, ready_since};
use crate::Error;

impl Controller {
    /// upstream `updateDaemonSetStatus`: counts over the nodes that should run a pod, from the
    /// oldest pod on each; observedGeneration only when this generation was acted on.
    pub(super) async fn write_status(
        &self,
        v: &View,
        nodes: &[Arc<Node>],
        pods: &[Arc<Pod>],
        collisions: Option<i32>,
        observed: bool,
    ) -> Result<(), Error> {
        let by_node = Self::by_node(pods);
        let now = jiff::Timestamp::now();
        let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0, 0);
        for node in nodes {
            let (should_run, _) = placement::should_run(&v.daemon_spec, node);
            let mut ps = by_node.get(&node.name_any()).cloned().unwrap_or_default();
            let scheduled = !ps.is_empty();
            if !should_run {
                misscheduled += i32::from(scheduled);
                continue;
            }
            desired += 1;
            if !scheduled {
                continue;
            }
            current += 1;
            oldest_first(&mut ps);
            let pod = &ps[0];
            if ready_since(pod).is_some() {
                ready += 1;
                available += i32::from(is_available(pod, v.min_ready(), now));
            }
            updated += i32::from(v.updated(pod));
        }
        let have = serde_json::to_value(v.ds.status.clone().unwrap_or_default()).unwrap_or_default();
        let mut want = json!({
            "desiredNumberScheduled": desired,
            "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled,
            "numberReady": ready,
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": desired - available,
        });
        if observed {
            want["observedGeneration"] = json!(v.ds.metadata.generation);
        }
        if let Some(c) = collisions {
            want["collisionCount"] = json!(c);
        }
        let same = want.as_object().is_some_and(|w| {
            w.iter().all(|(k, val)| {
                let zero = if k == "observedGeneration" {
                    json!(null)
                } else {
                    json!(0)
                };
                have.get(k).cloned().unwrap_or(zero) == *val
            })
        });
        if same {
            return Ok(());
        }
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &v.key.0);
        let res = api
            .patch_status(
                &v.key.1,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": want})),
            )
            .await;
        ignore_gone(res).map(|_| ())
    }
}
