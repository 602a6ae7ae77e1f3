//! Nodes as a real cluster's behave: pod readiness comes back after a node outage, probe
//! failures with different messages are different events, simulated nodes are tainted in a
//! mixed cluster, pod addresses are unique across nodes (node IPAM), and `skiff up` merges
//! its context into the user's kubeconfig.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{wait_for, wait_until, Background, Server};

const T: Duration = Duration::from_secs(60);

/// A `skiff agent` joined to `s`, killed when dropped.
struct Agent(Child);

impl Agent {
    fn join(s: &Server, name: &str, extra: &[&str]) -> Agent {
        let token = std::fs::read_to_string(s.data_dir.join("pki/admin.token")).unwrap();
        let log = std::fs::File::create(s.dir().join(format!("agent-{name}.log"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .args(["agent", "--server", &s.url(), "--token", token.trim(), "--name", name])
            .arg("--ca-file")
            .arg(s.data_dir.join("pki/ca.crt"))
            .arg("--data-dir")
            .arg(s.dir().join(format!("agent-{name}")))
            .args(["--kubelet-port", &common::free_local_port().to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Agent(child)
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // A stopped process must run again to die of anything but SIGKILL; SIGKILL it is.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pod_ready(s: &Server, pod: &str) -> String {
    s.k()
        .run(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .stdout
}

#[test]
fn pod_readiness_returns_after_the_agent_is_stopped_and_continued() {
    let s = Server::start_with(&["--node-monitor-grace-period", "4"]);
    let k = s.k();
    let agent = Agent::join(&s, "remote-1", &["--node-lease-duration-seconds", "4"]);
    wait_until(T, "remote-1 Ready", || {
        k.run(&["get", "node", "remote-1"]).stdout.contains(" Ready ")
    });
    k.ok(&["create", "deployment", "web", "--image=busybox", "--", "sleep", "3600"]);
    k.ok(&["expose", "deployment", "web", "--port=80"]);
    let pod = wait_for(T, "the web pod Ready", || {
        let name = k
            .run(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ])
            .stdout;
        (!name.is_empty() && pod_ready(&s, &name) == "True").then_some(name)
    });
    let endpoints = || {
        k.run(&[
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ])
        .stdout
    };
    wait_until(T, "the service has an endpoint", || !endpoints().is_empty());

    agent.signal("-STOP");
    wait_until(T, "node remote-1 NotReady", || {
        k.run(&["get", "node", "remote-1"]).stdout.contains("NotReady")
    });
    wait_until(T, "the pod marked not ready", || pod_ready(&s, &pod) == "False");
    wait_until(T, "the endpoint removed", || endpoints().is_empty());
    agent.signal("-CONT");

    wait_until(T, "node remote-1 Ready again", || {
        k.run(&["get", "node", "remote-1"]).stdout.contains(" Ready ")
    });
    wait_until(Duration::from_secs(30), "the pod Ready again", || {
        pod_ready(&s, &pod) == "True"
    });
    wait_until(T, "the deployment available", || {
        k.run(&["get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"])
            .stdout
            == "1"
    });
    wait_until(T, "the service's endpoint back", || !endpoints().is_empty());
    // One outage, one NotReady: the short grace period does not make the node flap.
    let counts = k.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=remote-1,reason=NodeNotReady",
        "-o",
        "jsonpath={.items[*].count}",
    ]);
    // (an event seen once has no count; a second NotReady would have counted into it)
    assert!(counts.is_empty() || counts == "1", "{counts}");
}

#[test]
fn too_short_a_grace_period_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::run_cmd(
        {
            let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
            c.arg("up").arg("--data-dir").arg(dir.path()).args([
                "--node-monitor-grace-period",
                "1",
                "--kubeconfig-merge=false",
            ]);
            c
        },
        None,
        T,
    );
    assert!(!out.success());
    assert!(
        out.stderr.contains("--node-monitor-grace-period 1 is too short"),
        "{}",
        out.stderr
    );
}

#[test]
fn probe_failures_with_different_messages_are_different_events() {
    let s = Server::start_with(&["--nodes", "1"]);
    let k = s.k();
    let closed = common::free_local_port();
    let manifest = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    livenessProbe:
      tcpSocket: {{port: {closed}}}
      periodSeconds: 1
      failureThreshold: 1000
    readinessProbe:
      exec:
        command: ["sh", "-c", "echo not ready; exit 1"]
      periodSeconds: 1
"#
    );
    let path = s.write_file("probed.yaml", manifest);
    k.ok(&["apply", "-f", path.to_str().unwrap()]);
    let messages = || {
        k.run(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=probed,reason=Unhealthy",
            "-o",
            "jsonpath={range .items[*]}{.count}{.series.count} {.message}{\"\\n\"}{end}",
        ])
        .stdout
    };
    let liveness = format!("Liveness probe failed: dial tcp 127.0.0.1:{closed}: connect: connection refused");
    let readiness = "Readiness probe failed: not ready";
    let counted = |m: &str, msg: &str| {
        m.lines().any(|l| {
            let (count, text) = l.split_once(' ').unwrap_or_default();
            text.trim_end() == msg && count.parse::<i32>().is_ok_and(|c| c > 1)
        })
    };
    wait_until(T, "a counted event for each probe", || {
        let m = messages();
        counted(&m, &liveness) && counted(&m, readiness)
    });
    let m = messages();
    // Each distinct message is one event, counted.
    assert_eq!(m.lines().filter(|l| l.ends_with(&liveness)).count(), 1, "{m}");
    assert_eq!(
        m.lines().filter(|l| l.trim_end().ends_with(readiness)).count(),
        1,
        "{m}"
    );
}

#[test]
fn mixed_cluster_taints_simulated_nodes() {
    let s = Server::start_with(&["--nodes", "1", "--sim-nodes", "2"]);
    let k = s.k();
    wait_until(T, "three Ready nodes", || {
        k.run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 3
    });
    let stdout = std::fs::read_to_string(s.stdout_log()).unwrap();
    let first: String = stdout.lines().take(4).collect::<Vec<_>>().join("\n");
    assert!(first.contains("skiff.dev/simulated"), "{first}");
    let taints = |n: &str| {
        k.ok(&[
            "get",
            "node",
            n,
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}={.value}:{.effect}{end}",
        ])
    };
    assert_eq!(taints("skiff-sim-1"), "skiff.dev/simulated=true:NoSchedule");
    assert_eq!(taints("skiff-sim-2"), "skiff.dev/simulated=true:NoSchedule");
    assert_eq!(taints("skiff-node-1"), "");

    k.ok(&[
        "create",
        "deployment",
        "cmd",
        "--image=busybox",
        "--replicas=3",
        "--",
        "sleep",
        "3600",
    ]);
    wait_until(T, "three pods scheduled", || {
        k.run(&[
            "get",
            "pods",
            "-l",
            "app=cmd",
            "-o",
            "jsonpath={.items[*].spec.nodeName}",
        ])
        .stdout
        .split_whitespace()
        .count()
            == 3
    });
    let nodes = k.ok(&[
        "get",
        "pods",
        "-l",
        "app=cmd",
        "-o",
        "jsonpath={.items[*].spec.nodeName}",
    ]);
    assert!(nodes.split_whitespace().all(|n| n == "skiff-node-1"), "{nodes}");

    // A pod that tolerates the taint may go to a simulated node.
    let manifest = r#"apiVersion: v1
kind: Pod
metadata:
  name: on-sim
spec:
  nodeSelector: {skiff.dev/sim: "true"}
  tolerations: [{key: skiff.dev/simulated, operator: Equal, value: "true", effect: NoSchedule}]
  containers:
  - name: c
    image: nginx
"#;
    let path = s.write_file("on-sim.yaml", manifest);
    k.ok(&["apply", "-f", path.to_str().unwrap()]);
    wait_until(T, "the tolerating pod Running on a simulated node", || {
        let out = k
            .run(&[
                "get",
                "pod",
                "on-sim",
                "-o",
                "jsonpath={.spec.nodeName} {.status.phase}",
            ])
            .stdout;
        out.starts_with("skiff-sim-") && out.ends_with(" Running")
    });
}

#[test]
fn pod_addresses_are_unique_across_simulated_nodes_and_joined_agents() {
    let s = Server::start_with(&["--sim-nodes", "1"]);
    let k = s.k();
    // A second set of simulated nodes joins: it used to number its ranges from the same base.
    let _sim = Agent::join(&s, "remote", &["--sim-nodes", "2"]);
    let _proc = Agent::join(&s, "remote-proc", &[]);
    let nodes = ["skiff-sim-1", "remote-sim-1", "remote-sim-2", "remote-proc"];
    let cidrs: Vec<String> = nodes
        .iter()
        .map(|n| {
            wait_for(T, &format!("{n} has a pod range"), || {
                let c = k.run(&["get", "node", n, "-o", "jsonpath={.spec.podCIDR}"]).stdout;
                (!c.is_empty()).then_some(c)
            })
        })
        .collect();
    let mut unique = cidrs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), cidrs.len(), "{cidrs:?}");

    // Pods on two simulated nodes of different agents get addresses of their own ranges.
    let mut ips = Vec::new();
    for (i, n) in ["skiff-sim-1", "remote-sim-1"].iter().enumerate() {
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{i}\nspec:\n  nodeName: {n}\n  containers:\n  - name: c\n    image: nginx\n"
        );
        let path = s.write_file(&format!("p{i}.yaml"), manifest);
        k.ok(&["apply", "-f", path.to_str().unwrap()]);
        let ip = wait_for(T, "a pod IP", || {
            let ip = k
                .run(&["get", "pod", &format!("p{i}"), "-o", "jsonpath={.status.podIP}"])
                .stdout;
            (!ip.is_empty()).then_some(ip)
        });
        let prefix = cidrs[if i == 0 { 0 } else { 1 }].trim_end_matches("0/24").to_string();
        assert!(ip.starts_with(&prefix), "{ip} not in {prefix}0/24");
        ips.push(ip);
    }
    assert_ne!(ips[0], ips[1]);
}

#[test]
fn skiff_up_merges_its_context_into_the_users_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let original = "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod.example:6443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\ncurrent-context: prod\nusers:\n- name: prod\n  user:\n    token: abc\npreferences: {}\n";
    std::fs::write(&config, original).unwrap();
    let up = |data: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_skiff"));
        c.arg("up")
            .arg("--data-dir")
            .arg(dir.path().join(data))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", common::free_local_port()))
            .args(["--network", "host"])
            .args(extra)
            .env("KUBECONFIG", format!("{}:/nonexistent/second", config.display()));
        Background::spawn(c)
    };

    // Default: one node, and the context merged, current, the old file backed up.
    let mut srv = up("data", &[]);
    let line = srv.wait_line(T, "the merge line", |l| l.contains("merged into"));
    assert!(line.contains(&config.display().to_string()), "{line}");
    let merged = std::fs::read_to_string(&config).unwrap();
    assert!(merged.contains("current-context: skiff"), "{merged}");
    assert!(merged.contains("name: prod"), "{merged}");
    assert!(merged.contains("prod.example"), "{merged}");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let backup = dir.path().join("config.skiff-backup");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), original);
    let kubectl = |args: &[&str]| {
        let mut c = Command::new(common::kubectl_bin(Some("1.33")));
        c.args(args).env("KUBECONFIG", &config);
        common::run_cmd(c, None, T)
    };
    wait_until(T, "kubectl finds the cluster and its default node", || {
        kubectl(&["get", "nodes"]).stdout.contains("skiff-node-1")
    });
    assert!(kubectl(&["config", "get-contexts", "-o", "name"])
        .stdout
        .contains("prod"));
    srv.kill();

    // Opt-out: the file is left alone.
    std::fs::write(&config, original).unwrap();
    let mut srv = up("data2", &["--kubeconfig-merge=false", "--nodes", "0"]);
    srv.wait_line(T, "the try line", |l| l.starts_with("try:"));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    srv.kill();
}
