//! Cluster DNS (to be written).
