//! Controllers reconciling the cluster toward its desired state, on kube-runtime.

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod expectations;
pub mod gc;
pub mod history;
pub mod informer;
pub mod job;
pub mod local_path;
pub mod namespace;
pub mod node_lifecycle;
pub mod nodeipam;
pub mod pods;
pub mod replicaset;
pub mod resourcequota;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;

/// Errors of the controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// An informer could not sync its cache.
    #[error("informer cache did not sync: {0}")]
    Sync(String),
}
