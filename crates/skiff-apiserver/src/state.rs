//! Shared state of the API server.

use std::sync::Arc;

use serde_json::Value;
use skiff_api::registry::{self, ResourceDef};
use skiff_store::Store;

use crate::cache::Cache;

/// Everything request handlers share.
pub struct ApiServer {
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// The watch cache fed from it.
    pub cache: Arc<Cache>,
    /// Bearer token of the admin user.
    pub admin_token: String,
    /// Where ClusterIPs come from.
    pub service_cidr: crate::alloc::ServiceCidr,
    /// Reaches node agents' kubelet API (logs, exec, attach, port-forward).
    pub kubelet: Option<crate::kubelet_client::KubeletClient>,
    /// Serializes Service address and port allocation.
    pub service_lock: tokio::sync::Mutex<()>,
    /// Serializes ResourceQuota charging (check `used`, then write it).
    pub quota_lock: tokio::sync::Mutex<()>,
    /// `tolerationSeconds` of the default not-ready/unreachable tolerations given to pods
    /// (kube-apiserver's `--default-unreachable-toleration-seconds`, 300).
    default_toleration_seconds: std::sync::atomic::AtomicI64,
}

impl ApiServer {
    /// Shared state over a store and its cache.
    pub fn new(store: Arc<dyn Store>, cache: Arc<Cache>, admin_token: String) -> Self {
        ApiServer {
            store,
            cache,
            admin_token,
            service_cidr: crate::alloc::ServiceCidr::default(),
            kubelet: None,
            service_lock: tokio::sync::Mutex::new(()),
            quota_lock: tokio::sync::Mutex::new(()),
            default_toleration_seconds: std::sync::atomic::AtomicI64::new(300),
        }
    }

    /// Sets the `tolerationSeconds` of the default tolerations new pods get.
    pub fn set_default_toleration_seconds(&self, secs: i64) {
        self.default_toleration_seconds
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// The `tolerationSeconds` of the default tolerations new pods get.
    pub fn default_toleration_seconds(&self) -> i64 {
        self.default_toleration_seconds
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The namespace object, if it exists.
    pub fn namespace(&self, name: &str) -> Option<Arc<Value>> {
        let def = namespaces();
        self.cache.get(def, &def.key(None, name))
    }
}

/// The core/v1 namespaces resource.
pub fn namespaces() -> &'static ResourceDef {
    registry::find("", "v1", "namespaces").expect("namespaces is a registered resource")
}
