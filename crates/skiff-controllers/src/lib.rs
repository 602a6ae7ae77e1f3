//! Controllers reconciling the cluster toward its desired state, on kube-runtime.

pub mod informer;
pub mod local_path;
pub mod node_lifecycle;
pub mod replicaset;

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
