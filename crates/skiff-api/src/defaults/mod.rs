//! Upstream defaulting for every served kind, applied in place to `serde_json::Value` objects
//! before validation on create, update and patch.

mod core;
mod pod;

pub(crate) use pod::VOLUME_SOURCES;
mod util;
mod workloads;

use crate::registry::ResourceDef;
use serde_json::Value;

/// Applies upstream defaulting for the kind in place (pods and every pod template inside
/// workloads, workload strategies, services, secrets, namespaces, volumes, ...).
pub fn apply(def: &ResourceDef, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    match (def.group, def.kind) {
        ("", "Pod") => pod::pod(m),
        ("", "ReplicationController") => workloads::replication_controller(m),
        ("", "Service") => core::service(m),
        ("", "Secret") => core::secret(m),
        ("", "Namespace") => core::namespace(m),
        ("", "PersistentVolumeClaim") => core::pvc(m),
        ("", "PersistentVolume") => core::pv(m),
        ("", "Node") => core::node(m),
        ("", "LimitRange") => core::limit_range(m),
        ("", "Endpoints") | ("discovery.k8s.io", "EndpointSlice") => core::endpoints(m),
        ("apps", "Deployment") => workloads::deployment(m),
        ("apps", "ReplicaSet") => workloads::replica_set(m),
        ("apps", "StatefulSet") => workloads::stateful_set(m),
        ("apps", "DaemonSet") => workloads::daemon_set(m),
        ("batch", "Job") => workloads::job(m),
        ("batch", "CronJob") => workloads::cron_job(m),
        ("autoscaling", "HorizontalPodAutoscaler") => core::hpa(m),
        ("storage.k8s.io", "StorageClass") => core::storage_class(m),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
