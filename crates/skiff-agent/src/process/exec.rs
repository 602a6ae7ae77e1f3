//! The streaming side of the process runtime ([`StreamRuntime`]): `exec` runs a command in a
//! running container's context (its environment and working directory, its cgroups, and when
//! privileged its mount and UTS namespaces), `attach` joins the container's main process
//! (output from now on, stdin when the container has `stdin: true`), and `port-forward`
//! connects to 127.0.0.1 (pods share the host network).
//!
//! Pod workers register each running container instance in the [`Registry`]; the
//! registration goes away with the instance.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::{broadcast, mpsc, watch};

use super::cgroup::Cgroup;
use super::Agent;
use crate::streaming::{local, BoxRead, BoxWrite, Exit, Session, StreamError, StreamOpts, StreamRuntime};

/// Output chunks of a main process: (`true` for stderr, bytes).
pub(crate) type Output = broadcast::Sender<(bool, Bytes)>;

/// What exec and attach need of a running container instance.
pub(crate) struct Running {
    /// The instance id.
    pub(crate) id: String,
    /// The main process (leader of the container's process group).
    pub(crate) pid: i32,
    /// The environment the container got.
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: PathBuf,
    pub(crate) cgroup: Option<Cgroup>,
    /// Whether the container has its own mount and UTS namespaces (to join).
    pub(crate) namespaces: bool,
    /// The main process's output, for attachers; `None` once it has all been read.
    pub(crate) output: Mutex<Option<Output>>,
    /// The main process's stdin (containers with `stdin: true`); `None` once closed.
    pub(crate) stdin: Option<Arc<tokio::sync::Mutex<Option<ChildStdin>>>>,
    /// Close the main process's stdin when the first attach session's input ends.
    pub(crate) stdin_once: bool,
    /// The exit code, once the main process ended.
    pub(crate) exited: watch::Sender<Option<i32>>,
}

impl Running {
    fn subscribe(&self) -> Option<broadcast::Receiver<(bool, Bytes)>> {
        self.output.lock().unwrap().as_ref().map(|o| o.subscribe())
    }

    /// The main process's output is all read and it ended with `code`: attachers finish.
    pub(crate) fn ended(&self, code: i32) {
        self.output.lock().unwrap().take();
        self.exited.send_replace(Some(code));
    }
}

type Key = (String, String, String);

/// Running container instances by (namespace, pod, container).
#[derive(Clone, Default)]
pub(crate) struct Registry(Arc<Mutex<HashMap<Key, Arc<Running>>>>);

impl Registry {
    /// Registers an instance; it stays until the returned guard is dropped.
    pub(crate) fn register(&self, ns: &str, pod: &str, container: &str, r: Arc<Running>) -> Registration {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        let id = r.id.clone();
        self.0.lock().unwrap().insert(key.clone(), r);
        Registration {
            registry: self.clone(),
            key,
            id,
        }
    }

    pub(crate) fn get(&self, ns: &str, pod: &str, container: &str) -> Option<Arc<Running>> {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        self.0.lock().unwrap().get(&key).cloned()
    }
}

/// Removes its instance from the registry when dropped (unless a newer one replaced it).
pub(crate) struct Registration {
    registry: Registry,
    key: Key,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut m = self.registry.0.lock().unwrap();
        if m.get(&self.key).is_some_and(|r| r.id == self.id) {
            m.remove(&self.key);
        }
    }
}

/// upstream kubelet's error for a container that is not running.
pub(crate) fn not_found(container: &str) -> String {
    format!("container not found ({container:?})")
}

/// The process runtime as the streaming server sees it.
pub(crate) struct Streams(pub(crate) Arc<Agent>);

impl StreamRuntime for Streams {
    fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>> {
        let found = self.0.running.get(ns, pod, container);
        let container = container.to_string();
        async move {
            let r = found.ok_or_else(|| StreamError::NotFound(not_found(&container)))?;
            exec(&r, command, opts)
        }
        .boxed()
    }

    fn attach(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>> {
        let found = self.0.running.get(ns, pod, container);
        let container = container.to_string();
        async move {
            let r = found.ok_or_else(|| StreamError::NotFound(not_found(&container)))?;
            Ok(attach(&r, opts))
        }
        .boxed()
    }

    fn port_forward(
        &self,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> BoxFuture<'static, Result<tokio::net::TcpStream, StreamError>> {
        let uid = self
            .0
            .pods
            .state()
            .iter()
            .find(|p| p.metadata.namespace.as_deref() == Some(ns) && p.metadata.name.as_deref() == Some(pod))
            .map(|p| p.metadata.uid.clone().unwrap_or_default());
        let netns = uid.as_ref().map(|u| self.0.pods_dir().join(u).join("netns"));
        let (ns, pod) = (ns.to_string(), pod.to_string());
        async move {
            if uid.is_none() {
                return Err(StreamError::NotFound(format!("pod {ns}/{pod} not found")));
            }
            // Inside the pod's own network namespace when it has one, as kubelet dials.
            let conn = match netns.filter(|p| p.exists()) {
                Some(path) => connect_in(path, port).await,
                None => tokio::net::TcpStream::connect(("127.0.0.1", port)).await,
            };
            conn.map_err(|e| {
                let why = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
                    _ => e.to_string(),
                };
                StreamError::Failed(format!(
                    "failed to connect to localhost:{port} inside the network of pod {pod}: dial tcp4 127.0.0.1:{port}: {why}"
                ))
            })
        }
        .boxed()
    }
}

/// Connects to `127.0.0.1:port` inside the network namespace at `netns`, from a thread that
/// joins it (a socket stays in the namespace it was made in).
async fn connect_in(netns: std::path::PathBuf, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let stream = tokio::task::spawn_blocking(move || -> std::io::Result<std::net::TcpStream> {
        let f = std::fs::File::open(&netns)?;
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own: joining a namespace changes the calling thread for good.
        std::thread::spawn(move || {
            // SAFETY: setns only changes this short-lived thread's network namespace.
            let r = if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                std::net::TcpStream::connect(("127.0.0.1", port))
            };
            let _ = tx.send(r);
        });
        rx.recv()
            .map_err(|_| std::io::Error::other("the dialing thread died"))?
    })
    .await
    .map_err(std::io::Error::other)??;
    stream.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(stream)
}

fn failed(e: std::io::Error) -> StreamError {
    StreamError::Failed(format!("failed to start the command: {e}"))
}

/// Runs `command` in the container's context.
fn exec(r: &Running, command: Vec<String>, opts: StreamOpts) -> Result<Session, StreamError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| StreamError::Failed("no command given".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).env_clear().envs(r.env.iter().map(|(k, v)| (k, v)));
    let mut join: Vec<OwnedFd> = Vec::new();
    if r.namespaces {
        for ns in ["net", "mnt", "uts"] {
            let f = std::fs::File::open(format!("/proc/{}/ns/{ns}", r.pid))
                .map_err(|_| StreamError::NotFound(format!("container process {} is gone", r.pid)))?;
            join.push(f.into());
        }
    }
    let cgroups: Vec<OwnedFd> = match &r.cgroup {
        Some(cg) => cg
            .procs_files()
            .map_err(failed)?
            .into_iter()
            .map(OwnedFd::from)
            .collect(),
        None => Vec::new(),
    };
    let cwd = CString::new(r.cwd.as_os_str().as_bytes())
        .map_err(|_| StreamError::Failed("NUL in the working directory".into()))?;
    let hook = move || -> std::io::Result<()> {
        // Plain system calls on data prepared before fork.
        // SAFETY: the fds and the CString are owned by this closure.
        unsafe {
            for fd in &cgroups {
                if libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for fd in &join {
                if libc::setns(fd.as_raw_fd(), 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Joining a mount namespace moves the working directory to its root.
            if libc::chdir(cwd.as_ptr()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the hook makes only async-signal-safe system calls.
    unsafe { cmd.pre_exec(hook) };
    local::spawn(cmd, opts).map_err(|e| match e {
        StreamError::Failed(m) if m.contains("No such file or directory") => {
            StreamError::Failed(format!("exec: {program:?}: executable file not found in $PATH"))
        }
        e => e,
    })
}

/// Joins the main process: its output from now on, its stdin when it has one.
fn attach(r: &Running, opts: StreamOpts) -> Session {
    // With a terminal, upstream merges stderr into stdout.
    let stdout = opts
        .stdout
        .then(|| output_reader(r.subscribe(), move |err| !err || opts.tty));
    let stderr = (opts.stderr && !opts.tty).then(|| output_reader(r.subscribe(), |err| err));
    let stdin = match (&r.stdin, opts.stdin) {
        (Some(pipe), true) => Some(stdin_writer(pipe.clone(), r.stdin_once)),
        _ => None,
    };
    let mut exited = r.exited.subscribe();
    let exit = async move {
        match exited.wait_for(|c| c.is_some()).await {
            Ok(c) => Exit::Code(c.unwrap_or_default()),
            Err(_) => Exit::Error("the container stopped".into()),
        }
    }
    .boxed();
    Session {
        stdin,
        stdout,
        stderr,
        resize: None,
        exit,
    }
}

/// A reader of the chunks of one stream of the main process's output; ends with the output.
fn output_reader(
    rx: Option<broadcast::Receiver<(bool, Bytes)>>,
    want: impl Fn(bool) -> bool + Send + 'static,
) -> BoxRead {
    let (tx, out) = mpsc::channel::<Bytes>(16);
    if let Some(mut rx) = rx {
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok((err, b)) if want(err) => {
                        if tx.send(b).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    Box::new(crate::streaming::ChanReader::new(out))
}

/// A writer into the main process's stdin. When the attach session's input ends and the
/// container has `stdinOnce`, the stdin is closed for good.
fn stdin_writer(pipe: Arc<tokio::sync::Mutex<Option<ChildStdin>>>, once: bool) -> BoxWrite {
    let (ours, mut theirs) = tokio::io::duplex(16 * 1024);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut guard = pipe.lock().await;
            let Some(stdin) = guard.as_mut() else { return };
            if stdin.write_all(&buf[..n]).await.is_err() || stdin.flush().await.is_err() {
                guard.take();
                return;
            }
        }
        if once {
            pipe.lock().await.take();
        }
    });
    Box::new(ours)
}
