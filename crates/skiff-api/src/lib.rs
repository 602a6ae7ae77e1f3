//! The Kubernetes resource model that skiff serves: the registry of kinds, defaulting,
//! validation, label and field selectors, server-side Table columns, patch engines,
//! protobuf request decoding and the OpenAPI documents.

pub mod defaults;
pub mod events;
pub mod load_balancer;
pub mod node_affinity;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;
