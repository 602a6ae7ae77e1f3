//! What a pod of the process runtime sees of the host (as root: its own mount namespace), and
//! the process runtime's and simulated nodes' edges, through the real kubectl:
//! the cluster's data directory is hidden from pods (and from exec into them), hostPath
//! volumes follow kubelet's types, mount points are made in the pod's view and never on the
//! host, `args` alone run as the command, and logs of a simulated pod say why there are none.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_contains, is_root, pod_cell, wait_until, Server};

const T: Duration = Duration::from_secs(60);

fn start() -> Server {
    let s = Server::start_with(&["--nodes", "1", "--node-backoff-base-ms", "1000"]);
    wait_until(T, "a Ready node", || {
        s.k().run(&["get", "nodes"]).stdout.contains(" Ready ")
    });
    s
}

fn apply(s: &Server, yaml: &str) {
    s.k().ok_stdin(&["apply", "-f", "-"], yaml);
}

fn wait_running(s: &Server, pod: &str) {
    wait_until(T, &format!("{pod} Running"), || {
        pod_cell(s, "default", pod, "STATUS") == "Running"
    });
}

fn wait_log(s: &Server, pod: &str, text: &str) -> String {
    let mut last = String::new();
    wait_until(T, &format!("{pod}'s log shows {text:?}"), || {
        last = s.k().run(&["logs", pod]).stdout;
        last.contains(text)
    });
    last
}

#[test]
fn pods_do_not_see_the_cluster_data_directory() {
    if !is_root() {
        return;
    }
    let s = start();
    let data = std::fs::canonicalize(&s.data_dir).unwrap();
    let token = data.join("pki/admin.token");
    assert!(token.is_file(), "the server keeps its token at {}", token.display());
    let t = token.display();
    s.k().ok(&["create", "configmap", "cfg", "--from-literal=k=own-volume"]);
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: peek}}
spec:
  volumes: [{{name: cfg, configMap: {{name: cfg}}}}]
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'cat /cfg/k; echo; cat {t} || echo no-token; ls -A {data}; echo listed; sleep 3600']
    volumeMounts: [{{name: cfg, mountPath: /cfg}}]
"#,
            data = data.display()
        ),
    );
    wait_running(&s, "peek");
    let log = wait_log(&s, "peek", "listed");
    // Its own volumes still work; the token is not there; the data directory shows only the
    // way to the pod's own directory.
    assert_contains(&log, "own-volume\n");
    assert_contains(&log, "no-token\n");
    let secret = std::fs::read_to_string(&token).unwrap();
    assert!(!log.contains(secret.trim()), "the pod read the admin token:\n{log}");
    assert_contains(&log, "nodes\nlisted");

    // Exec sessions enter the same view.
    let out = s.k().run(&["exec", "peek", "--", "cat", &t.to_string()]);
    assert!(!out.success(), "exec read the token: {}", out.all());
    assert_contains(&out.all(), "No such file or directory");
    assert_eq!(s.k().ok(&["exec", "peek", "--", "cat", "/cfg/k"]), "own-volume");
    // The pod's working directory (its own directory) is still there, writable.
    s.k()
        .ok(&["exec", "peek", "--", "sh", "-c", "echo hi > here && cat here"]);
    // The host still has it all.
    assert!(token.is_file());
}

#[test]
fn host_paths_follow_their_type_and_a_missing_one_becomes_a_directory() {
    if !is_root() {
        return;
    }
    let s = start();
    let base = s.dir().join("host");
    let missing = base.join("var/lib/docker/containers");
    let file = base.join("a-file");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(&file, "x").unwrap();
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: logs}}
spec:
  volumes: [{{name: hp, hostPath: {{path: {missing}}}}}]
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'test -d /hp && echo is-a-dir; sleep 3600']
    volumeMounts: [{{name: hp, mountPath: /hp}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: typed}}
spec:
  volumes: [{{name: hp, hostPath: {{path: {file}, type: Directory}}}}]
  containers:
  - name: c
    image: busybox
    command: [sleep, '3600']
    volumeMounts: [{{name: hp, mountPath: /hp}}]
"#,
            missing = missing.display(),
            file = file.display()
        ),
    );
    wait_running(&s, "logs");
    wait_log(&s, "logs", "is-a-dir");
    assert!(missing.is_dir(), "{} is not a directory", missing.display());
    let want = format!(
        "MountVolume.SetUp failed for volume \"hp\" : hostPath type check failed: {} is not a directory, it's a File",
        file.display()
    );
    wait_until(T, "a FailedMount event with kubelet's message", || {
        s.k().run(&["describe", "pod", "typed"]).stdout.contains(&want)
    });
    assert_eq!(pod_cell(&s, "default", "typed", "STATUS"), "ContainerCreating");
}

#[test]
fn mount_points_are_made_in_the_pods_view_never_on_the_host() {
    if !is_root() {
        return;
    }
    let s = start();
    let id = std::process::id();
    let top = format!("/skiff-test-xyz-{id}");
    let deep = format!("{top}/a/b");
    let share = format!("/usr/share/skiff-test-{id}");
    // Something the host has in /usr/share, which the pod must still see there.
    let neighbour = std::fs::read_dir("/usr/share")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| !n.starts_with("skiff-test-"))
        .expect("an entry in /usr/share");
    apply(
        &s,
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: deep}}
spec:
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'echo stored > {deep}/f && cat {deep}/f && ls {share}/html && test -e /usr/share/{neighbour} && echo neighbour; sleep 3600']
    volumeMounts:
    - {{name: data, mountPath: {deep}}}
    - {{name: data, mountPath: {share}/html}}
"#
        ),
    );
    wait_running(&s, "deep");
    let log = wait_log(&s, "deep", "neighbour");
    assert_contains(&log, "stored\nf\nneighbour");
    // Not on the host, even while the pod runs.
    assert!(!Path::new(&top).exists(), "{top} was made on the host");
    assert!(!Path::new(&share).exists(), "{share} was made on the host");
    // Exec sees the pod's view; the host's root is still the pod's root.
    assert_eq!(
        s.k().ok(&["exec", "deep", "--", "cat", &format!("{deep}/f")]).trim(),
        "stored"
    );
    s.k().ok(&["exec", "deep", "--", "test", "-d", "/proc/self"]);
    s.k().ok(&["delete", "pod", "deep", "--grace-period=1"]);
    assert!(!Path::new(&top).exists(), "{top} remains on the host");
    assert!(!Path::new(&share).exists(), "{share} remains on the host");
}

#[test]
fn args_without_command_run_as_the_command() {
    let s = start();
    apply(
        &s,
        r#"
apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: busybox
    env: [{name: WHO, value: args}]
    args: [/bin/sh, -c, 'date; echo Hello from $(WHO)']
"#,
    );
    wait_until(T, "hello Completed", || {
        pod_cell(&s, "default", "hello", "STATUS") == "Completed"
    });
    assert_contains(&s.k().ok(&["logs", "hello"]), "Hello from args");
}

#[test]
fn logs_and_exec_of_a_simulated_pod_say_there_is_no_process() {
    let s = Server::start_with(&["--sim-nodes", "1"]);
    s.k().ok(&["run", "web", "--image=nginx"]);
    wait_until(T, "web Running", || {
        pod_cell(&s, "default", "web", "STATUS") == "Running"
    });
    let err = s.k().fails(&["logs", "web"]);
    assert_contains(
        &err,
        "pod default/web runs on simulated node skiff-sim-1, which runs no processes: it has no logs",
    );
    let err = s.k().fails(&["exec", "web", "--", "ls"]);
    assert_contains(
        &err,
        "pod default/web runs on simulated node skiff-sim-1, which runs no processes: there is no process to exec into",
    );
}
