//! `skiff agent` joins a running server as a process node; killing it makes the node NotReady
//! and its pods are evicted after their toleration.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{wait_until, Server};

const T: Duration = Duration::from_secs(60);

#[test]
fn joined_agent_runs_pods_and_its_death_evicts_them() {
    let s = Server::start_with(&["--node-monitor-grace-period", "2", "--default-toleration-seconds", "2"]);
    let k = s.k();
    let token = std::fs::read_to_string(s.data_dir.join("pki/admin.token")).unwrap();
    let agent_dir = s.dir().join("agent");
    let log = std::fs::File::create(s.dir().join("agent.log")).unwrap();
    let mut agent = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args([
            "agent",
            "--server",
            &s.url(),
            "--token",
            token.trim(),
            "--name",
            "remote-1",
        ])
        .arg("--ca-file")
        .arg(s.data_dir.join("pki/ca.crt"))
        .arg("--data-dir")
        .arg(&agent_dir)
        .args(["--kubelet-port", &common::free_local_port().to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();

    wait_until(T, "remote-1 Ready", || {
        k.run(&["get", "node", "remote-1"]).stdout.contains(" Ready ")
    });
    k.ok(&[
        "run",
        "remote-pod",
        "--image=busybox",
        "--command",
        "--",
        "sh",
        "-c",
        "echo hello from remote; sleep 3600",
    ]);
    wait_until(T, "pod running on remote-1", || {
        k.run(&[
            "get",
            "pod",
            "remote-pod",
            "-o",
            "jsonpath={.spec.nodeName} {.status.phase}",
        ])
        .stdout
            == "remote-1 Running"
    });
    wait_until(T, "logs through the API server", || {
        k.run(&["logs", "remote-pod"]).stdout.contains("hello from remote")
    });

    agent.kill().unwrap();
    agent.wait().unwrap();
    wait_until(T, "node NotReady", || {
        k.run(&["get", "node", "remote-1"]).stdout.contains("NotReady")
    });
    wait_until(T, "pod evicted", || {
        !k.run(&[
            "get",
            "pod",
            "remote-pod",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}",
        ])
        .stdout
        .is_empty()
    });
    // The pod stays Terminating while its node is unreachable, as upstream.
    let row = k.ok(&["get", "pod", "remote-pod"]);
    assert!(row.contains("Terminating"), "{row}");
}
