//! The resources the API server serves, found through its discovery documents, for the
//! controllers that work on every kind (garbage collector, namespace deletion).

use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::Client;

/// One served resource at its group's preferred version.
#[derive(Debug, Clone)]
pub struct Served {
    /// Group, version, kind and plural.
    pub ar: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
    /// The verbs discovery lists for it.
    pub verbs: Vec<String>,
}

impl Served {
    /// Whether discovery lists every one of `verbs`.
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs.iter().all(|v| self.verbs.iter().any(|have| have == v))
    }

    /// `resource.group`, as upstream names a resource in messages (`pods.` for the core group).
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.ar.plural, self.ar.group)
    }
}

/// upstream: the garbage collector ignores events (core and events.k8s.io, one stored object),
/// which are many and never own anything.
pub fn is_event(ar: &ApiResource) -> bool {
    ar.plural == "events" && (ar.group.is_empty() || ar.group == "events.k8s.io")
}

/// Every top-level resource at its group's preferred version (upstream
/// `ServerPreferredResources`), via aggregated discovery when the server offers it.
pub async fn preferred(client: &Client) -> Result<Vec<Served>, kube::Error> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "aggregated discovery failed; using per-group discovery");
            Discovery::new(client.clone()).run().await?
        }
    };
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            out.push(served(ar, &caps));
        }
    }
    Ok(out)
}

fn served(ar: ApiResource, caps: &ApiCapabilities) -> Served {
    Served {
        ar,
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations.clone(),
    }
}
