//! Server-side Table columns and cells per kind, following upstream's printers
//! (k/k `pkg/printers/internalversion/printers.go`), always in wide form as the real server
//! generates them.

mod cluster;
mod column;
mod config;
mod duration;
mod event;
mod json;
mod networking;
mod pod;
mod workloads;

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::registry::ResourceDef;
use column::{columns_of, printer, Printer};

pub use duration::human_duration;

/// The `TableColumnDefinition` objects (`{name,type,format,description,priority}`) for a kind.
pub fn columns(def: &ResourceDef) -> Vec<Value> {
    columns_of(printer(def)).iter().map(|c| c.to_json()).collect()
}

/// Every cell, wide ones included, in column order; `now` is the reference for ages.
pub fn cells(def: &ResourceDef, obj: &Value, now: Timestamp) -> Vec<Value> {
    match printer(def) {
        Printer::Pod => pod::cells(obj, now),
        Printer::ReplicaSet => workloads::replicas(obj, now, false),
        Printer::ReplicationController => workloads::replicas(obj, now, true),
        Printer::Deployment => workloads::deployment(obj, now),
        Printer::StatefulSet => workloads::stateful_set(obj, now),
        Printer::DaemonSet => workloads::daemon_set(obj, now),
        Printer::Job => workloads::job(obj, now),
        Printer::CronJob => workloads::cron_job(obj, now),
        Printer::Service => networking::service(obj, now),
        Printer::Ingress => networking::ingress(obj, now),
        Printer::Endpoints => networking::endpoints(obj, now),
        Printer::EndpointSlice => networking::endpoint_slice(obj, now),
        Printer::Node => cluster::node(obj, now),
        Printer::Event => event::event(obj, now),
        Printer::Namespace => cluster::namespace(obj, now),
        Printer::Secret => config::secret(obj, now),
        Printer::ServiceAccount => config::service_account(obj, now),
        Printer::PersistentVolume => cluster::persistent_volume(obj, now),
        Printer::PersistentVolumeClaim => cluster::persistent_volume_claim(obj, now),
        Printer::StorageClass => cluster::storage_class_row(obj, now),
        Printer::ConfigMap => config::config_map(obj, now),
        Printer::Hpa => config::hpa(obj, now),
        Printer::Lease => config::lease(obj, now),
        Printer::ControllerRevision => config::controller_revision(obj, now),
        Printer::ResourceQuota => config::resource_quota(obj, now),
        Printer::ApiService => cluster::api_service(obj, now),
        Printer::Default => default_cells(obj),
    }
}

/// Upstream's default table: the name and `creationTimestamp` as RFC 3339 UTC.
fn default_cells(obj: &Value) -> Vec<Value> {
    let created = json::opt_s(obj, "metadata.creationTimestamp")
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map_or_else(
            || "0001-01-01T00:00:00Z".to_string(),
            |t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    vec![json!(json::s(obj, "metadata.name")), json!(created)]
}

/// The aggregate STATUS that `kubectl get pods` shows (`Running`, `CrashLoopBackOff`, `Init:0/1`…).
pub fn pod_status(pod: &Value) -> String {
    pod::status(pod)
}

#[cfg(test)]
mod tests;
