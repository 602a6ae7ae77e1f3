//! Service ClusterIP and NodePort allocation (upstream's `ipallocator`/`portallocator`,
//! reduced to a scan of the services in the watch cache under one lock).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};
use skiff_api::registry::ResourceDef;
use skiff_api::validation::Cause;

use crate::cache::Cache;

/// Upstream's default NodePort range.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// The range ClusterIPs come from (`--service-cluster-ip-range`): `.1` is the `kubernetes`
/// service and `.10` the cluster DNS, as on k3s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceCidr {
    /// The network address.
    pub base: Ipv4Addr,
    /// The prefix length (8–30).
    pub bits: u32,
}

impl ServiceCidr {
    /// k3s's default in bridge networking: 10.43.0.0/16.
    pub const BRIDGE: ServiceCidr = ServiceCidr {
        base: Ipv4Addr::new(10, 43, 0, 0),
        bits: 16,
    };
    /// The loopback range of host networking: 127.43.0.0/16.
    pub const HOST: ServiceCidr = ServiceCidr {
        base: Ipv4Addr::new(127, 43, 0, 0),
        bits: 16,
    };

    /// The `n`th address of the range.
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + n)
    }

    /// The address of the `kubernetes` service.
    pub fn kubernetes(&self) -> Ipv4Addr {
        self.nth(1)
    }

    /// The address of the `kube-dns` service.
    pub fn dns(&self) -> Ipv4Addr {
        self.nth(10)
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) >> (32 - self.bits) == u32::from(self.base) >> (32 - self.bits)
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.bits)
    }
}

impl Default for ServiceCidr {
    fn default() -> Self {
        ServiceCidr::BRIDGE
    }
}

impl std::fmt::Display for ServiceCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.bits)
    }
}

impl std::str::FromStr for ServiceCidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (ip, bits) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (a.b.c.d/n)"))?;
        let base: Ipv4Addr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let bits: u32 = bits.parse().map_err(|e| format!("{s:?}: {e}"))?;
        if !(8..=30).contains(&bits) {
            return Err(format!("{s:?}: the prefix must be between /8 and /30"));
        }
        let mask = u32::MAX << (32 - bits);
        Ok(ServiceCidr {
            base: Ipv4Addr::from(u32::from(base) & mask),
            bits,
        })
    }
}

/// A `FieldValueInvalid` cause; `value` is already rendered as Go prints it.
fn invalid(field: &str, value: &str, detail: &str) -> Cause {
    let message = if value.is_empty() {
        detail.to_string()
    } else {
        format!("Invalid value: {value}: {detail}")
    };
    Cause {
        reason: "FieldValueInvalid".into(),
        message,
        field: field.into(),
    }
}

fn used(cache: &Cache, def: &ResourceDef, skip_key: Option<&str>) -> (HashSet<String>, HashSet<i64>) {
    let (items, _) = cache.list(def, &def.key_prefix(), None);
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for (k, svc) in items {
        if Some(k.as_str()) == skip_key {
            continue;
        }
        if let Some(ip) = svc["spec"]["clusterIP"].as_str() {
            ips.insert(ip.to_string());
        }
        for p in svc["spec"]["ports"].as_array().into_iter().flatten() {
            if let Some(n) = p["nodePort"].as_i64() {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

/// Assigns `clusterIP`/`clusterIPs` and node ports to a Service being created (or updated,
/// `skip_key` naming itself), refusing addresses and ports already taken.
pub fn allocate(
    cache: &Cache,
    range: ServiceCidr,
    def: &ResourceDef,
    svc: &mut Value,
    skip_key: Option<&str>,
) -> Result<(), Vec<Cause>> {
    let (ips, ports) = used(cache, def, skip_key);
    let spec = &mut svc["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        match spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            Some("None") => {}
            Some(ip) => {
                let parsed: Option<Ipv4Addr> = ip.parse().ok();
                let msg = match parsed {
                    Some(a) if !range.contains(a) => Some(format!(
                        "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}"
                    )),
                    Some(_) if ips.contains(ip) => Some(format!("failed to allocate IP {ip}: provided IP is already allocated")),
                    _ => None,
                };
                if let Some(m) = msg {
                    return Err(vec![invalid("spec.clusterIPs", &format!("[]string{{\"{ip}\"}}"), &m)]);
                }
            }
            None => {
                let size = range.size();
                // Start at a random offset like upstream, skipping .0, .1 (kubernetes), .10
                // (the cluster DNS, which asks for it by address) and broadcast.
                let start = rand::random::<u32>() % (size - 3);
                let found = (0..size - 3)
                    .map(|i| range.nth(2 + (start + i) % (size - 3)))
                    .filter(|ip| *ip != range.dns())
                    .map(|ip| ip.to_string())
                    .find(|ip| !ips.contains(ip));
                let Some(ip) = found else {
                    return Err(vec![invalid(
                        "spec.clusterIPs",
                        "",
                        "failed to allocate a serviceIP: range is full",
                    )]);
                };
                spec["clusterIP"] = json!(ip);
            }
        }
        let ip = spec["clusterIP"].clone();
        spec["clusterIPs"] = json!([ip]);
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let mut taken = ports;
        let n = spec["ports"].as_array().map_or(0, Vec::len);
        for i in 0..n {
            let p = &mut spec["ports"][i];
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(np) if taken.contains(&np) => {
                    return Err(vec![invalid(
                        &format!("spec.ports[{i}].nodePort"),
                        &np.to_string(),
                        "provided port is already allocated",
                    )]);
                }
                Some(np) => {
                    taken.insert(np);
                }
                None => {
                    let span = NODE_PORTS.end() - NODE_PORTS.start() + 1;
                    let start = rand::random::<u32>() as i64 % span;
                    let Some(np) = (0..span)
                        .map(|i| NODE_PORTS.start() + (start + i) % span)
                        .find(|n| !taken.contains(n))
                    else {
                        return Err(vec![invalid(&format!("spec.ports[{i}].nodePort"), "", "range is full")]);
                    };
                    taken.insert(np);
                    p["nodePort"] = json!(np);
                }
            }
        }
    }
    Ok(())
}
