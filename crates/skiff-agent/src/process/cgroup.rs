//! cgroup v1 limits for containers (cpu quota and shares, memory limit), written to cgroupfs
//! directly. Layout: `<controller root>/skiff/<node>/pod<uid>/<container>-<restart>`.
//!
//! On this project's hosts cgroups are v1 per controller with a v2 mount that owns only
//! hugetlb ("hybrid"), so limits go to v1. Parents are removed by us, deepest first.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The v1 controllers the agent uses, by mount point.
#[derive(Debug, Clone)]
pub(crate) struct Roots {
    pub(crate) memory: PathBuf,
    pub(crate) cpu: PathBuf,
    pub(crate) pids: Option<PathBuf>,
}

impl Roots {
    /// Finds the v1 `memory` and `cpu` hierarchies; `None` when either is missing.
    pub(crate) fn detect() -> Option<Roots> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mut memory = None;
        let mut cpu = None;
        let mut pids = None;
        for line in info.lines() {
            // mountinfo: ... mount_point ... - fstype source super_options
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut r = right.split_whitespace();
            if r.next() != Some("cgroup") {
                continue;
            }
            let opts = r.nth(1).unwrap_or_default();
            let mount_point = left.split_whitespace().nth(4).map(PathBuf::from);
            for o in opts.split(',') {
                match o {
                    "memory" => memory = mount_point.clone(),
                    "cpu" => cpu = mount_point.clone(),
                    "pids" => pids = mount_point.clone(),
                    _ => {}
                }
            }
        }
        Some(Roots {
            memory: memory?,
            cpu: cpu?,
            pids,
        })
    }

    fn all(&self) -> Vec<&Path> {
        let mut v = vec![self.memory.as_path(), self.cpu.as_path()];
        if let Some(p) = &self.pids {
            v.push(p);
        }
        v
    }

    /// The node's directory below each root (relative).
    pub(crate) fn node_rel(node: &str) -> PathBuf {
        PathBuf::from("skiff").join(node)
    }

    /// Kills whatever a previous agent left in this node's cgroups and removes them.
    pub(crate) fn clean_node(&self, node: &str) {
        for root in self.all() {
            let dir = root.join(Self::node_rel(node));
            kill_tree(&dir);
            remove_tree(&dir);
            let _ = std::fs::remove_dir(root.join("skiff"));
        }
    }

    /// Removes a pod's cgroups (processes in them are killed first).
    pub(crate) fn remove_pod(&self, node: &str, uid: &str) {
        for root in self.all() {
            let node_dir = root.join(Self::node_rel(node));
            let dir = node_dir.join(format!("pod{uid}"));
            kill_tree(&dir);
            remove_tree(&dir);
            let _ = std::fs::remove_dir(&node_dir);
            let _ = std::fs::remove_dir(root.join("skiff"));
        }
    }

    /// Creates a container's cgroups with its limits.
    pub(crate) fn create(&self, rel: &Path, limits: &Limits) -> std::io::Result<Cgroup> {
        let mut dirs = Vec::new();
        for root in self.all() {
            let d = root.join(rel);
            std::fs::create_dir_all(&d)?;
            dirs.push(d);
        }
        let cpu = self.cpu.join(rel);
        let mem = self.memory.join(rel);
        if let Some(quota) = limits.cpu_quota_us {
            std::fs::write(cpu.join("cpu.cfs_period_us"), "100000")?;
            std::fs::write(cpu.join("cpu.cfs_quota_us"), quota.to_string())?;
        }
        if let Some(shares) = limits.cpu_shares {
            std::fs::write(cpu.join("cpu.shares"), shares.to_string())?;
        }
        if let Some(bytes) = limits.memory_bytes {
            std::fs::write(mem.join("memory.limit_in_bytes"), bytes.to_string())?;
            // Swap would let a process outgrow its limit instead of being OOM-killed.
            let _ = std::fs::write(mem.join("memory.swappiness"), "0");
            let _ = std::fs::write(mem.join("memory.memsw.limit_in_bytes"), bytes.to_string());
        }
        Ok(Cgroup { dirs, memory: mem })
    }
}

/// Limits of one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) cpu_quota_us: Option<u64>,
    pub(crate) cpu_shares: Option<u64>,
    pub(crate) memory_bytes: Option<u64>,
}

impl Limits {
    /// upstream: quota = limit × period (100 ms), shares = request × 1024 (at least 2).
    pub(crate) fn from_resources(cpu_limit: Option<f64>, cpu_request: Option<f64>, memory_limit: Option<f64>) -> Self {
        Limits {
            cpu_quota_us: cpu_limit.map(|c| ((c * 100_000.0).ceil() as u64).max(1000)),
            cpu_shares: cpu_request.or(cpu_limit).map(|c| ((c * 1024.0) as u64).max(2)),
            memory_bytes: memory_limit.map(|m| m as u64),
        }
    }
}

/// One container's cgroups.
#[derive(Debug, Clone)]
pub(crate) struct Cgroup {
    dirs: Vec<PathBuf>,
    memory: PathBuf,
}

impl Cgroup {
    /// `cgroup.procs` of each hierarchy, opened for the child to join (it writes `0`).
    pub(crate) fn procs_files(&self) -> std::io::Result<Vec<File>> {
        self.dirs
            .iter()
            .map(|d| std::fs::OpenOptions::new().write(true).open(d.join("cgroup.procs")))
            .collect()
    }

    /// Whether the kernel OOM-killed a process in this cgroup.
    pub(crate) fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.memory.join("memory.oom_control"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .is_some_and(|n| n > 0)
    }

    /// Kills every process left in the cgroup.
    pub(crate) fn kill_all(&self) {
        kill_tree(&self.memory);
    }

    /// Kills what is left and removes the directories (retrying while processes exit).
    pub(crate) async fn remove(&self) {
        for _ in 0..40 {
            self.kill_all();
            let mut left = false;
            for d in &self.dirs {
                if d.exists() && std::fs::remove_dir(d).is_err() {
                    left = true;
                }
            }
            if !left {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::warn!(cgroup = %self.memory.display(), "could not remove a container cgroup");
    }
}

fn kill_tree(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            kill_tree(&e.path());
        }
    }
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn remove_tree(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&e.path());
        }
    }
    for _ in 0..20 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}
