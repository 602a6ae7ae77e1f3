//! The binary at its edges, through real processes and kubectl: SIGTERM ends `skiff up` at
//! once; a second cluster on the same data directory, or on ranges a live cluster uses,
//! refuses with one line and leaves the first alone; host-networking clusters get loopback
//! ranges of their own; in bridge networking NodePorts answer on 127.0.0.1, and a second
//! LoadBalancer Service on a taken port stays pending (with a Warning event) without
//! stopping the service proxy for every other Service.
//!
//! Bridge networking uses host-wide ranges: nextest runs this binary's tests one at a time
//! (the `bridge` group of `.config/nextest.toml`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{assert_contains, free_local_port, run_cmd, wait_for, wait_until, Out, Server};

const T: Duration = Duration::from_secs(60);

/// Answers `GET /` with the pod's name.
const SERVER: &str = r#"import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(os.environ['POD_NAME'].encode())
http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()"#;

/// A Deployment `web` of one pod serving [`SERVER`] on 8080, and a `client` pod.
fn deploy_web(s: &Server) {
    let script = serde_json::Value::String(SERVER.into());
    s.k().ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: python
        command: [python3, -c, {script}]
        env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{tcpSocket: {{port: http}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  containers: [{{name: c, image: python, command: [sleep, "3600"]}}]
"#
        ),
    );
    s.k()
        .ok(&["wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s"]);
}

fn curl(url: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "3", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a second `skiff up` on `data_dir` with `args` until it exits (it should refuse).
fn second_up(data_dir: &Path, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
    cmd.arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", free_local_port()))
        .args(args)
        .env("RUST_BACKTRACE", "0");
    run_cmd(cmd, None, Duration::from_secs(30))
}

fn node_port(s: &Server, svc: &str) -> String {
    s.k()
        .ok(&["get", "svc", svc, "-o", "jsonpath={.spec.ports[0].nodePort}"])
}

fn lb_ingress(s: &Server, svc: &str) -> String {
    s.k()
        .ok(&["get", "svc", svc, "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}"])
}

#[test]
fn sigterm_ends_skiff_up_at_once() {
    let mut s = Server::start_with(&["--nodes", "1"]);
    wait_until(T, "a Ready node", || {
        s.k().run(&["get", "nodes"]).stdout.contains(" Ready ")
    });
    // A running pod needs no grace period here: the node stops its processes.
    s.k()
        .ok(&["run", "sleeper", "--image=python", "--command", "--", "sleep", "3600"]);
    s.k()
        .ok(&["wait", "--for=condition=Ready", "pod/sleeper", "--timeout=60s"]);
    let took = s
        .terminate(Duration::from_secs(15))
        .expect("skiff up exits after SIGTERM");
    // The store used to wait 10 s for its last reference.
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
}

#[test]
fn a_second_skiff_up_on_the_same_data_dir_refuses() {
    let s = Server::start();
    let out = second_up(&s.data_dir, &["--network", "host"]);
    assert!(!out.success(), "{}", out.all());
    let line = out.stderr.trim();
    assert_contains(line, "another skiff is running on");
    assert_contains(line, &format!("(pid {})", s.pid()));
    assert_eq!(line.lines().count(), 1, "one line: {line}");
    // The first one is untouched.
    s.k().ok(&["get", "ns", "default"]);
}

#[test]
fn host_clusters_get_loopback_ranges_of_their_own() {
    let a = Server::start();
    let b = Server::start();
    let ip = |s: &Server| {
        s.k()
            .ok(&["get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"])
    };
    let (ip_a, ip_b) = (ip(&a), ip(&b));
    assert!(ip_a.starts_with("127.") && ip_b.starts_with("127."), "{ip_a} {ip_b}");
    assert_ne!(ip_a, ip_b, "each cluster's API server has its own service address");
    // Asking for the range the first one uses is refused, naming it and the flag.
    let range = format!("{}.0.0/16", ip_a.rsplitn(3, '.').last().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = second_up(dir.path(), &["--network", "host", "--service-cidr", &range]);
    assert!(!out.success(), "{}", out.all());
    assert_contains(&out.stderr, &format!("{range} is in use by the skiff cluster in"));
    assert_contains(&out.stderr, "choose another with --service-cidr");
}

fn start_bridge() -> Server {
    let s = Server::start_with(&["--nodes", "1", "--network", "bridge"]);
    wait_until(T, "a Ready node", || {
        s.k().run(&["get", "nodes"]).stdout.contains(" Ready ")
    });
    s
}

#[test]
fn a_second_bridge_cluster_on_the_same_ranges_refuses_and_leaves_the_first_alone() {
    let s = start_bridge();
    deploy_web(&s);
    s.k()
        .ok(&["expose", "deployment", "web", "--port", "80", "--target-port", "http"]);
    let fetch = "import urllib.request; print(urllib.request.urlopen('http://web/', timeout=3).read().decode())";
    let through_dns = || s.k().run(&["exec", "client", "--", "python3", "-c", fetch]).stdout;
    wait_until(T, "the service by name from a pod", || through_dns().contains("web-"));

    let dir = tempfile::tempdir().unwrap();
    let out = second_up(dir.path(), &["--network", "bridge", "--nodes", "1"]);
    assert!(!out.success(), "{}", out.all());
    let line = out.stderr.trim();
    assert_contains(line, "10.42.0.0/16 is in use by the skiff cluster in");
    assert_contains(line, &format!("(pid {})", s.pid()));
    assert_contains(line, "choose another with --cluster-cidr and --service-cidr");
    assert_eq!(line.lines().count(), 1, "one line: {line}");

    // The first cluster's DNS and service rules are still there.
    for _ in 0..3 {
        assert_contains(&through_dns(), "web-");
    }
}

#[test]
fn nodeports_answer_on_the_host_loopback() {
    let s = start_bridge();
    deploy_web(&s);
    s.k().ok(&[
        "expose",
        "deployment",
        "web",
        "--port",
        "80",
        "--target-port",
        "http",
        "--type",
        "NodePort",
    ]);
    let np = node_port(&s, "web");
    wait_until(T, "the NodePort on the node address", || {
        curl(&format!("http://10.42.1.1:{np}/")).starts_with("web-")
    });
    wait_until(T, "the NodePort on 127.0.0.1", || {
        curl(&format!("http://127.0.0.1:{np}/")).starts_with("web-")
    });
    assert!(curl(&format!("http://localhost:{np}/")).starts_with("web-"));
}

#[test]
fn a_second_load_balancer_on_a_taken_port_stays_pending_and_blocks_nothing() {
    let s = start_bridge();
    deploy_web(&s);
    let k = s.k();
    let expose = |name: &str, port: &str, ty: &str| {
        k.ok(&[
            "expose",
            "deployment",
            "web",
            "--name",
            name,
            "--port",
            port,
            "--target-port",
            "http",
            "--type",
            ty,
        ]);
    };
    expose("lb-a", "8081", "LoadBalancer");
    wait_until(T, "lb-a's EXTERNAL-IP", || lb_ingress(&s, "lb-a") == "10.42.1.1");
    expose("lb-b", "8081", "LoadBalancer");
    let event = wait_for(T, "a Warning event on lb-b", || {
        let out = k
            .run(&["get", "events", "--field-selector", "involvedObject.name=lb-b"])
            .stdout;
        out.contains("SyncLoadBalancerFailed").then_some(out)
    });
    assert_contains(&event, "Warning");
    assert_contains(
        &event,
        "port 8081/TCP is already in use by the load balancer of Service default/lb-a",
    );
    // Every other Service still gets its rules.
    expose("after", "8082", "ClusterIP");
    let ip = k.ok(&["get", "svc", "after", "-o", "jsonpath={.spec.clusterIP}"]);
    wait_until(T, "a ClusterIP made after the conflict", || {
        curl(&format!("http://{ip}:8082/")).starts_with("web-")
    });
    assert!(
        curl("http://10.42.1.1:8081/").starts_with("web-"),
        "lb-a keeps its port"
    );
    assert_eq!(lb_ingress(&s, "lb-b"), "", "lb-b stays pending");
    let table = k.ok(&["get", "svc", "lb-b"]);
    assert_contains(&table, "<pending>");
    // Once lb-a is gone, lb-b gets the port.
    k.ok(&["delete", "svc", "lb-a"]);
    wait_until(T, "lb-b's EXTERNAL-IP", || lb_ingress(&s, "lb-b") == "10.42.1.1");
}
