//! The service proxy and the cluster DNS: what makes a Service's address and name reach its
//! ready pods. Both read Services and EndpointSlices through the Kubernetes API only.

pub mod dns;
