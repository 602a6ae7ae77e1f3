//! Starting a container's process: its own process group (setsid), its cgroups, and when the
//! agent is privileged its own mount and UTS namespaces with the pod's view of the filesystem
//! ([`super::view`]: volumes at their `mountPath`, the pod's `/etc/hosts`, the cluster's data
//! directory hidden).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::view::{self, Compiled, ViewSpec};

/// A bind mount into the container's mount namespace.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) source: PathBuf,
    pub(crate) target: PathBuf,
    pub(crate) read_only: bool,
}

/// How to isolate the process.
#[derive(Debug, Default)]
pub(crate) struct Isolation {
    /// New mount + UTS namespaces with this hostname and this view (privileged only).
    pub(crate) namespaces: Option<(String, ViewSpec)>,
    /// Namespaces of a running container to join (for exec probes): open `/proc/PID/ns/*`.
    pub(crate) join: Vec<File>,
    /// `cgroup.procs` files to join.
    pub(crate) cgroups: Vec<File>,
}

/// What to run.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) isolation: Isolation,
    /// Give the process a stdin pipe (containers with `stdin: true`); else /dev/null.
    pub(crate) stdin: bool,
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts the process with piped stdout and stderr, and piped or null stdin.
pub(crate) fn spawn(spec: Spec) -> io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cwd = cstr(&spec.cwd)?;
    let slash = CString::new("/").unwrap();
    let mut view = None;
    let mut hostname = None;
    if let Some((host, v)) = &spec.isolation.namespaces {
        let plan = view::plan(v, &view::RealHost);
        // Only inside the pod's directory or inside a volume: never elsewhere on the host.
        for (p, dir) in &plan.host_create {
            if *dir {
                std::fs::create_dir_all(p)?;
            } else {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                File::create(p)?;
            }
        }
        tracing::debug!(steps = plan.ops.len(), "the container's view of the filesystem");
        view = Some(Compiled::new(&plan)?);
        hostname = Some(host.clone().into_bytes());
    }
    let join: Vec<OwnedFd> = spec.isolation.join.into_iter().map(OwnedFd::from).collect();
    let cgroups: Vec<OwnedFd> = spec.isolation.cgroups.into_iter().map(OwnedFd::from).collect();
    let hooks = move || -> io::Result<()> {
        // Everything below is a plain system call: safe between fork and exec.
        // SAFETY: all pointers are to CStrings and buffers owned by this closure.
        unsafe {
            check(libc::setsid())?;
            for fd in &cgroups {
                check(libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) as libc::c_int)?;
            }
            for fd in &join {
                check(libc::setns(fd.as_raw_fd(), 0))?;
            }
            if let Some(host) = &hostname {
                check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
                check(libc::mount(
                    std::ptr::null(),
                    slash.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                check(libc::sethostname(host.as_ptr().cast(), host.len()))?;
                if let Some(v) = &view {
                    v.apply()?;
                }
            }
            check(libc::chdir(cwd.as_ptr()))?;
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe system calls on data prepared before fork.
    unsafe { cmd.pre_exec(hooks) };
    cmd.spawn()
}

/// Sends `sig` to the process group `pgid`.
pub(crate) fn signal_group(pgid: i32, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// Whether the agent runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Mounts a tmpfs at `dir` (in the agent's mount namespace).
pub(crate) fn mount_tmpfs(dir: &Path, size: Option<u64>, mode: u32) -> io::Result<()> {
    let target = cstr(dir)?;
    let fstype = CString::new("tmpfs").unwrap();
    let mut data = format!("mode={mode:o}");
    if let Some(s) = size {
        data.push_str(&format!(",size={s}"));
    }
    let data = CString::new(data).unwrap();
    // SAFETY: all pointers are valid NUL-terminated strings.
    check(unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    })
}

/// Bind-mounts `source` at `target` (in the agent's mount namespace).
pub(crate) fn bind_mount(source: &Path, target: &Path) -> io::Result<()> {
    let (src, dst) = (cstr(source)?, cstr(target)?);
    // SAFETY: both pointers are valid NUL-terminated strings.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    })
}

/// Detaches whatever is mounted at `dir`.
pub(crate) fn unmount(dir: &Path) {
    if let Ok(t) = cstr(dir) {
        // SAFETY: `t` is a valid NUL-terminated path.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether something is mounted exactly at `dir` (per /proc/self/mountinfo).
pub(crate) fn is_mount_point(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines().any(|l| l.split_whitespace().nth(4) == Some(want.as_ref()))
}
