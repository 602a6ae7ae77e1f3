//! exec and port-forward through the real API server and the real kubectl (1.27: SPDY only;
//! 1.30: WebSocket exec, SPDY port-forward; 1.33: WebSocket exec, SPDY-in-WebSocket
//! port-forward; plus the dispatcher `kubectl` on PATH), against the agent's streaming router
//! with the local process runtime.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use skiff_agent::streaming::local::{self, LocalProcessRuntime};
use skiff_agent::streaming::{router, Session, StreamError, StreamOpts, StreamRuntime};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

const TIMEOUT: Duration = Duration::from_secs(60);

/// (first path segment, Upgrade header, answer status) of every request the agent served.
type Seen = Arc<Mutex<Vec<(String, String, u16)>>>;

struct Cluster {
    _dir: tempfile::TempDir,
    seen: Seen,
    running: Option<skiff_apiserver::Running>,
    kubeconfig: PathBuf,
    agent: tokio::task::JoinHandle<()>,
}

impl Cluster {
    /// An API server, an agent streaming server on a free port, Node `n1` pointing at it and a
    /// Running pod `p` (container `c`) on it.
    async fn start() -> Cluster {
        Self::start_with(Arc::new(LocalProcessRuntime)).await
    }

    async fn start_with(rt: Arc<dyn StreamRuntime>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().to_path_buf()))
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Seen::default();
        let log = seen.clone();
        let app = router(rt).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let log = log.clone();
                async move {
                    let kind = req.uri().path().split('/').nth(1).unwrap_or("").to_string();
                    let upgrade = req
                        .headers()
                        .get("upgrade")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    let resp = next.run(req).await;
                    log.lock().unwrap().push((kind, upgrade, resp.status().as_u16()));
                    resp
                }
            },
        ));
        // Served as a joined agent serves it: a self-signed certificate (which the API server
        // accepts unverified) and the API server's client certificate checked against the CA.
        let ca = skiff_agent::kubelet_tls::ClusterCa {
            cert_pem: running.ca_pem.clone(),
            key_pem: None,
        };
        let (cert, key) = skiff_agent::kubelet_tls::serving_cert(Some(&ca), "n1", "127.0.0.1").unwrap();
        let tls = skiff_agent::kubelet_tls::server_config(Some(&ca), &cert, &key).unwrap();
        let agent = tokio::spawn(async move {
            skiff_agent::kubelet_tls::serve(listener, tls, app).await.unwrap();
        });
        let client = skiff_apiserver::local::client(running.server.clone());
        let nodes: Api<Node> = Api::all(client.clone());
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
            )
            .await
            .unwrap();
        let status = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        }});
        nodes
            .patch_status("n1", &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "inf"], "stdin": true}]},
        });
        pods.create(&PostParams::default(), &serde_json::from_value(pod).unwrap())
            .await
            .unwrap();
        pods.patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
        Cluster {
            kubeconfig: running.kubeconfig.clone(),
            _dir: dir,
            seen,
            running: Some(running),
            agent,
        }
    }

    /// The transports (Upgrade values) that were answered 101 for `kind` requests.
    fn upgrades(&self, kind: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let mut v: Vec<String> = seen
            .iter()
            .filter(|(k, _, status)| k == kind && *status == 101)
            .map(|(_, u, _)| u.clone())
            .collect();
        v.dedup();
        v
    }

    async fn stop(mut self) {
        self.agent.abort();
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    fn kubectl(&self, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
            .env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// `kubectl` on PATH, or the versioned binary next to it (`kubectl.1.27`, …).
fn kubectl_bin(version: Option<&str>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file())?;
    let Some(v) = version else { return Some(found) };
    let real = std::fs::canonicalize(&found).ok()?;
    let versioned = real.parent()?.join(format!("kubectl.{v}"));
    versioned.is_file().then_some(versioned)
}

struct Output {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("kubectl runs");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(data).await.unwrap();
        drop(w);
    }
    let out = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("kubectl finishes in time")
        .unwrap();
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn check_exec(c: &Cluster, bin: &Path, env: &[(&str, &str)]) {
    let label = format!("{} {env:?}", bin.display());
    let mut cmd = c.kubectl(bin, &["exec", "p", "--", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    cmd.envs(env.iter().copied());
    let out = run(cmd, None).await;
    assert_eq!(out.stdout, "out\n", "{label}: {}", out.stderr);
    assert!(out.stderr.contains("err\n"), "{label}: {}", out.stderr);
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "{label}: {}",
        out.stderr
    );
    assert_eq!(out.code, Some(3), "{label}");

    let mut cmd = c.kubectl(bin, &["exec", "-i", "p", "--", "cat"]);
    cmd.envs(env.iter().copied());
    let out = run(cmd, Some(b"hi\n")).await;
    assert_eq!(
        (out.stdout.as_str(), out.code),
        ("hi\n", Some(0)),
        "{label}: {}",
        out.stderr
    );

    // More than the 64 KiB SPDY window, both ways.
    let big: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut cmd = c.kubectl(bin, &["exec", "-i", "p", "--", "sh", "-c", "cat; echo done"]);
    cmd.envs(env.iter().copied());
    let out = run(cmd, Some(&big)).await;
    assert_eq!(out.code, Some(0), "{label}: {}", out.stderr);
    assert_eq!(out.stdout.len(), big.len() + 5, "{label}");
    assert!(out.stdout.as_bytes().starts_with(&big[..1000]), "{label}");
    assert!(out.stdout.ends_with("done\n"), "{label}");
}

/// A TCP server on 127.0.0.1 that echoes every connection back.
async fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

async fn check_port_forward(c: &Cluster, bin: &Path, env: &[(&str, &str)], remote: u16) {
    let label = format!("{} {env:?}", bin.display());
    let target = format!(":{remote}");
    let mut cmd = c.kubectl(bin, &["port-forward", "pod/p", &target]);
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let local: u16 = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // "Forwarding from 127.0.0.1:43125 -> 8080"
            if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                return rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!("{label}: kubectl port-forward ended without forwarding");
    })
    .await
    .expect("port-forward starts in time");
    for round in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
        let msg = format!("hello {round} through the tunnel\n").repeat(2000 * round + 1);
        let (mut r, mut w) = s.split();
        let write = async {
            w.write_all(msg.as_bytes()).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let read = r.read_to_end(&mut back);
        let (_, n) = tokio::time::timeout(TIMEOUT, async { tokio::join!(write, read) })
            .await
            .unwrap_or_else(|_| panic!("{label}: echo round {round} timed out"));
        n.unwrap();
        assert_eq!(String::from_utf8_lossy(&back), msg, "{label}");
    }
    child.kill().await.unwrap();
}

/// Runs the exec and port-forward checks with one kubectl and checks which transports it used
/// (`None`: whatever the dispatcher picks).
async fn check_version(version: Option<&str>, env: &[(&str, &str)], expect: Option<(&str, &str)>) {
    let Some(bin) = kubectl_bin(version) else {
        eprintln!("kubectl {version:?} not found; skipping");
        return;
    };
    let c = Cluster::start().await;
    let echo = echo_server().await;
    check_exec(&c, &bin, env).await;
    check_port_forward(&c, &bin, env, echo).await;
    if let Some((exec, pf)) = expect {
        assert_eq!(c.upgrades("exec"), vec![exec.to_string()], "{version:?} exec");
        assert_eq!(
            c.upgrades("portForward"),
            vec![pf.to_string()],
            "{version:?} port-forward"
        );
    }
    c.stop().await;
}

const SPDY: &str = "spdy/3.1";
const WS: &str = "websocket";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_spdy() {
    check_version(Some("1.27"), &[], Some((SPDY, SPDY))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_30_websocket_exec_spdy_port_forward() {
    check_version(Some("1.30"), &[], Some((WS, SPDY))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_websocket() {
    check_version(Some("1.33"), &[], Some((WS, WS))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_forced_spdy() {
    check_version(
        Some("1.33"),
        &[
            ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"),
            ("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false"),
        ],
        Some((SPDY, SPDY)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_on_path() {
    check_version(None, &[], None).await;
}

/// `exec -it` needs a terminal on kubectl's side: `script` provides one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_tty_through_script() {
    let (Some(bin), true) = (kubectl_bin(Some("1.33")), Path::new("/usr/bin/script").is_file()) else {
        eprintln!("kubectl 1.33 or script(1) not found; skipping");
        return;
    };
    let c = Cluster::start().await;
    for env in [None, Some(("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false"))] {
        let inner = format!(
            "{} --kubeconfig {} exec -it p -- sh -c 'tty; stty size; exit 5'",
            bin.display(),
            c.kubeconfig.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &inner, "/dev/null"])
            .env("COLUMNS", "91")
            .env("LINES", "17")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = run(cmd, None).await;
        assert!(
            out.stdout.contains("/dev/pts/"),
            "{env:?}: {} {}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout.contains("command terminated with exit code 5"),
            "{env:?}: {} {}",
            out.stdout,
            out.stderr
        );
        assert_eq!(out.code, Some(5), "{env:?}: {}", out.stdout);
    }
    c.stop().await;
}

/// The local runtime, with `attach` reaching a fresh `sh -c 'echo attached; cat'`.
struct AttachableRuntime;

impl StreamRuntime for AttachableRuntime {
    fn exec(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        opts: StreamOpts,
    ) -> BoxFuture<'static, Result<Session, StreamError>> {
        LocalProcessRuntime.exec(ns, pod, container, command, opts)
    }

    fn attach(&self, _: &str, _: &str, _: &str, opts: StreamOpts) -> BoxFuture<'static, Result<Session, StreamError>> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo attached; cat"]);
        async move { local::spawn(cmd, opts) }.boxed()
    }

    fn port_forward(&self, ns: &str, pod: &str, port: u16) -> BoxFuture<'static, Result<TcpStream, StreamError>> {
        LocalProcessRuntime.port_forward(ns, pod, port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_with_stdin() {
    let c = Cluster::start_with(Arc::new(AttachableRuntime)).await;
    for v in ["1.27", "1.33"] {
        let Some(bin) = kubectl_bin(Some(v)) else { continue };
        let out = run(c.kubectl(&bin, &["attach", "-i", "p", "-c", "c"]), Some(b"hi\n")).await;
        assert_eq!(
            (out.stdout.as_str(), out.code),
            ("attached\nhi\n", Some(0)),
            "{v}: {}",
            out.stderr
        );
    }
    c.stop().await;
}

/// When kubectl goes away mid-command, the command is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_ends_when_the_client_leaves() {
    let c = Cluster::start().await;
    for v in ["1.27", "1.33"] {
        let Some(bin) = kubectl_bin(Some(v)) else { continue };
        let mut child = c
            .kubectl(&bin, &["exec", "p", "--", "sh", "-c", "echo $$; exec sleep 100"])
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let pid: i32 = tokio::time::timeout(TIMEOUT, lines.next_line())
            .await
            .expect("the command starts")
            .unwrap()
            .expect("it prints its pid")
            .trim()
            .parse()
            .unwrap();
        child.kill().await.unwrap();
        let gone = async {
            // SAFETY: signal 0 only checks that the process exists.
            while unsafe { libc::kill(pid, 0) } == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(TIMEOUT, gone)
            .await
            .unwrap_or_else(|_| panic!("{v}: process {pid} still runs after kubectl left"));
    }
    c.stop().await;
}

/// A refused connection in the pod is reported on the error stream and closes the local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_to_a_closed_port_reports_the_error() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let c = Cluster::start().await;
    for v in ["1.27", "1.33"] {
        let Some(bin) = kubectl_bin(Some(v)) else { continue };
        let target = format!(":{closed}");
        let mut child = c.kubectl(&bin, &["port-forward", "pod/p", &target]).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let local: u16 = tokio::time::timeout(TIMEOUT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                    return rest.split_whitespace().next().unwrap().parse().unwrap();
                }
            }
            panic!("{v}: kubectl port-forward ended without forwarding");
        })
        .await
        .expect("port-forward starts in time");
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut s = TcpStream::connect(("127.0.0.1", local)).await.unwrap();
        let mut back = Vec::new();
        tokio::time::timeout(TIMEOUT, s.read_to_end(&mut back))
            .await
            .expect("the local connection is closed")
            .ok();
        assert!(back.is_empty(), "{v}");
        let reported = tokio::time::timeout(TIMEOUT, async {
            while let Some(line) = stderr.next_line().await.unwrap() {
                if line.contains(&format!("error forwarding port {closed} to pod default/p")) {
                    return;
                }
            }
        });
        reported.await.unwrap_or_else(|_| panic!("{v}: no error reported"));
        child.kill().await.unwrap();
    }
    c.stop().await;
}
