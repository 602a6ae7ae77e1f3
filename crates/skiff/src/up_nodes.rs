//! Node-related settings of `skiff up`: heartbeats that fit the grace period, the node IPAM's
//! ranges, the simulated nodes' taint note and the kubeconfig merge.

use std::time::Duration;

use skiff_apiserver::alloc::ServiceCidr;

/// What a mixed cluster prints about its simulated nodes' taint.
pub const SIM_TAINT_NOTE: &str = "simulated nodes carry the taint skiff.dev/simulated=true:NoSchedule (nothing runs there); pods meant for them tolerate it:\n  tolerations: [{key: skiff.dev/simulated, operator: Equal, value: \"true\", effect: NoSchedule}]";

/// The shortest `--node-monitor-grace-period` accepted, in seconds.
pub const MIN_GRACE_SECONDS: u64 = 2;

/// How this cluster's own nodes heartbeat for a grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The leases' duration; renewed every quarter of it.
    pub lease_duration_seconds: i32,
    /// How often the node lifecycle controller checks heartbeats.
    pub monitor_period: Duration,
}

impl Heartbeat {
    /// Leases as long as the grace period (at most upstream's 40 s), so nodes renew four
    /// times per period: with 10 s renewals a 5 s grace period made healthy nodes flap
    /// NotReady between renewals. Checks at least twice per period (upstream
    /// `--node-monitor-period` 5 s).
    pub fn for_grace_period(grace_seconds: u64) -> anyhow::Result<Heartbeat> {
        if grace_seconds < MIN_GRACE_SECONDS {
            anyhow::bail!(
                "--node-monitor-grace-period {grace_seconds} is too short: nodes must renew their lease several times within it; use {MIN_GRACE_SECONDS} or more"
            );
        }
        Ok(Heartbeat {
            lease_duration_seconds: i32::try_from(grace_seconds.min(40)).unwrap_or(40),
            monitor_period: Duration::from_secs(5).min(Duration::from_millis(grace_seconds * 500)),
        })
    }

    /// How often the nodes renew their leases.
    pub fn renew_interval(&self) -> Duration {
        skiff_agent::node::renew_interval(self.lease_duration_seconds)
    }
}

/// The node IPAM's settings: /24s of the cluster CIDR, never its first (the cluster's own
/// addresses, DNS at .0.1) nor, in bridge networking, those of skiff's own nodes (node N
/// brings 10.42.N.0/24 for its bridge).
pub fn ipam_options(cluster: &ServiceCidr, bridge: bool, nodes: usize) -> skiff_controllers::nodeipam::Options {
    let own = if bridge { nodes } else { 0 };
    let reserved = (0..=own)
        .filter_map(|n| u32::try_from(n).ok())
        .map(|n| (cluster.nth(n << 8), 24))
        .collect();
    skiff_controllers::nodeipam::Options {
        cluster_cidr: (cluster.base, u8::try_from(cluster.bits).unwrap_or(16)),
        node_mask: 24,
        reserved,
    }
}

/// Merges the cluster's context into the user's kubeconfig and says what was done.
pub fn merge_kubeconfig(ours: &std::path::Path) {
    let env = std::env::var("KUBECONFIG").ok();
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let Some(target) = crate::kubeconfig::target(env.as_deref(), home.as_deref()) else {
        println!("kubeconfig: {} (no $KUBECONFIG or $HOME to merge into)", ours.display());
        return;
    };
    match crate::kubeconfig::merge(ours, &target) {
        Ok(m) => {
            let backup = m
                .backup
                .map(|b| format!("; the file as it was before skiff is in {}", b.display()))
                .unwrap_or_default();
            println!(
                "kubeconfig: context \"skiff\" merged into {} and made current{backup} (--kubeconfig-merge=false to opt out)",
                m.path.display()
            );
            println!("try: kubectl get all -A");
        }
        Err(e) => {
            tracing::warn!(error = %e, "merging the kubeconfig failed");
            println!("kubeconfig: {}", ours.display());
            println!("try: kubectl --kubeconfig {} get all -A", ours.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_fit_the_grace_period() {
        let h = Heartbeat::for_grace_period(40).unwrap();
        assert_eq!(h.lease_duration_seconds, 40);
        assert_eq!(h.renew_interval(), Duration::from_secs(10));
        assert_eq!(h.monitor_period, Duration::from_secs(5));
        // 5 s used to flap: renewals every 10 s. Now four renewals per period.
        let h = Heartbeat::for_grace_period(5).unwrap();
        assert_eq!(h.renew_interval(), Duration::from_millis(1250));
        assert!(h.monitor_period <= Duration::from_millis(2500));
        let err = Heartbeat::for_grace_period(1).unwrap_err().to_string();
        assert!(err.contains("--node-monitor-grace-period 1 is too short"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn ipam_reserves_the_cluster_range_and_bridge_nodes() {
        let c: ServiceCidr = "10.42.0.0/16".parse().unwrap();
        let o = ipam_options(&c, true, 2);
        assert_eq!(o.cluster_cidr, ("10.42.0.0".parse().unwrap(), 16));
        let r: Vec<String> = o.reserved.iter().map(|(a, l)| format!("{a}/{l}")).collect();
        assert_eq!(r, ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24"]);
        assert_eq!(ipam_options(&c, false, 2).reserved.len(), 1);
    }
}
