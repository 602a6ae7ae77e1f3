//! The node agent: registers a Node, heartbeats with a Lease, and runs the pods bound to it.

pub mod events;
pub mod images;
pub mod kubelet_tls;
pub mod node;
pub mod process;
pub mod sim;
pub mod streaming;
