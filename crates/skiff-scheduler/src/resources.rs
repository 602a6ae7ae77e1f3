//! Resource quantities as the scheduler counts them: milli-CPU, bytes, pod slots and extended
//! resources, and a pod's effective requests (upstream `resource.PodRequests`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// upstream: `DefaultMilliCPURequest`, used for scoring containers that request no CPU.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// upstream: `DefaultMemoryRequest` (200 MiB), used for scoring containers that request no memory.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource a node offers or a pod asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Pod slots (only meaningful for allocatable).
    pub pods: i64,
    /// Extended resources (`nvidia.com/gpu`, `hugepages-2Mi`, …) by name; rarely non-empty.
    pub scalar: Vec<(String, i64)>,
}

impl Resources {
    /// Reads a resource list (requests, limits, allocatable).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            "cpu" => self.milli_cpu = milli_value(&q.0),
            "memory" => self.memory = value(&q.0),
            "ephemeral-storage" => self.ephemeral_storage = value(&q.0),
            "pods" => self.pods = value(&q.0),
            other => {
                let v = value(&q.0);
                match self.scalar.iter_mut().find(|(n, _)| n == other) {
                    Some(e) => e.1 = v,
                    None => self.scalar.push((other.to_string(), v)),
                }
            }
        }
    }

    /// The amount of an extended resource (0 when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (n, v) in &other.scalar {
            match self.scalar.iter_mut().find(|(m, _)| m == n) {
                Some(e) => e.1 += v,
                None => self.scalar.push((n.clone(), *v)),
            }
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (n, v) in &other.scalar {
            match self.scalar.iter_mut().find(|(m, _)| m == n) {
                Some(e) => e.1 -= v,
                None => self.scalar.push((n.clone(), -*v)),
            }
        }
        self.scalar.retain(|(_, v)| *v != 0);
    }

    /// Raises each resource of `self` to at least `other`'s.
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (n, v) in &other.scalar {
            match self.scalar.iter_mut().find(|(m, _)| m == n) {
                Some(e) => e.1 = e.1.max(*v),
                None => self.scalar.push((n.clone(), *v)),
            }
        }
    }

    /// Whether no CPU, memory, storage or extended resource is asked for.
    pub fn is_empty(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.iter().all(|s| s.1 == 0)
    }
}

/// A pod's requests in the two forms the plugins use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRequests {
    /// What the pod asks for (filtering, balanced allocation).
    pub requests: Resources,
    /// Requests where a container that names no CPU or memory counts the upstream defaults
    /// (least-allocated scoring, so best-effort pods still spread).
    pub non_zero: Resources,
}

impl PodRequests {
    /// upstream `resource.PodRequests`: containers summed, sidecars (restartable init containers)
    /// added, the largest init container step as a floor, plus overhead.
    pub fn of(pod: &Pod) -> PodRequests {
        let Some(spec) = &pod.spec else {
            return PodRequests::default();
        };
        let compute = |non_zero: bool| {
            let mut reqs = Resources::default();
            for c in &spec.containers {
                reqs.add(&container_requests(c, non_zero));
            }
            let mut restartable = Resources::default();
            let mut init = Resources::default();
            for c in spec.init_containers.iter().flatten() {
                let cr = container_requests(c, non_zero);
                let step = if c.restart_policy.as_deref() == Some("Always") {
                    reqs.add(&cr);
                    restartable.add(&cr);
                    restartable.clone()
                } else {
                    let mut t = cr;
                    t.add(&restartable);
                    t
                };
                init.max_with(&step);
            }
            reqs.max_with(&init);
            if let Some(o) = &spec.overhead {
                reqs.add(&Resources::from_list(o));
            }
            reqs.pods = 0;
            reqs
        };
        PodRequests {
            requests: compute(false),
            non_zero: compute(true),
        }
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let list = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = list.map(Resources::from_list).unwrap_or_default();
    if non_zero {
        // upstream: only an unset request is defaulted, an explicit zero stays zero.
        let has = |k: &str| list.is_some_and(|l| l.contains_key(k));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

pub use skiff_api::quantity::{milli_value, value};

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn pod_requests() {
        let cases = [
            (
                "sum of containers",
                serde_json::json!({"spec": {"containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m"}}}]}}),
                (300, 1 << 20),
                (300, (1 << 20) + DEFAULT_MEMORY_REQUEST),
            ),
            (
                "init container larger than sum",
                serde_json::json!({"spec": {"initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
                (2000, 0),
                (2000, DEFAULT_MEMORY_REQUEST),
            ),
            (
                "sidecar adds to containers and later init steps",
                serde_json::json!({"spec": {"initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "i", "resources": {"requests": {"cpu": "1"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
                (1500, 0),
                (1500, 2 * DEFAULT_MEMORY_REQUEST),
            ),
            (
                "overhead",
                serde_json::json!({"spec": {"overhead": {"cpu": "10m"},
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "0", "memory": "0"}}}]}}),
                (10, 0),
                (10, 0),
            ),
        ];
        for (name, p, (cpu, mem), (nz_cpu, nz_mem)) in cases {
            let r = PodRequests::of(&pod(p));
            assert_eq!((r.requests.milli_cpu, r.requests.memory), (cpu, mem), "{name}");
            assert_eq!(
                (r.non_zero.milli_cpu, r.non_zero.memory),
                (nz_cpu, nz_mem),
                "{name} non-zero"
            );
        }
    }
}
