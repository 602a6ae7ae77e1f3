//! Services in host networking (`skiff up --network host`), through the real kubectl: a
//! ClusterIP on the loopback service range balancing over three pods (each answering with its
//! name on its own port, found through a named targetPort), requests from another pod through
//! the service environment variables, a pod turning unready leaving the rotation, ClientIP
//! affinity, NodePort and LoadBalancer on the node address, ExternalName, `kubectl expose` and
//! `kubectl port-forward svc/NAME`.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{assert_contains, free_local_port, wait_for, wait_until, Server, Table};

const T: Duration = Duration::from_secs(60);

/// A pod answering `GET /` with its name on `port`; `GET /down` makes its readiness probe
/// (`/healthz`) fail from then on.
fn web_pod(name: &str, port: u16) -> String {
    // JSON strings are YAML double-quoted scalars that keep their newlines.
    let server = serde_json::Value::String(SERVER.into());
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: web}}}}
spec:
  containers:
  - name: web
    image: python
    command: [python3, -c, {server}, "{port}"]
    env: [{{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}]
    ports: [{{name: http, containerPort: {port}}}]
    readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"#
    )
}

const SERVER: &str = r#"import http.server, os, sys
down = []
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == '/down': down.append(1)
        code = 503 if self.path == '/healthz' and down else 200
        self.send_response(code); self.end_headers()
        self.wfile.write(os.environ['POD_NAME'].encode())
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()"#;

/// The bodies of `n` GETs of `url`, sent from this host.
fn get_many(url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = std::process::Command::new("curl")
                .args(["-s", "--max-time", "5", url])
                .output()
                .expect("curl");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().filter(|s| !s.is_empty()).cloned().collect()
}

fn svc_field(s: &Server, name: &str, jsonpath: &str) -> String {
    s.k().ok(&["get", "svc", name, "-o", &format!("jsonpath={jsonpath}")])
}

#[test]
fn host_network_services() {
    // A /24 of its own, so parallel test clusters never share a service address.
    let octet = free_local_port() % 200 + 20;
    let cidr = format!("127.44.{octet}.0/24");
    let s = Server::start_with(&["--nodes", "1", "--network", "host", "--service-cidr", &cidr]);
    let k = s.k();
    wait_until(T, "a Ready node", || {
        k.run(&["get", "nodes"]).stdout.contains(" Ready ")
    });

    let ports: Vec<u16> = (0..3).map(|_| free_local_port()).collect();
    let names = ["web-a", "web-b", "web-c"];
    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#,
    );
    let pods: String = names
        .iter()
        .zip(&ports)
        .map(|(n, p)| format!("---{}", web_pod(n, *p)))
        .collect();
    k.ok_stdin(&["apply", "-f", "-"], &pods);
    let ip = svc_field(&s, "web", "{.spec.clusterIP}");
    assert!(ip.starts_with(&format!("127.44.{octet}.")), "{ip}");

    // Endpoints list every pod on its own port.
    let want: BTreeSet<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    wait_until(T, "three endpoints", || {
        let out = k.run(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={range .subsets[*]}{range .ports[*]}{.port} {end}{end}",
        ]);
        let got: BTreeSet<String> = out
            .stdout
            .split_whitespace()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        got == want
    });
    let url = format!("http://{ip}/");
    wait_until(T, "all three pods answer through the ClusterIP", || {
        set(&get_many(&url, 30)).len() == 3
    });

    // From another pod, through the service variables kubelet sets.
    k.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  containers: [{name: c, image: python, command: [sleep, "3600"]}]
"#,
    );
    let script = "import os, urllib.request\nu = 'http://%s:%s/' % (os.environ['WEB_SERVICE_HOST'], os.environ['WEB_SERVICE_PORT'])\nprint(' '.join(urllib.request.urlopen(u, timeout=5).read().decode() for _ in range(30)))";
    let seen = wait_for(T, "the client pod reaches all three", || {
        let out = k.run(&["exec", "client", "--", "python3", "-c", script]);
        let got: BTreeSet<String> = out.stdout.split_whitespace().map(str::to_string).collect();
        (got.len() == 3).then_some(got)
    });
    assert_eq!(seen, names.iter().map(|n| n.to_string()).collect());

    // web-b turns unready: it leaves the endpoints and the rotation.
    get_many(&format!("http://127.0.0.1:{}/down", ports[1]), 1);
    wait_until(T, "web-b not ready", || {
        k.run(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].notReadyAddresses[*].targetRef.name}",
        ])
        .stdout
            == "web-b"
    });
    let after = get_many(&url, 30);
    assert!(!after.contains(&"web-b".to_string()), "{after:?}");
    assert_eq!(set(&after).len(), 2, "{after:?}");

    // ClientIP affinity: one client, one pod.
    k.ok(&[
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    wait_until(T, "requests stick to one pod", || set(&get_many(&url, 10)).len() == 1);

    // NodePort and LoadBalancer on the node's address.
    let lb_port = free_local_port();
    k.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Service
metadata: {{name: web-lb}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports: [{{port: {lb_port}, targetPort: http}}]
"#
        ),
    );
    let node_port = svc_field(&s, "web-lb", "{.spec.ports[0].nodePort}");
    let np: u16 = node_port.parse().expect("a node port");
    assert!((30000..=32767).contains(&np), "{np}");
    wait_until(T, "the load balancer's address", || {
        let t = Table::parse(&k.run(&["get", "svc", "web-lb"]).stdout);
        t.row("web-lb").get("EXTERNAL-IP").map(String::as_str) == Some("127.0.0.1")
    });
    for url in [
        format!("http://127.0.0.1:{np}/"),
        format!("http://127.0.0.1:{lb_port}/"),
    ] {
        wait_until(T, &format!("{url} answers"), || {
            set(&get_many(&url, 10)).iter().all(|n| n == "web-a" || n == "web-c")
                && !set(&get_many(&url, 10)).is_empty()
        });
    }
    let err = k.fails(&[
        "create",
        "service",
        "nodeport",
        "clash",
        "--tcp",
        "80:80",
        "--node-port",
        &node_port,
    ]);
    assert_contains(&err, "provided port is already allocated");

    // ExternalName: no ClusterIP, the name in EXTERNAL-IP.
    k.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "--external-name",
        "db.example.com",
    ]);
    let t = Table::parse(&k.ok(&["get", "svc", "ext"]));
    assert_eq!(t.row("ext")["CLUSTER-IP"], "<none>");
    assert_eq!(t.row("ext")["EXTERNAL-IP"], "db.example.com");

    // `kubectl expose pod` with a named target port.
    k.ok(&[
        "expose",
        "pod",
        "web-a",
        "--name",
        "web-a-svc",
        "--port",
        "8080",
        "--target-port",
        "http",
    ]);
    let a_url = format!("http://{}:8080/", svc_field(&s, "web-a-svc", "{.spec.clusterIP}"));
    wait_until(T, "the exposed pod answers", || {
        set(&get_many(&a_url, 3)) == set(&["web-a".to_string()])
    });

    // `kubectl expose svc` copies the service's selector.
    k.ok(&[
        "expose",
        "svc",
        "web",
        "--name",
        "web-again",
        "--port",
        "8081",
        "--target-port",
        "http",
    ]);
    let again = format!("http://{}:8081/", svc_field(&s, "web-again", "{.spec.clusterIP}"));
    assert_eq!(svc_field(&s, "web-again", "{.spec.selector.app}"), "web");
    wait_until(T, "the re-exposed service answers", || {
        let got = set(&get_many(&again, 5));
        !got.is_empty() && got.iter().all(|n| names.contains(&n.as_str()))
    });

    // port-forward to a service goes to one of its pods' target port.
    let local = free_local_port();
    let mut pf = s.spawn_kubectl(None, &["port-forward", "svc/web", &format!("{local}:80")]);
    pf.wait_line(T, "Forwarding from", |l| l.starts_with("Forwarding from 127.0.0.1"));
    let got = get_many(&format!("http://127.0.0.1:{local}/"), 3);
    assert!(
        got.iter().all(|n| names.contains(&n.as_str())),
        "{got:?}\n{}",
        pf.stderr()
    );
    pf.kill();
}
