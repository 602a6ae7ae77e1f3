//! End-to-end harness: start `skiff up` on a temporary data directory and a free port, and drive
//! it with the real `kubectl` binaries.
//!
//! Sharing: every test function starts its own server (`Server::start()`, about a second) and
//! the server is SIGKILLed when the `Server` is dropped. There is deliberately no process-wide
//! shared server: `cargo nextest` runs each test in its own process, so a shared server would not
//! be shared anyway, and a server kept in a `static` is never dropped, so it would outlive the
//! test. Tests that share a server keep apart by using their own namespaces, and each test
//! groups many checks behind one start to keep CI time low.
//!
//! A watchdog shell process kills the server if the test process dies without unwinding (for
//! example when nextest kills a test that timed out), so no server outlives its test.
//!
//! When a test panics, the temporary directory is kept and the tail of the server's log is
//! printed, with the path of the full logs.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a server may take to answer `/readyz` after it was spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one kubectl invocation may take before the test fails (watches excepted).
pub const KUBECTL_TIMEOUT: Duration = Duration::from_secs(90);

/// Directory holding the seed manifests extracted from the study notes.
pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("seeds")
}

/// Path of one seed manifest, e.g. `seed("deployment-mydeploy.yaml")`.
pub fn seed(name: &str) -> PathBuf {
    let p = seeds_dir().join(name);
    assert!(p.exists(), "seed manifest {} is missing", p.display());
    p
}

/// Every seed manifest, sorted by file name.
pub fn all_seeds() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(seeds_dir())
        .expect("read seeds dir")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    v.sort();
    v
}

/// Directory of the versioned kubectl binaries (`kubectl.1.27` … `kubectl.1.33`): the directory
/// of the real file behind the `kubectl` on PATH.
pub fn kubectl_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let path = std::env::var_os("PATH").expect("PATH is set");
        for d in std::env::split_paths(&path) {
            let cand = d.join("kubectl");
            if cand.is_file() {
                let real = std::fs::canonicalize(&cand).expect("canonicalize kubectl");
                return real.parent().unwrap().to_path_buf();
            }
        }
        panic!("no kubectl on PATH");
    })
}

/// The kubectl binary for `version` ("1.27" … "1.33"); `None` is the `kubectl` on PATH (a
/// dispatcher that picks the client minor from the server's /version).
pub fn kubectl_bin(version: Option<&str>) -> PathBuf {
    match version {
        None => PathBuf::from("kubectl"),
        Some(v) => {
            let p = kubectl_dir().join(format!("kubectl.{v}"));
            assert!(p.is_file(), "{} does not exist", p.display());
            p
        }
    }
}

/// Polls `cond` every 50 ms until it is true; panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Like [`wait_until`] but returns the value the closure produced.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// The result of one command.
#[derive(Debug, Clone)]
pub struct Out {
    pub cmd: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// stdout and stderr together, for messages that kubectl prints on either.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    fn describe(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmd, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion with a time limit, feeding `stdin`.
pub fn run_cmd(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Out {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&input);
        });
    }
    let out_t = read_all(child.stdout.take().unwrap());
    let err_t = read_all(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stdout = out_t.join().unwrap_or_default();
                let stderr = err_t.join().unwrap_or_default();
                panic!("{desc} did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    Out {
        cmd: desc,
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A running `skiff up` on a temporary data directory.
pub struct Server {
    tmp: Option<tempfile::TempDir>,
    root: PathBuf,
    pub data_dir: PathBuf,
    pub port: u16,
    pub kubeconfig: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    starts: u32,
    extra_args: Vec<String>,
}

impl Server {
    /// Starts a server on a fresh data directory and a free port, and waits until it is ready.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Like [`Server::start`], with more `skiff up` flags (e.g. `--sim-nodes 3`).
    ///
    /// Clusters use host networking unless the flags choose: bridge networking gives every
    /// cluster the same pod and service ranges and routes, so only tests that run one at a
    /// time (the `bridge` test group) may use it.
    pub fn start_with(extra_args: &[&str]) -> Server {
        let mut extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        if !extra_args.iter().any(|a| a == "--network") {
            extra_args.extend(["--network".to_string(), "host".to_string()]);
        }
        // `skiff up` runs one node by default; tests ask for the nodes they want.
        if !extra_args.iter().any(|a| a == "--nodes" || a.starts_with("--nodes=")) {
            extra_args.extend(["--nodes".to_string(), "0".to_string()]);
        }
        // Tests never touch the user's kubeconfig.
        extra_args.push("--kubeconfig-merge=false".to_string());
        let tmp = tempfile::Builder::new()
            .prefix("skiff-e2e-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().to_path_buf();
        let data_dir = root.join("data");
        let mut s = Server {
            kubeconfig: data_dir.join("kubeconfig"),
            tmp: Some(tmp),
            root,
            data_dir,
            port: free_port(),
            child: None,
            watchdog: None,
            starts: 0,
            extra_args,
        };
        s.spawn_and_wait();
        s
    }

    /// The server's HTTPS base URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A scratch directory for the test's own files (manifests, editor scripts).
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// Writes `content` to a file in the scratch directory and returns its path.
    pub fn write_file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.root.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes an executable shell script to use as `EDITOR` for `kubectl edit`. The script gets
    /// the file to edit as `$1`; `body` is shell code, e.g. `sed -i 's/replicas: 1/replicas: 3/' "$1"`.
    pub fn editor_script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.write_file(name, format!("#!/bin/sh\nset -e\n{body}\n"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// Process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is not running").id()
    }

    /// Path of the stdout log of the current (latest) start.
    pub fn stdout_log(&self) -> PathBuf {
        self.root.join(format!("skiff.{}.stdout.log", self.starts))
    }

    /// Path of the stderr log of the current (latest) start.
    pub fn stderr_log(&self) -> PathBuf {
        self.root.join(format!("skiff.{}.stderr.log", self.starts))
    }

    fn spawn_and_wait(&mut self) {
        self.starts += 1;
        let stdout = std::fs::File::create(self.stdout_log()).unwrap();
        let stderr = std::fs::File::create(self.stderr_log()).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("up")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn skiff up");
        // Kill the server if this test process goes away without dropping us.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -9 {srv} 2>/dev/null",
                me = std::process::id(),
                srv = child.id()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        self.child = Some(child);
        self.watchdog = watchdog;
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("skiff up exited with {status} before it was ready\n{}", self.log_tail());
            }
            if self.kubeconfig.exists() {
                let mut cmd = Command::new(kubectl_bin(Some("1.33")));
                cmd.arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(["get", "--raw", "/readyz", "--request-timeout=2s"]);
                let out = run_cmd(cmd, None, Duration::from_secs(10));
                if out.success() && out.stdout.trim() == "ok" {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("skiff up was not ready within {START_TIMEOUT:?}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server as Ctrl-C does (SIGTERM), so it removes what it made on the host
    /// (bridges, nftables tables); SIGKILL after 10 s.
    pub fn stop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Some(c) = self.child.as_mut() {
                    if c.try_wait().ok().flatten().is_some() {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Sends SIGTERM and waits (up to `limit`) for the server to exit; returns how long it
    /// took, or `None` (after SIGKILL) when it did not exit in time.
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let c = self.child.as_mut()?;
        let start = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let mut took = None;
        while start.elapsed() < limit {
            if c.try_wait().ok().flatten().is_some() {
                took = Some(start.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        took
    }

    /// Sends SIGKILL to the server process (the child this harness spawned) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut c) = self.child.take() {
            // std's Child::kill sends SIGKILL on Unix.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data directory and port and waits until it is ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart() needs kill() first");
        self.spawn_and_wait();
    }

    /// Last lines of the server's logs, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut s = String::new();
        for p in [self.stdout_log(), self.stderr_log()] {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            s.push_str(&format!(
                "--- {} (last {} lines) ---\n",
                p.display(),
                lines.len() - from
            ));
            for l in &lines[from..] {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// kubectl on PATH (the version dispatcher).
    pub fn k(&self) -> Kubectl<'_> {
        Kubectl {
            srv: self,
            version: None,
            env: Vec::new(),
        }
    }

    /// kubectl of an explicit version, "1.27" … "1.33".
    pub fn kv(&self, version: &str) -> Kubectl<'_> {
        Kubectl {
            srv: self,
            version: Some(version.to_string()),
            env: Vec::new(),
        }
    }

    /// kubectl with an optional explicit version (None = the one on PATH).
    pub fn kubectl(&self, version: Option<&str>, args: &[&str]) -> Out {
        Kubectl {
            srv: self,
            version: version.map(str::to_string),
            env: Vec::new(),
        }
        .run(args)
    }

    /// `kubectl … args` with kubectl on PATH; panics with the full output unless it succeeds.
    pub fn ok(&self, args: &[&str]) -> String {
        self.k().ok(args)
    }

    /// `kubectl … args` with kubectl on PATH; panics unless it fails; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.k().fails(args)
    }

    /// The admin bearer token from the kubeconfig.
    pub fn token(&self) -> String {
        let t = self.ok(&["config", "view", "--raw", "-o", "jsonpath={.users[0].user.token}"]);
        assert!(!t.trim().is_empty(), "kubeconfig has no bearer token for users[0]");
        t.trim().to_string()
    }

    /// Raw HTTPS request with curl (`-k`); `token` None sends no Authorization header.
    /// Returns (HTTP status, body).
    pub fn curl(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&[u8]>,
        ctype: &str,
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sk",
            "--max-time",
            "30",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        if let Some(t) = token {
            cmd.arg("-H").arg(format!("Authorization: Bearer {t}"));
        }
        if body.is_some() {
            cmd.arg("-H")
                .arg(format!("Content-Type: {ctype}"))
                .arg("--data-binary")
                .arg("@-");
        }
        cmd.arg(format!("{}{}", self.url(), path));
        let out = run_cmd(cmd, body, Duration::from_secs(60));
        let (text, code) = out.stdout.rsplit_once('\n').unwrap_or(("", out.stdout.as_str()));
        let code: u16 = code.trim().parse().unwrap_or(0);
        (code, text.to_string())
    }

    /// Spawns a long-running kubectl (e.g. `get -w`) whose output is collected in the background.
    pub fn spawn_kubectl(&self, version: Option<&str>, args: &[&str]) -> Background {
        let mut cmd = Command::new(kubectl_bin(version));
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg(format!("--cache-dir={}", self.cache_dir(version).display()));
        cmd.args(args);
        Background::spawn(cmd)
    }

    fn cache_dir(&self, version: Option<&str>) -> PathBuf {
        self.root.join(format!("kube-cache-{}", version.unwrap_or("path")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("\n===== skiff server logs =====\n{}", self.log_tail());
            if let Some(tmp) = self.tmp.take() {
                let kept = tmp.keep();
                eprintln!("kept the test directory {} for inspection", kept.display());
            }
        }
    }
}

/// A kubectl of one version against one server.
#[derive(Clone)]
pub struct Kubectl<'a> {
    srv: &'a Server,
    version: Option<String>,
    env: Vec<(String, String)>,
}

impl Kubectl<'_> {
    /// A copy of this handle with an extra environment variable.
    pub fn env(&self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        let mut c = self.clone();
        c.env.push((k.to_string(), v.as_ref().to_string_lossy().into_owned()));
        c
    }

    /// A copy of this handle with `EDITOR` set (`KUBE_EDITOR`, which kubectl prefers, is cleared).
    pub fn editor(&self, script: &Path) -> Self {
        self.env("EDITOR", script)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_bin(self.version.as_deref()));
        cmd.arg("--kubeconfig").arg(&self.srv.kubeconfig).arg(format!(
            "--cache-dir={}",
            self.srv.cache_dir(self.version.as_deref()).display()
        ));
        cmd.args(args);
        cmd.env_remove("KUBECONFIG").env_remove("KUBE_EDITOR");
        cmd.current_dir(&self.srv.root);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs kubectl; returns status, stdout and stderr.
    pub fn run(&self, args: &[&str]) -> Out {
        run_cmd(self.command(args), None, KUBECTL_TIMEOUT)
    }

    /// Runs kubectl with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Out {
        run_cmd(self.command(args), Some(input.as_bytes()), KUBECTL_TIMEOUT)
    }

    /// Runs kubectl and panics with the full output unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.success(), "kubectl failed\n{}", out.describe());
        out.stdout
    }

    /// Like [`Kubectl::ok`] with `input` on stdin.
    pub fn ok_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.run_stdin(args, input);
        assert!(out.success(), "kubectl failed\n{}", out.describe());
        out.stdout
    }

    /// Runs kubectl and panics unless it fails; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.success(), "kubectl unexpectedly succeeded\n{}", out.describe());
        out.stderr
    }

    /// Like [`Kubectl::fails`] with `input` on stdin.
    pub fn fails_stdin(&self, args: &[&str], input: &str) -> String {
        let out = self.run_stdin(args, input);
        assert!(!out.success(), "kubectl unexpectedly succeeded\n{}", out.describe());
        out.stderr
    }
}

/// A background process whose stdout and stderr are collected as they arrive.
pub struct Background {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    desc: String,
}

impl Background {
    pub fn spawn(mut cmd: Command) -> Background {
        let desc = format!("{cmd:?}");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
                stdout.clone(),
            ),
            (
                Box::new(child.stderr.take().unwrap()) as Box<dyn Read + Send>,
                stderr.clone(),
            ),
        ] {
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut chunk = [0u8; 4096];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n])),
                    }
                }
            });
        }
        Background {
            child,
            stdout,
            stderr,
            desc,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until a stdout line satisfies `pred`; returns that line.
    pub fn wait_line(&mut self, timeout: Duration, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.stdout().lines().find(|l| pred(l)) {
                return l.to_string();
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what} from {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.desc,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL, by the pid of the child spawned here).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One table as kubectl prints it (a header line and rows aligned by a tabwriter).
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses the first table in `text`.
    pub fn parse(text: &str) -> Table {
        Table::parse_all(text)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no table in output:\n{text}"))
    }

    /// Parses every table in `text` (tables are separated by blank lines, as in `get all`).
    pub fn parse_all(text: &str) -> Vec<Table> {
        let mut tables = Vec::new();
        let mut block: Vec<&str> = Vec::new();
        for line in text.lines().chain(std::iter::once("")) {
            if line.trim().is_empty() {
                if !block.is_empty() {
                    tables.push(Table::parse_block(&block));
                    block.clear();
                }
            } else {
                block.push(line);
            }
        }
        tables
    }

    fn parse_block(lines: &[&str]) -> Table {
        let header: Vec<char> = lines[0].chars().collect();
        // Columns are separated by at least two spaces; names like "NODE SELECTOR" have one.
        let mut starts = Vec::new();
        let mut headers = Vec::new();
        let mut i = 0;
        while i < header.len() {
            if header[i] != ' ' {
                let start = i;
                let mut end = i;
                while end < header.len() && !(header[end] == ' ' && header.get(end + 1).is_none_or(|c| *c == ' ')) {
                    end += 1;
                }
                starts.push(start);
                headers.push(header[start..end].iter().collect::<String>());
                i = end;
            } else {
                i += 1;
            }
        }
        let rows = lines[1..]
            .iter()
            .map(|l| {
                let chars: Vec<char> = l.chars().collect();
                (0..starts.len())
                    .map(|c| {
                        let from = starts[c].min(chars.len());
                        let to = if c + 1 < starts.len() {
                            starts[c + 1].min(chars.len())
                        } else {
                            chars.len()
                        };
                        chars[from..to].iter().collect::<String>().trim().to_string()
                    })
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    /// Asserts the header names, in order.
    pub fn assert_headers(&self, expected: &[&str]) {
        assert_eq!(self.headers, expected, "table headers differ\n{self:#?}");
    }

    /// Index of a column by header name.
    pub fn col(&self, name: &str) -> usize {
        self.headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.headers))
    }

    /// The row whose first column (NAME, or NAMESPACE with -A: use `row_by`) is `name`.
    pub fn row(&self, name: &str) -> HashMap<String, String> {
        self.row_by(&self.headers[0].clone(), name)
    }

    /// The row whose column `col` is `value`.
    pub fn row_by(&self, col: &str, value: &str) -> HashMap<String, String> {
        let c = self.col(col);
        let r = self
            .rows
            .iter()
            .find(|r| r[c] == value)
            .unwrap_or_else(|| panic!("no row with {col}={value} in table\n{self:#?}"));
        self.headers.iter().cloned().zip(r.iter().cloned()).collect()
    }

    /// Values of one column, in order.
    pub fn column(&self, name: &str) -> Vec<String> {
        let c = self.col(name);
        self.rows.iter().map(|r| r[c].clone()).collect()
    }
}

/// Asserts that row `r` has `col` == `want`, for several columns.
pub fn assert_cells(r: &HashMap<String, String>, want: &[(&str, &str)]) {
    for (col, v) in want {
        assert_eq!(r.get(*col).map(String::as_str), Some(*v), "column {col} in row {r:?}");
    }
}

/// The value of a `Key:   value` line in `kubectl describe` output (first match, top level or
/// indented).
pub fn describe_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let t = l.trim_start();
        t.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    })
}

/// Current UTC time as RFC 3339 (`2024-05-01T10:00:00Z`).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // civil-from-days (Howard Hinnant)
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Lines of `text` trimmed, without empty ones.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Asserts `haystack` contains `needle`, printing both otherwise.
#[track_caller]
pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected to find\n  {needle:?}\nin\n{haystack}"
    );
}

/// Asserts `haystack` does not contain `needle`.
#[track_caller]
pub fn assert_not_contains(haystack: &str, needle: &str) {
    assert!(
        !haystack.contains(needle),
        "expected NOT to find\n  {needle:?}\nin\n{haystack}"
    );
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for processes a test starts in pods).
pub fn free_local_port() -> u16 {
    free_port()
}

/// Whether the tests run as root (process nodes then isolate pods: hostname, mounts, cgroups).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// One cell of `kubectl get pod NAME` in namespace `ns` (e.g. "READY", "STATUS", "RESTARTS").
pub fn pod_cell(s: &Server, ns: &str, pod: &str, col: &str) -> String {
    let out = s.k().run(&["get", "pod", pod, "-n", ns]);
    if !out.success() || out.stdout.trim().is_empty() {
        return String::new();
    }
    Table::parse(&out.stdout).row(pod).get(col).cloned().unwrap_or_default()
}
