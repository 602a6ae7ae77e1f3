//! What a running cluster holds on this host: its data directory (a lock file, `DIR/skiff.lock`,
//! flocked and holding the pid) and its address ranges and host objects (nftables table,
//! interfaces), recorded under its cluster id in a host-wide directory. A second `skiff up`
//! on the same directory or on ranges a live cluster uses refuses; what a dead cluster (its
//! lock free) left behind is removed, and nothing of a live one is touched.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use skiff_apiserver::alloc::ServiceCidr;

/// The lock file's name in the data directory.
const LOCK_FILE: &str = "skiff.lock";

/// Where clusters record what they hold: `/run/skiff/clusters` as root, else a directory of
/// the user's own under the temporary directory.
fn registry_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata("/proc/self").map(|m| m.uid()) {
        Ok(0) => PathBuf::from("/run/skiff/clusters"),
        Ok(uid) => std::env::temp_dir().join(format!("skiff-{uid}")).join("clusters"),
        Err(_) => std::env::temp_dir().join("skiff").join("clusters"),
    }
}

/// What one cluster holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    /// The pod network (bridge networking only).
    pub cluster_cidr: Option<ServiceCidr>,
    /// The Service ClusterIP range.
    pub service_cidr: ServiceCidr,
    /// Its nftables table (bridge networking).
    pub table: Option<String>,
    /// Its interfaces (bridge networking).
    pub links: Vec<String>,
}

impl Holdings {
    fn ranges(&self) -> impl Iterator<Item = ServiceCidr> + '_ {
        self.cluster_cidr.into_iter().chain([self.service_cidr])
    }

    /// The first of our ranges that overlaps one of `other`'s.
    pub fn conflict(&self, other: &Holdings) -> Option<ServiceCidr> {
        self.ranges()
            .find(|a| other.ranges().any(|b| a.contains(b.base) || b.contains(a.base)))
    }
}

/// A live cluster found in the registry.
#[derive(Debug)]
pub struct Live {
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its process.
    pub pid: Option<u32>,
    /// What it holds.
    pub holdings: Holdings,
}

/// This process's hold on its data directory and registry entry; released when dropped.
pub struct Claim {
    _lock: File,
    entry: Option<PathBuf>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(e) = &self.entry {
            let _ = std::fs::remove_file(e);
        }
    }
}

/// Takes the data directory's lock, or says which process holds it.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<Claim> {
    let path = data_dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
    if file.try_lock().is_err() {
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = pid.trim();
        let by = if pid.is_empty() {
            String::new()
        } else {
            format!(" (pid {pid})")
        };
        anyhow::bail!(
            "another skiff is running on {}{by}; stop it, or choose another directory with --data-dir",
            data_dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    Ok(Claim {
        _lock: file,
        entry: None,
    })
}

/// Whether the cluster of `data_dir` is running (some process holds its lock).
fn alive(data_dir: &Path) -> bool {
    let Ok(file) = File::open(data_dir.join(LOCK_FILE)) else {
        return false;
    };
    // Taking the lock only to test it: dropping the file releases it at once.
    file.try_lock().is_err()
}

fn to_json(data_dir: &Path, h: &Holdings) -> Value {
    json!({
        "pid": std::process::id(),
        "dataDir": data_dir,
        "clusterCIDR": h.cluster_cidr.map(|c| c.to_string()),
        "serviceCIDR": h.service_cidr.to_string(),
        "table": h.table,
        "links": h.links,
    })
}

fn from_json(v: &Value) -> Option<Live> {
    let cidr = |k: &str| v.get(k).and_then(Value::as_str).and_then(|s| s.parse().ok());
    Some(Live {
        data_dir: PathBuf::from(v.get("dataDir")?.as_str()?),
        pid: v.get("pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok()),
        holdings: Holdings {
            cluster_cidr: cidr("clusterCIDR"),
            service_cidr: cidr("serviceCIDR")?,
            table: v.get("table").and_then(Value::as_str).map(str::to_owned),
            links: v
                .get("links")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|l| Some(l.as_str()?.to_owned())).collect())
                .unwrap_or_default(),
        },
    })
}

/// Removes what a dead cluster held on this host.
fn clean(id: &str, h: &Holdings) {
    let quiet = |program: &str, args: &[&str]| {
        let _ = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    };
    if let Some(t) = &h.table {
        tracing::info!(cluster = %id, table = %t, "removing the nftables table a stopped skiff cluster left behind");
        quiet("nft", &["delete", "table", "ip", t]);
    }
    for l in &h.links {
        quiet("ip", &["link", "del", l]);
    }
}

/// Records this cluster's holdings under `id` once no live cluster's conflict with them,
/// after removing what dead clusters left behind. `choose` gets the live clusters and
/// returns the holdings to record, or the error to refuse with; the registry stays locked
/// meanwhile, so two clusters starting at once cannot both take one range.
pub fn register(
    claim: &mut Claim,
    id: &str,
    data_dir: &Path,
    choose: impl FnOnce(&[Live]) -> anyhow::Result<Holdings>,
) -> anyhow::Result<Holdings> {
    let dir = registry_dir();
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let guard = File::create(dir.join(".lock"))?;
    guard.lock()?;
    let mut live = Vec::new();
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        let Some(other) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| from_json(&v));
        let Some(found) = parsed else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        // Our own entry is from an earlier run: we hold the lock now.
        if other != id && alive(&found.data_dir) {
            live.push(found);
        } else {
            clean(&other, &found.holdings);
            let _ = std::fs::remove_file(&path);
        }
    }
    let holdings = choose(&live)?;
    let path = dir.join(format!("{id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&to_json(data_dir, &holdings))?)?;
    claim.entry = Some(path);
    drop(guard);
    Ok(holdings)
}

/// The refusal naming the live cluster that holds `range`.
pub fn in_use(range: ServiceCidr, by: &Live, flags: &str) -> anyhow::Error {
    let pid = by.pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    anyhow::anyhow!(
        "{range} is in use by the skiff cluster in {}{pid}; choose another with {flags}",
        by.data_dir.display()
    )
}

/// The first /16 from 127.43.0.0 on that no live cluster uses: host networking serves each
/// cluster's Services (its API server at .1, its DNS at .10) on loopback addresses of its own.
pub fn free_loopback_range(live: &[Live]) -> Option<ServiceCidr> {
    (43u8..=254)
        .map(|b| ServiceCidr {
            base: std::net::Ipv4Addr::new(127, b, 0, 0),
            bits: 16,
        })
        .find(|c| {
            let ours = Holdings {
                cluster_cidr: None,
                service_cidr: *c,
                table: None,
                links: Vec::new(),
            };
            live.iter().all(|l| ours.conflict(&l.holdings).is_none())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holdings(cluster: Option<&str>, service: &str) -> Holdings {
        Holdings {
            cluster_cidr: cluster.map(|c| c.parse().unwrap()),
            service_cidr: service.parse().unwrap(),
            table: None,
            links: Vec::new(),
        }
    }

    #[test]
    fn overlapping_ranges_conflict() {
        let a = holdings(Some("10.42.0.0/16"), "10.43.0.0/16");
        assert_eq!(
            a.conflict(&holdings(Some("10.42.5.0/24"), "10.50.0.0/16")),
            Some("10.42.0.0/16".parse().unwrap())
        );
        assert_eq!(a.conflict(&holdings(Some("10.44.0.0/16"), "10.45.0.0/16")), None);
        assert!(a.conflict(&holdings(None, "10.0.0.0/8")).is_some());
    }

    #[test]
    fn host_clusters_get_distinct_loopback_ranges() {
        let live = |s: &str| Live {
            data_dir: PathBuf::from("/x"),
            pid: None,
            holdings: holdings(None, s),
        };
        assert_eq!(free_loopback_range(&[]), Some(ServiceCidr::HOST));
        let next = free_loopback_range(&[live("127.43.0.0/16"), live("127.45.0.0/16")]).unwrap();
        assert_eq!(next.to_string(), "127.44.0.0/16");
    }

    #[test]
    fn a_held_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = lock_data_dir(dir.path()).unwrap();
        assert!(alive(dir.path()));
        let err = lock_data_dir(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&format!("(pid {})", std::process::id())), "{err}");
        drop(_first);
        assert!(!alive(dir.path()));
    }
}
