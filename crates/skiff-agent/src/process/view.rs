//! What a privileged container sees of the host's filesystem, in its own mount namespace.
//!
//! The agent plans the view before fork ([`plan`], from the host as it is) and the child
//! applies it between fork and exec ([`Compiled::apply`], plain system calls only):
//!
//! 1. **Mount points that do not exist are made in the pod's view, never on the host.** For a
//!    `mountPath` whose directories are missing, the nearest existing ancestor `A` is
//!    *shadowed*: a tmpfs is mounted over `A` and every entry of the host's `A` is bind-mounted
//!    (recursively) back onto a placeholder of the same name (symlinks are copied), so the
//!    pod keeps reading and writing the host's files there, while the missing directories are
//!    created in the tmpfs. `A = /` cannot be covered in place (a mount over the root is not
//!    seen by path lookups), so the shadow of `/` is built in a staging directory of the pod
//!    and becomes the root with `pivot_root`. We chose this over an overlayfs of `A`: an
//!    overlay hides the mounts below `A` (`/proc`, `/dev`, …, all to be re-mounted), copies up
//!    whatever the pod writes under `A` so its writes to host paths stop reaching the host,
//!    and refuses an upper directory on the filesystem of its lower one. The price of the
//!    shadow: entries the host adds to `A` later are not seen by the pod, and files the pod
//!    creates directly in `A` live in the tmpfs (memory) until the container ends.
//! 2. The volumes are bind-mounted at their `mountPath` (sources resolved in the view, which
//!    still shows every host path). A mount point inside an earlier mount is made in that
//!    volume's directory, as container runtimes do.
//! 3. **The cluster's data directories are hidden**: an empty tmpfs covers each, made
//!    read-only, with only the pod's own directory (its volumes, logs and working directory)
//!    bound back at its path. Exec sessions and exec probes join this mount namespace, so they
//!    see the same. It protects against reading the admin token or other pods' secrets by
//!    path; a container running as root keeps the capabilities to undo its mounts or to reach
//!    the host through `/proc/<pid>/root` (there is no PID namespace): the process runtime is
//!    not a sandbox.

use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use super::spawn::Mount;

/// The pod's directory that becomes the root when `/` must be shadowed.
const ROOT_STAGING: &str = "rootfs";

/// What the view is made of.
#[derive(Debug, Clone)]
pub(crate) struct ViewSpec {
    /// Volume mounts (and the pod's `/etc/hosts`, `/etc/resolv.conf`).
    pub(crate) mounts: Vec<Mount>,
    /// Directories to hide (the cluster's data directory, `~/.skiff`).
    pub(crate) hidden: Vec<PathBuf>,
    /// The pod's own directory, bound back when it is inside a hidden one.
    pub(crate) pod_dir: PathBuf,
    /// The working directory, made in the view when it is missing.
    pub(crate) cwd: PathBuf,
}

/// One step of building the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Change directory (a relative bind source then names what the next tmpfs covers).
    Chdir(PathBuf),
    /// Mount a tmpfs with these options.
    Tmpfs(PathBuf, String),
    /// Make a directory (0755); one that exists is fine.
    Mkdir(PathBuf),
    /// Make an empty file; one that exists is fine.
    Touch(PathBuf),
    /// Make a symbolic link at `path` to `target`.
    Symlink { target: PathBuf, path: PathBuf },
    /// Bind-mount `source` (recursively) at `target`. A best-effort bind removes its
    /// placeholder and goes on when it fails (an entry that vanished since it was listed).
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        best_effort: bool,
    },
    /// Make the working directory the root (`pivot_root(".", ".")`, the old root detached).
    PivotToCwd,
    /// Make the mount at this path read-only.
    RemountReadOnly(PathBuf),
    /// Detach what is mounted here, if anything.
    Unmount(PathBuf),
}

/// The plan: steps for the child, and what the agent makes on the host first (only inside
/// the pod's directory or inside a volume).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) ops: Vec<Op>,
    /// Directories (`true`) or files to create on the host before fork.
    pub(crate) host_create: Vec<(PathBuf, bool)>,
}

/// An entry of a host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Dir,
    Symlink(PathBuf),
    Other,
}

/// What planning asks of the host.
pub(crate) trait Host {
    /// Whether `p` exists (following symlinks).
    fn exists(&self, p: &Path) -> bool;
    /// Whether `p` is a directory (following symlinks).
    fn is_dir(&self, p: &Path) -> bool;
    /// `p` with symlinks resolved.
    fn canonical(&self, p: &Path) -> PathBuf;
    /// The entries of directory `p`.
    fn list(&self, p: &Path) -> Vec<(OsString, Entry)>;
    /// Mode, uid and gid of `p`.
    fn owner(&self, p: &Path) -> (u32, u32, u32);
}

/// The real host.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn exists(&self, p: &Path) -> bool {
        p.exists()
    }
    fn is_dir(&self, p: &Path) -> bool {
        p.is_dir()
    }
    fn canonical(&self, p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    }
    fn list(&self, p: &Path) -> Vec<(OsString, Entry)> {
        let Ok(rd) = std::fs::read_dir(p) else {
            return Vec::new();
        };
        let mut out: Vec<(OsString, Entry)> = rd
            .flatten()
            .map(|e| {
                let kind = match e.file_type() {
                    Ok(t) if t.is_dir() => Entry::Dir,
                    Ok(t) if t.is_symlink() => match std::fs::read_link(e.path()) {
                        Ok(target) => Entry::Symlink(target),
                        Err(_) => Entry::Other,
                    },
                    _ => Entry::Other,
                };
                (e.file_name(), kind)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
    fn owner(&self, p: &Path) -> (u32, u32, u32) {
        std::fs::metadata(p)
            .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()))
            .unwrap_or((0o755, 0, 0))
    }
}

/// `p` made absolute and without `.`, `..` or repeated separators.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The hidden directories that exist, resolved, without `/` and without those inside
/// another.
pub(crate) fn hidden_dirs(raw: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = raw
        .iter()
        .filter_map(|d| std::fs::canonicalize(d).ok())
        .filter(|d| d.is_dir() && d != Path::new("/"))
        .collect();
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
}

struct Planner<'a, H: Host> {
    host: &'a H,
    pod_dir: &'a Path,
    plan: Plan,
    /// Directories whose view is a tmpfs of ours (shadowed, or created in one).
    ours: BTreeSet<PathBuf>,
    /// Mount targets so far, with their sources.
    targets: Vec<(PathBuf, PathBuf)>,
    staging: Option<PathBuf>,
}

impl<H: Host> Planner<'_, H> {
    /// Makes sure `t` exists in the view (a directory, or a file when `!dir`).
    fn ensure(&mut self, t: &Path, dir: bool) {
        if self.targets.iter().any(|(m, _)| m == t) {
            return;
        }
        if let Some((m, src)) = self.targets.iter().rev().find(|(m, _)| t.starts_with(m)) {
            // Inside an earlier mount: the mount point is made in that volume.
            let rel = t.strip_prefix(m).unwrap_or(t);
            let p = src.join(rel);
            if !self.host.exists(&p) {
                self.plan.host_create.push((p, dir));
            }
            return;
        }
        if self.ours.contains(t) || self.host.exists(t) {
            return;
        }
        let mut missing = vec![t.to_path_buf()];
        let mut a = t.parent().unwrap_or(Path::new("/")).to_path_buf();
        while a != Path::new("/") && !self.ours.contains(&a) && !self.host.exists(&a) {
            missing.push(a.clone());
            a = a.parent().unwrap_or(Path::new("/")).to_path_buf();
        }
        let base = if self.ours.contains(&a) {
            a.clone()
        } else {
            let c = self.host.canonical(&a);
            if !self.ours.contains(&c) {
                self.shadow(&c);
            }
            c
        };
        for (i, m) in missing.iter().rev().enumerate() {
            let rel = m.strip_prefix(&a).unwrap_or(m);
            let p = base.join(rel);
            let last = i + 1 == missing.len();
            self.plan.ops.push(if last && !dir {
                Op::Touch(p.clone())
            } else {
                Op::Mkdir(p.clone())
            });
            self.ours.insert(p);
            self.ours.insert(m.clone());
        }
    }

    /// Covers `a` with a tmpfs holding the host's entries of `a` (bound back).
    fn shadow(&mut self, a: &Path) {
        self.ours.insert(a.to_path_buf());
        let (mode, uid, gid) = self.host.owner(a);
        let opts = format!("mode={mode:o},uid={uid},gid={gid}");
        let root = a == Path::new("/");
        let at = if root {
            let s = self.pod_dir.join(ROOT_STAGING);
            self.plan.host_create.push((s.clone(), true));
            self.staging = Some(s.clone());
            s
        } else {
            self.plan.ops.push(Op::Chdir(a.to_path_buf()));
            a.to_path_buf()
        };
        self.plan.ops.push(Op::Tmpfs(at.clone(), opts));
        for (name, kind) in self.host.list(a) {
            let path = at.join(&name);
            // The root is not covered yet: its entries are named absolutely. Elsewhere the
            // working directory is the covered `a`.
            let source = if root {
                Path::new("/").join(&name)
            } else {
                PathBuf::from(&name)
            };
            match kind {
                Entry::Symlink(target) => self.plan.ops.push(Op::Symlink { target, path }),
                Entry::Dir | Entry::Other => {
                    self.plan.ops.push(if kind == Entry::Dir {
                        Op::Mkdir(path.clone())
                    } else {
                        Op::Touch(path.clone())
                    });
                    self.plan.ops.push(Op::Bind {
                        source,
                        target: path,
                        read_only: false,
                        best_effort: true,
                    });
                }
            }
        }
        if root {
            self.plan.ops.push(Op::Chdir(at));
            self.plan.ops.push(Op::PivotToCwd);
            self.plan.ops.push(Op::Chdir(PathBuf::from("/")));
        }
    }
}

/// Plans the view of `spec` on `host`.
pub(crate) fn plan(spec: &ViewSpec, host: &impl Host) -> Plan {
    let mut p = Planner {
        host,
        pod_dir: &spec.pod_dir,
        plan: Plan::default(),
        ours: BTreeSet::new(),
        targets: Vec::new(),
        staging: None,
    };
    // Shallow targets first, as containerd orders mounts, so nested ones land inside.
    let mut mounts: Vec<Mount> = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: normalize(&m.target),
            ..m.clone()
        })
        .collect();
    mounts.sort_by_key(|m| m.target.components().count());
    let mut binds = Vec::new();
    for m in &mounts {
        // A missing source is made a directory (hostPath without a type) by then.
        let dir = host.is_dir(&m.source) || !host.exists(&m.source);
        p.ensure(&m.target, dir);
        p.targets.push((m.target.clone(), m.source.clone()));
        binds.push(Op::Bind {
            source: m.source.clone(),
            target: m.target.clone(),
            read_only: m.read_only,
            best_effort: false,
        });
    }
    let cwd = normalize(&spec.cwd);
    if !cwd.starts_with(&spec.pod_dir) && !spec.hidden.iter().any(|h| cwd.starts_with(h)) {
        p.ensure(&cwd, true);
    }
    p.plan.ops.extend(binds);
    for h in &spec.hidden {
        let inside = spec.pod_dir.starts_with(h) && spec.pod_dir != *h;
        if inside {
            p.plan.ops.push(Op::Chdir(spec.pod_dir.clone()));
        }
        p.plan.ops.push(Op::Tmpfs(h.clone(), "mode=755,size=1m".into()));
        if inside {
            let mut d = h.clone();
            for c in spec.pod_dir.strip_prefix(h).unwrap_or(&spec.pod_dir).components() {
                d.push(c);
                p.plan.ops.push(Op::Mkdir(d.clone()));
            }
            p.plan.ops.push(Op::Bind {
                source: PathBuf::from("."),
                target: spec.pod_dir.clone(),
                read_only: false,
                best_effort: false,
            });
        }
        p.plan.ops.push(Op::RemountReadOnly(h.clone()));
    }
    if let Some(s) = p.staging.take() {
        // The staging directory, seen again through the pod's directory: a partial copy.
        p.plan.ops.push(Op::Unmount(s));
    }
    p.plan
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// One step with its strings ready for the child.
enum Step {
    Chdir(CString),
    Tmpfs(CString, CString),
    Mkdir(CString),
    Touch(CString),
    Symlink(CString, CString),
    Bind(CString, CString, bool, bool),
    Pivot,
    RemountRo(CString),
    Unmount(CString),
}

/// A plan ready to apply in the child.
pub(crate) struct Compiled {
    steps: Vec<Step>,
    tmpfs: CString,
    dot: CString,
}

impl Compiled {
    /// Prepares the strings of `plan` (before fork).
    pub(crate) fn new(plan: &Plan) -> io::Result<Compiled> {
        let mut steps = Vec::with_capacity(plan.ops.len());
        for op in &plan.ops {
            steps.push(match op {
                Op::Chdir(p) => Step::Chdir(cstr(p)?),
                Op::Tmpfs(p, o) => Step::Tmpfs(cstr(p)?, cstr(Path::new(o))?),
                Op::Mkdir(p) => Step::Mkdir(cstr(p)?),
                Op::Touch(p) => Step::Touch(cstr(p)?),
                Op::Symlink { target, path } => Step::Symlink(cstr(target)?, cstr(path)?),
                Op::Bind {
                    source,
                    target,
                    read_only,
                    best_effort,
                } => Step::Bind(cstr(source)?, cstr(target)?, *read_only, *best_effort),
                Op::PivotToCwd => Step::Pivot,
                Op::RemountReadOnly(p) => Step::RemountRo(cstr(p)?),
                Op::Unmount(p) => Step::Unmount(cstr(p)?),
            });
        }
        Ok(Compiled {
            steps,
            tmpfs: CString::from(c"tmpfs"),
            dot: CString::from(c"."),
        })
    }

    /// Applies the plan in the current (new, private) mount namespace.
    ///
    /// # Safety
    /// Meant for the child between fork and exec: it only makes system calls on data prepared
    /// before fork, and allocates nothing.
    pub(crate) unsafe fn apply(&self) -> io::Result<()> {
        let null = std::ptr::null::<libc::c_char>();
        let ok = |rc: libc::c_int| {
            if rc < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        let exist_ok = |rc: libc::c_int| {
            if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        for step in &self.steps {
            match step {
                Step::Chdir(p) => ok(libc::chdir(p.as_ptr()))?,
                Step::Tmpfs(p, o) => ok(libc::mount(
                    self.tmpfs.as_ptr(),
                    p.as_ptr(),
                    self.tmpfs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    o.as_ptr().cast(),
                ))?,
                Step::Mkdir(p) => exist_ok(libc::mkdir(p.as_ptr(), 0o755))?,
                Step::Touch(p) => {
                    let fd = libc::open(p.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                    if fd < 0 {
                        exist_ok(fd)?;
                    } else {
                        libc::close(fd);
                    }
                }
                Step::Symlink(t, p) => exist_ok(libc::symlink(t.as_ptr(), p.as_ptr()))?,
                Step::Bind(s, t, ro, best_effort) => {
                    let rc = libc::mount(s.as_ptr(), t.as_ptr(), null, libc::MS_BIND | libc::MS_REC, null.cast());
                    if rc < 0 {
                        if *best_effort {
                            // Gone since it was listed: leave no placeholder either.
                            if libc::rmdir(t.as_ptr()) < 0 {
                                libc::unlink(t.as_ptr());
                            }
                            continue;
                        }
                        ok(rc)?;
                    }
                    if *ro {
                        ok(libc::mount(
                            null,
                            t.as_ptr(),
                            null,
                            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                            null.cast(),
                        ))?;
                    }
                }
                Step::Pivot => {
                    // As runc: the old root ends up stacked on the new one, then detached.
                    ok(libc::syscall(libc::SYS_pivot_root, self.dot.as_ptr(), self.dot.as_ptr()) as libc::c_int)?;
                    ok(libc::umount2(self.dot.as_ptr(), libc::MNT_DETACH))?;
                }
                Step::RemountRo(p) => ok(libc::mount(
                    null,
                    p.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                    null.cast(),
                ))?,
                Step::Unmount(p) => {
                    libc::umount2(p.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A host of directories and symlinks given by path.
    struct Fake(BTreeMap<PathBuf, Entry>);

    impl Fake {
        fn new(entries: &[(&str, Entry)]) -> Fake {
            let mut m: BTreeMap<PathBuf, Entry> = entries.iter().map(|(p, e)| (PathBuf::from(p), e.clone())).collect();
            m.insert(PathBuf::from("/"), Entry::Dir);
            Fake(m)
        }
    }

    impl Host for Fake {
        fn exists(&self, p: &Path) -> bool {
            self.0.contains_key(p)
        }
        fn is_dir(&self, p: &Path) -> bool {
            self.0.get(p) == Some(&Entry::Dir)
        }
        fn canonical(&self, p: &Path) -> PathBuf {
            p.to_path_buf()
        }
        fn list(&self, p: &Path) -> Vec<(OsString, Entry)> {
            self.0
                .iter()
                .filter(|(k, _)| k.parent() == Some(p))
                .map(|(k, e)| (k.file_name().unwrap().to_os_string(), e.clone()))
                .collect()
        }
        fn owner(&self, _: &Path) -> (u32, u32, u32) {
            (0o755, 0, 0)
        }
    }

    fn host() -> Fake {
        Fake::new(&[
            ("/bin", Entry::Symlink(PathBuf::from("usr/bin"))),
            ("/etc", Entry::Dir),
            ("/etc/hosts", Entry::Other),
            ("/tmp", Entry::Dir),
            ("/usr", Entry::Dir),
            ("/usr/share", Entry::Dir),
            ("/usr/share/doc", Entry::Dir),
            ("/d", Entry::Dir),
            ("/d/pki", Entry::Dir),
            ("/d/nodes/n/pods/u", Entry::Dir),
            ("/d/nodes/n/pods/u/volumes/v", Entry::Dir),
            ("/d/nodes/n/pods/u/etc-hosts", Entry::Other),
        ])
    }

    fn spec(mounts: &[(&str, &str)]) -> ViewSpec {
        ViewSpec {
            mounts: mounts
                .iter()
                .map(|(s, t)| Mount {
                    source: PathBuf::from(s),
                    target: PathBuf::from(t),
                    read_only: false,
                })
                .collect(),
            hidden: vec![PathBuf::from("/d")],
            pod_dir: PathBuf::from("/d/nodes/n/pods/u"),
            cwd: PathBuf::from("/d/nodes/n/pods/u"),
        }
    }

    fn bind(s: &str, t: &str) -> Op {
        Op::Bind {
            source: PathBuf::from(s),
            target: PathBuf::from(t),
            read_only: false,
            best_effort: false,
        }
    }

    #[test]
    fn existing_targets_are_bound_and_the_data_dir_hidden_but_the_pod_dir() {
        let plan = plan(
            &spec(&[
                ("/d/nodes/n/pods/u/etc-hosts", "/etc/hosts"),
                ("/d/nodes/n/pods/u/volumes/v", "/tmp"),
            ]),
            &host(),
        );
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            plan.ops,
            vec![
                // Shallow targets first.
                bind("/d/nodes/n/pods/u/volumes/v", "/tmp"),
                bind("/d/nodes/n/pods/u/etc-hosts", "/etc/hosts"),
                Op::Chdir(p("/d/nodes/n/pods/u")),
                Op::Tmpfs(p("/d"), "mode=755,size=1m".into()),
                Op::Mkdir(p("/d/nodes")),
                Op::Mkdir(p("/d/nodes/n")),
                Op::Mkdir(p("/d/nodes/n/pods")),
                Op::Mkdir(p("/d/nodes/n/pods/u")),
                bind(".", "/d/nodes/n/pods/u"),
                Op::RemountReadOnly(p("/d")),
            ]
        );
        assert!(plan.host_create.is_empty());
    }

    #[test]
    fn missing_top_level_targets_are_made_in_a_new_root_never_on_the_host() {
        let plan = plan(&spec(&[("/d/nodes/n/pods/u/volumes/v", "/skiff-x/a/b")]), &host());
        let p = |s: &str| PathBuf::from(s);
        let staging = p("/d/nodes/n/pods/u/rootfs");
        // The only thing made on the host is the staging directory, inside the pod's.
        assert_eq!(plan.host_create, vec![(staging.clone(), true)]);
        let ops = &plan.ops;
        let at = |op: &Op| {
            ops.iter()
                .position(|o| o == op)
                .unwrap_or_else(|| panic!("{op:?} in {ops:#?}"))
        };
        let tmpfs = at(&Op::Tmpfs(staging.clone(), "mode=755,uid=0,gid=0".into()));
        let link = at(&Op::Symlink {
            target: p("usr/bin"),
            path: staging.join("bin"),
        });
        let etc = at(&Op::Bind {
            source: p("/etc"),
            target: staging.join("etc"),
            read_only: false,
            best_effort: true,
        });
        let pivot = at(&Op::PivotToCwd);
        let mk = at(&Op::Mkdir(p("/skiff-x")));
        let mk2 = at(&Op::Mkdir(p("/skiff-x/a/b")));
        let b = at(&bind("/d/nodes/n/pods/u/volumes/v", "/skiff-x/a/b"));
        let hide = at(&Op::Tmpfs(p("/d"), "mode=755,size=1m".into()));
        assert!(tmpfs < link && link < pivot && etc < pivot && pivot < mk && mk < mk2 && mk2 < b && b < hide);
        assert_eq!(ops.last(), Some(&Op::Unmount(staging)));
        assert_eq!(ops.iter().filter(|o| **o == Op::PivotToCwd).count(), 1);
    }

    #[test]
    fn a_missing_target_below_an_existing_directory_shadows_that_directory() {
        let plan = plan(
            &spec(&[
                ("/d/nodes/n/pods/u/volumes/v", "/usr/share/nginx/html"),
                ("/d/nodes/n/pods/u/volumes/v", "/usr/share/nginx/conf"),
            ]),
            &host(),
        );
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            plan.ops[..6],
            [
                Op::Chdir(p("/usr/share")),
                Op::Tmpfs(p("/usr/share"), "mode=755,uid=0,gid=0".into()),
                Op::Mkdir(p("/usr/share/doc")),
                Op::Bind {
                    source: p("doc"),
                    target: p("/usr/share/doc"),
                    read_only: false,
                    best_effort: true
                },
                Op::Mkdir(p("/usr/share/nginx")),
                Op::Mkdir(p("/usr/share/nginx/html")),
            ]
        );
        // The second target reuses the shadow.
        assert_eq!(plan.ops[6], Op::Mkdir(p("/usr/share/nginx/conf")));
        assert_eq!(plan.ops.iter().filter(|o| matches!(o, Op::Tmpfs(..))).count(), 2);
        assert!(plan.host_create.is_empty());
    }

    #[test]
    fn a_mount_point_inside_a_volume_is_made_in_the_volume() {
        let plan = plan(
            &spec(&[("/srv/b", "/data/x/y"), ("/d/nodes/n/pods/u/volumes/v", "/data")]),
            &host(),
        );
        // Made in the volume (and the root's staging directory in the pod's own).
        assert_eq!(
            plan.host_create,
            vec![
                (PathBuf::from("/d/nodes/n/pods/u/rootfs"), true),
                (PathBuf::from("/d/nodes/n/pods/u/volumes/v/x/y"), true)
            ]
        );
        let binds: Vec<&Op> = plan
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Bind { best_effort: false, .. }))
            .collect();
        assert_eq!(binds[0], &bind("/d/nodes/n/pods/u/volumes/v", "/data"));
        assert_eq!(binds[1], &bind("/srv/b", "/data/x/y"));
    }

    #[test]
    fn a_file_mount_point_is_a_file() {
        let h = Fake::new(&[("/src", Entry::Dir), ("/src/f", Entry::Other), ("/etc", Entry::Dir)]);
        let mut s = spec(&[("/src/f", "/etc/app/config.yaml")]);
        s.hidden.clear();
        let plan = plan(&s, &h);
        assert!(plan.ops.contains(&Op::Mkdir(PathBuf::from("/etc/app"))));
        assert!(plan.ops.contains(&Op::Touch(PathBuf::from("/etc/app/config.yaml"))));
    }

    #[test]
    fn hidden_dirs_drop_nested_and_missing_ones() {
        let t = tempfile::tempdir().unwrap();
        let a = t.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        let got = hidden_dirs(&[a.join("b"), a.clone(), t.path().join("nope"), PathBuf::from("/")]);
        assert_eq!(got, vec![std::fs::canonicalize(&a).unwrap()]);
    }
}
