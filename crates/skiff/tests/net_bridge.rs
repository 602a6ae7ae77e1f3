//! Pod networking and services in bridge networking (`skiff up --network bridge`, root),
//! through the real kubectl: pods with their own addresses on two nodes reaching each other
//! without NAT, a Deployment of three pods behind a ClusterIP reached from another pod by DNS
//! name, a pod turning unready leaving the rotation, NodePort on the node address, a headless
//! Service resolving to each StatefulSet pod, an ExternalName CNAME, two containers of one pod
//! over localhost, and `kubectl port-forward svc/NAME`.
//!
//! These tests share the host's 10.42.0.0/16 and 10.43.0.0/16: nextest runs them one at a
//! time (`.config/nextest.toml`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{assert_contains, free_local_port, wait_for, wait_until, Server, Table};

const T: Duration = Duration::from_secs(60);

/// Answers `GET /` with the pod's name, `/whoami` with the client's address; after
/// `GET /down` its readiness (`/healthz`) fails.
const SERVER: &str = r#"import http.server, os
down = []
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == '/down': down.append(1)
        body = self.client_address[0] if self.path == '/whoami' else os.environ['POD_NAME']
        self.send_response(503 if self.path == '/healthz' and down else 200); self.end_headers()
        self.wfile.write(body.encode())
http.server.ThreadingHTTPServer(('', 8080), H).serve_forever()"#;

fn start() -> Server {
    let s = Server::start_with(&["--nodes", "2", "--network", "bridge"]);
    wait_until(T, "two Ready nodes", || {
        s.k().run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 2
    });
    s
}

fn server_container() -> String {
    let script = serde_json::Value::String(SERVER.into());
    format!(
        r#"
      - name: web
        image: python
        command: [python3, -c, {script}]
        env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}"#
    )
}

/// Runs a Python snippet in `pod` and returns its output.
fn py(s: &Server, pod: &str, code: &str) -> common::Out {
    s.k().run(&["exec", pod, "--", "python3", "-c", code])
}

fn curl(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pod_ip(s: &Server, pod: &str) -> String {
    s.k().ok(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"])
}

#[test]
fn bridge_network_services_and_dns() {
    let s = start();
    let k = s.k();
    let nodes = Table::parse(&k.ok(&["get", "nodes", "-o", "wide"]));
    let node_ip = nodes.row("skiff-node-1")["INTERNAL-IP"].clone();
    assert_eq!(node_ip, "10.42.1.1");

    k.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:{}
---
apiVersion: v1
kind: Pod
metadata: {{name: client}}
spec:
  nodeName: skiff-node-2
  containers: [{{name: c, image: python, command: [sleep, "3600"]}}]
"#,
            server_container()
        ),
    );
    k.ok(&[
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
    k.ok(&["wait", "--for=condition=Ready", "pod", "--all", "--timeout=60s"]);

    // Every pod has its own address in its node's range.
    let pods = Table::parse(&k.ok(&["get", "pods", "-o", "wide"]));
    let web: Vec<(String, String)> = pods
        .column("NAME")
        .into_iter()
        .zip(pods.column("NODE"))
        .filter(|(n, _)| n.starts_with("web-"))
        .collect();
    assert_eq!(web.len(), 3);
    let client_ip = pod_ip(&s, "client");
    assert!(client_ip.starts_with("10.42.2."), "{client_ip}");
    let resolv = k.ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert_contains(&resolv, "nameserver 10.43.0.10");
    assert_contains(
        &resolv,
        "search default.svc.cluster.local svc.cluster.local cluster.local",
    );

    // describe reads the slices (kubectl dereferences every slice port's name: unnamed ports
    // must carry "").
    let described = k.ok(&["describe", "svc", "web"]);
    for (name, _) in &web {
        assert_contains(&described, &format!("{}:8080", pod_ip(&s, name)));
    }

    // Pod to pod across nodes, without NAT: the server sees the client's own address.
    let on_node1 = web
        .iter()
        .find(|(_, node)| node == "skiff-node-1")
        .or(web.first())
        .unwrap();
    let target = pod_ip(&s, &on_node1.0);
    let seen = py(
        &s,
        "client",
        &format!(
        "import urllib.request;print(urllib.request.urlopen('http://{target}:8080/whoami',timeout=5).read().decode())"
    ),
    );
    assert_eq!(seen.stdout.trim(), client_ip, "{}", seen.stderr);

    // By DNS name, from another pod: all three answer.
    let names: BTreeSet<String> = web.iter().map(|(n, _)| n.clone()).collect();
    let fetch_all = |host: &str| {
        format!("import urllib.request;print(' '.join(urllib.request.urlopen('http://{host}/',timeout=5).read().decode() for _ in range(40)))")
    };
    for host in ["web", "web.default", "web.default.svc.cluster.local"] {
        wait_until(T, &format!("{host} reaches all three pods"), || {
            let got: BTreeSet<String> = py(&s, "client", &fetch_all(host))
                .stdout
                .split_whitespace()
                .map(str::to_string)
                .collect();
            got == names
        });
    }

    // One pod turns unready: it leaves the rotation.
    let gone = web[0].0.clone();
    curl(&format!("http://{}:8080/down", pod_ip(&s, &gone)));
    wait_until(T, "the unready pod out of the endpoints", || {
        !k.run(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].targetRef.name}",
        ])
        .stdout
        .contains(&gone)
    });
    let after = py(&s, "client", &fetch_all("web")).stdout;
    assert!(!after.contains(&gone), "{after}");

    // NodePort on a node's address, from the host.
    let np = k.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"]);
    let body = curl(&format!("http://{node_ip}:{np}/"));
    assert!(names.contains(&body) && body != gone, "{body:?}");

    // port-forward to the service lands on one of its pods.
    let local = free_local_port();
    let mut pf = s.spawn_kubectl(None, &["port-forward", "svc/web", &format!("{local}:80")]);
    pf.wait_line(T, "Forwarding from", |l| l.starts_with("Forwarding from 127.0.0.1"));
    let body = curl(&format!("http://127.0.0.1:{local}/"));
    assert!(names.contains(&body), "{body:?}\n{}", pf.stderr());
    pf.kill();

    // The node's bridge keeps a MAC of its own: one borrowed from a pod's port changes when
    // that pod goes, and the other pods lose their gateway until their ARP entries expire.
    let addrs = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&addrs.stdout);
    let bridge = text
        .lines()
        .find(|l| l.contains(&format!(" {node_ip}/24 ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .expect("the node's bridge")
        .to_string();
    let mac = std::fs::read_to_string(format!("/sys/class/net/{bridge}/address")).expect("the bridge's MAC");
    assert!(mac.starts_with("02:00:"), "{bridge} has {mac}");

    // ExternalName: a CNAME to the target (an in-cluster name, so no outside resolver is
    // needed).
    k.ok(&[
        "create",
        "service",
        "externalname",
        "alias",
        "--external-name",
        "web.default.svc.cluster.local",
    ]);
    let cname = wait_for(T, "the ExternalName CNAME", || {
        let out = py(
            &s,
            "client",
            "import socket;n,a,ips=socket.gethostbyname_ex('alias.default.svc.cluster.local');print(n, a, ips)",
        )
        .stdout;
        out.contains("web.default.svc.cluster.local").then_some(out)
    });
    let ip = k.ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_contains(&cname, &ip);
}

#[test]
fn headless_statefulset_names_and_localhost_between_containers() {
    let s = start();
    let k = s.k();
    k.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: db}}
spec:
  clusterIP: None
  selector: {{app: db}}
  ports: [{{name: http, port: 8080}}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db}}
spec:
  serviceName: db
  replicas: 2
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:{}
---
apiVersion: v1
kind: Pod
metadata: {{name: pair}}
spec:
  containers:
  - name: server
    image: python
    command: [python3, -m, http.server, "9000", --bind, 127.0.0.1]
  - name: client
    image: python
    command: [sh, -c, 'until python3 -c "import urllib.request;print(urllib.request.urlopen(\"http://localhost:9000/\").status)"; do sleep 0.5; done; sleep 3600']
"#,
            server_container()
        ),
    );
    wait_until(T, "db-1 ready", || {
        k.run(&[
            "get",
            "pod",
            "db-1",
            "-o",
            "jsonpath={.status.containerStatuses[0].ready}",
        ])
        .stdout
            == "true"
    });
    for pod in ["db-0", "db-1"] {
        let ip = pod_ip(&s, pod);
        let lookup = format!("import socket;print(socket.gethostbyname('{pod}.db.default.svc.cluster.local'))");
        wait_until(T, &format!("{pod}.db resolves to {ip}"), || {
            py(&s, "db-0", &lookup).stdout.trim() == ip
        });
    }
    let all = wait_for(T, "the headless name lists both pods", || {
        let out = py(
            &s,
            "db-0",
            "import socket;print(sorted(socket.gethostbyname_ex('db')[2]))",
        )
        .stdout;
        (out.matches("10.42.").count() == 2).then_some(out)
    });
    assert_contains(&all, &pod_ip(&s, "db-1"));

    // Containers of one pod share its network: the client reaches the server on localhost.
    wait_until(T, "the client read the server's file over localhost", || {
        k.run(&["logs", "pair", "-c", "client"]).stdout.trim().ends_with("200")
    });
}
