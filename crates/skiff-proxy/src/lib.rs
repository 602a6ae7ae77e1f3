//! The service proxy and the cluster DNS: what makes a Service's address and name reach its
//! ready pods. Both read Services and EndpointSlices through the Kubernetes API only.

pub mod dns;
pub mod nft;
pub mod services;
pub mod sources;
pub mod userspace;

/// Why a proxy stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing through the API failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// A socket or a command failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
