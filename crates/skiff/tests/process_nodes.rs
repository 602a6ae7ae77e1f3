//! Pods really running on `skiff up --nodes 2` (process runtime), through the real kubectl:
//! shared emptyDirs, init containers, env from ConfigMaps, Secrets and the Downward API,
//! placement, restarts with back-off, probes, logs, exec, attach and port-forward.
//!
//! Every test starts its own server with a short restart back-off (`--node-backoff-base-ms`),
//! and keeps its pods in its own namespaces. Waits are bounded polls on observable state.

mod common;

use std::time::Duration;

use common::{assert_contains, free_local_port, is_root, pod_cell, wait_until, Server};

const T: Duration = Duration::from_secs(60);
const VERSIONS: &[&str] = &["1.27", "1.30", "1.33"];

fn start() -> Server {
    let s = Server::start_with(&["--nodes", "2", "--node-backoff-base-ms", "1000"]);
    wait_until(T, "two Ready nodes", || {
        s.k().run(&["get", "nodes"]).stdout.matches(" Ready ").count() == 2
    });
    s
}

fn apply(s: &Server, ns: &str, yaml: &str) {
    s.k().ok_stdin(&["apply", "-n", ns, "-f", "-"], yaml);
}

fn field(s: &Server, ns: &str, pod: &str, jsonpath: &str) -> String {
    s.k()
        .run(&["get", "pod", pod, "-n", ns, "-o", &format!("jsonpath={jsonpath}")])
        .stdout
}

fn wait_running(s: &Server, ns: &str, pod: &str) {
    wait_until(T, &format!("{ns}/{pod} Running"), || {
        pod_cell(s, ns, pod, "STATUS") == "Running"
    });
}

fn logs(s: &Server, ns: &str, args: &[&str]) -> String {
    let mut a = vec!["logs", "-n", ns];
    a.extend_from_slice(args);
    s.k().run(&a).stdout
}

#[test]
fn volumes_init_containers_env_and_placement() {
    let s = start();
    let k = s.k();

    // Two containers share an emptyDir: the reader prints what the writer wrote.
    k.ok(&["create", "namespace", "vol"]);
    apply(
        &s,
        "vol",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: writer
    image: busybox
    command: [sh, -c, 'for i in 1 2 3; do echo msg-$i >> /data/log; done; echo wrote; sleep 3600']
    volumeMounts: [{name: data, mountPath: /data}]
  - name: reader
    image: busybox
    command: [sh, -c, 'until [ "$(cat /data/log 2>/dev/null | wc -l)" = 3 ]; do sleep 0.1; done; cat /data/log; sleep 3600']
    volumeMounts: [{name: data, mountPath: /data}]
"#,
    );
    wait_until(T, "the reader saw the writer's lines", || {
        logs(&s, "vol", &["shared", "-c", "reader"]) == "msg-1\nmsg-2\nmsg-3\n"
    });
    assert_eq!(logs(&s, "vol", &["shared", "-c", "writer"]), "wrote\n");
    assert_eq!(pod_cell(&s, "vol", "shared", "READY"), "2/2");
    let err = k.fails(&["logs", "-n", "vol", "shared", "-c", "nope"]);
    assert_contains(&err, "container nope is not valid for pod shared");

    // Init containers run in order, one at a time; the first waits for a file that
    // `kubectl exec` into it creates, so `Init:0/2` is observed deterministically.
    k.ok(&["create", "namespace", "init"]);
    apply(
        &s,
        "init",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: ordered}
spec:
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, 'until [ -e /work/go ]; do sleep 0.1; done; echo first >> /work/order']
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: busybox
    command: [sh, -c, 'echo second >> /work/order']
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'cat /work/order; echo main; sleep 3600']
    volumeMounts: [{name: work, mountPath: /work}]
"#,
    );
    wait_until(T, "Init:0/2 while the first init container waits", || {
        pod_cell(&s, "init", "ordered", "STATUS") == "Init:0/2"
    });
    assert_eq!(pod_cell(&s, "init", "ordered", "READY"), "0/1");
    wait_until(T, "the first init container runs", || {
        !field(
            &s,
            "init",
            "ordered",
            "{.status.initContainerStatuses[0].state.running.startedAt}",
        )
        .is_empty()
    });
    k.ok(&[
        "exec", "-n", "init", "ordered", "-c", "first", "--", "touch", "/work/go",
    ]);
    wait_running(&s, "init", "ordered");
    assert_eq!(logs(&s, "init", &["ordered"]), "first\nsecond\nmain\n");
    assert_eq!(
        field(
            &s,
            "init",
            "ordered",
            "{.status.initContainerStatuses[*].state.terminated.reason}"
        ),
        "Completed Completed"
    );

    // Env from a ConfigMap, a Secret and the Downward API.
    k.ok(&["create", "namespace", "env"]);
    k.ok(&[
        "create",
        "configmap",
        "-n",
        "env",
        "settings",
        "--from-literal=color=blue",
        "--from-literal=size=L",
    ]);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "-n",
        "env",
        "creds",
        "--from-literal=password=s3cret",
    ]);
    apply(
        &s,
        "env",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: envy, labels: {app: envy}}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'env | sort; sleep 3600']
    resources: {limits: {memory: 64Mi}}
    envFrom:
    - prefix: CFG_
      configMapRef: {name: settings}
    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: settings, key: color}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
    - {name: GREETING, value: "hello $(COLOR)"}
"#,
    );
    wait_running(&s, "env", "envy");
    let node = field(&s, "env", "envy", "{.spec.nodeName}");
    wait_until(T, "env printed", || logs(&s, "env", &["envy"]).contains("PASSWORD="));
    let env = logs(&s, "env", &["envy"]);
    for want in [
        "CFG_color=blue".to_string(),
        "CFG_size=L".into(),
        "COLOR=blue".into(),
        "PASSWORD=s3cret".into(),
        "POD_NAME=envy".into(),
        "POD_NAMESPACE=env".into(),
        format!("NODE_NAME={node}"),
        "APP=envy".into(),
        "POD_IP=127.0.0.1".into(),
        "MEM_LIMIT=67108864".into(),
        "GREETING=hello blue".into(),
    ] {
        assert!(env.lines().any(|l| l == want), "missing {want} in\n{env}");
    }
    // exec sees the environment the container got.
    let out = k.ok(&[
        "exec",
        "-n",
        "env",
        "envy",
        "--",
        "sh",
        "-c",
        "echo $GREETING/$PASSWORD",
    ]);
    assert_eq!(out, "hello blue/s3cret\n");

    // nodeSelector places a pod on the labelled node; a selector nothing matches stays
    // Pending with upstream's FailedScheduling message.
    k.ok(&["create", "namespace", "place"]);
    k.ok(&["label", "node", "skiff-node-2", "disk=ssd"]);
    for i in 0..3 {
        k.ok(&[
            "run",
            &format!("fast-{i}"),
            "-n",
            "place",
            "--image=busybox",
            "--overrides",
            r#"{"spec":{"nodeSelector":{"disk":"ssd"}}}"#,
            "--command",
            "--",
            "sleep",
            "3600",
        ]);
    }
    for i in 0..3 {
        let pod = format!("fast-{i}");
        wait_running(&s, "place", &pod);
        assert_eq!(field(&s, "place", &pod, "{.spec.nodeName}"), "skiff-node-2");
    }
    k.ok(&[
        "run",
        "picky",
        "-n",
        "place",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"nodeSelector":{"disk":"nvme"}}}"#,
        "--command",
        "--",
        "sleep",
        "3600",
    ]);
    wait_until(T, "FailedScheduling event", || {
        k.run(&["describe", "pod", "-n", "place", "picky"])
            .stdout
            .contains("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")
    });
    let d = k.ok(&["describe", "pod", "-n", "place", "picky"]);
    assert_contains(&d, "FailedScheduling");
    assert_eq!(pod_cell(&s, "place", "picky", "STATUS"), "Pending");
}

#[test]
fn restarts_probes_and_logs() {
    let s = start();
    let k = s.k();

    // A crashing container reaches CrashLoopBackOff and its RESTARTS keep growing.
    k.ok(&["create", "namespace", "crash"]);
    k.ok(&[
        "run",
        "crashy",
        "-n",
        "crash",
        "--image=busybox",
        "--command",
        "--",
        "sh",
        "-c",
        "echo boom; exit 1",
    ]);
    let restarts = |s: &Server| -> u32 {
        let cell = pod_cell(s, "crash", "crashy", "RESTARTS");
        cell.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
    };
    wait_until(T, "CrashLoopBackOff", || {
        pod_cell(&s, "crash", "crashy", "STATUS") == "CrashLoopBackOff"
    });
    let seen = restarts(&s);
    wait_until(T, "RESTARTS grows", || restarts(&s) >= seen.max(1) + 2);
    let cell = pod_cell(&s, "crash", "crashy", "RESTARTS");
    assert!(cell.contains(" ago)"), "RESTARTS {cell:?}");
    assert_eq!(pod_cell(&s, "crash", "crashy", "READY"), "0/1");
    let d = k.ok(&["describe", "pod", "-n", "crash", "crashy"]);
    assert_contains(&d, "Back-off restarting failed container crashy in pod crashy_crash(");
    assert_eq!(logs(&s, "crash", &["crashy", "--previous"]), "boom\n");
    // A container that is not running cannot be exec'd into: kubelet's error.
    wait_until(T, "crashy waiting in back-off", || {
        field(
            &s,
            "crash",
            "crashy",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CrashLoopBackOff"
    });
    // (At this restart count the back-off is 8 s or more: it stays waiting meanwhile.)
    let err = k.fails(&["exec", "-n", "crash", "crashy", "--", "true"]);
    assert_contains(&err, r#"unable to upgrade connection: container not found ("crashy")"#);

    // A failing liveness probe restarts the container once: the first instance marks itself
    // sick, the second heals.
    k.ok(&["create", "namespace", "live"]);
    apply(
        &s,
        "live",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: lively}
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{name: d, emptyDir: {}}]
  containers:
  - name: c
    image: busybox
    command: [sh, -c, 'if [ -e /d/once ]; then rm -f /d/sick; echo second; else touch /d/once /d/sick; echo first; fi; exec sleep 3600']
    volumeMounts: [{name: d, mountPath: /d}]
    livenessProbe:
      exec: {command: [sh, -c, 'test ! -e /d/sick']}
      initialDelaySeconds: 1
      periodSeconds: 1
      timeoutSeconds: 10
      failureThreshold: 1
"#,
    );
    let lively_events = || {
        let last = field(&s, "live", "lively", "{.status.containerStatuses[0].lastState}");
        format!(
            "lastState {last}\n{}",
            s.k().run(&["get", "events", "-n", "live"]).stdout
        )
    };
    wait_until(T, "lively restarted once and running", || {
        let r = pod_cell(&s, "live", "lively", "RESTARTS");
        r.starts_with("1 (") && pod_cell(&s, "live", "lively", "STATUS") == "Running"
    });
    wait_until(T, "Liveness probe failed event", || {
        k.run(&["describe", "pod", "-n", "live", "lively"])
            .stdout
            .contains("Liveness probe failed")
    });
    let d = k.ok(&["describe", "pod", "-n", "live", "lively"]);
    assert_contains(&d, "Container c failed liveness probe, will be restarted");
    assert_eq!(logs(&s, "live", &["lively"]), "second\n", "{}", lively_events());
    assert_eq!(
        logs(&s, "live", &["lively", "--previous"]),
        "first\n",
        "{}",
        lively_events()
    );
    // The healed instance keeps passing: still one restart a few probe periods later.
    let first_start = field(
        &s,
        "live",
        "lively",
        "{.status.containerStatuses[0].state.running.startedAt}",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(pod_cell(&s, "live", "lively", "RESTARTS").starts_with("1 ("));
    assert_eq!(
        field(
            &s,
            "live",
            "lively",
            "{.status.containerStatuses[0].state.running.startedAt}"
        ),
        first_start
    );

    // A readiness probe on a file flips READY as `kubectl exec` creates and removes it.
    k.ok(&["create", "namespace", "ready"]);
    apply(
        &s,
        "ready",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: flip}
spec:
  volumes: [{name: r, emptyDir: {}}]
  containers:
  - name: c
    image: busybox
    command: [sleep, "3600"]
    volumeMounts: [{name: r, mountPath: /r}]
    readinessProbe:
      exec: {command: [test, -e, /r/ready]}
      periodSeconds: 1
"#,
    );
    wait_running(&s, "ready", "flip");
    wait_until(T, "readiness probe failed once", || {
        k.run(&["describe", "pod", "-n", "ready", "flip"])
            .stdout
            .contains("Readiness probe failed")
    });
    assert_eq!(pod_cell(&s, "ready", "flip", "READY"), "0/1");
    k.ok(&["exec", "-n", "ready", "flip", "--", "touch", "/r/ready"]);
    wait_until(T, "READY 1/1", || pod_cell(&s, "ready", "flip", "READY") == "1/1");
    k.ok(&["exec", "-n", "ready", "flip", "--", "rm", "/r/ready"]);
    wait_until(T, "READY 0/1", || pod_cell(&s, "ready", "flip", "READY") == "0/1");
    k.ok(&["exec", "-n", "ready", "flip", "--", "touch", "/r/ready"]);
    wait_until(T, "READY 1/1 again", || pod_cell(&s, "ready", "flip", "READY") == "1/1");
    assert_eq!(pod_cell(&s, "ready", "flip", "RESTARTS"), "0");

    // Logs: follow sees new lines, --tail, --timestamps.
    k.ok(&["create", "namespace", "logs"]);
    k.ok(&[
        "run",
        "ticker",
        "-n",
        "logs",
        "--image=busybox",
        "--command",
        "--",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done",
    ]);
    wait_until(T, "ticker logged 5 lines", || {
        logs(&s, "logs", &["ticker"]).contains("tick-5\n")
    });
    let mut follow = s.spawn_kubectl(None, &["logs", "-f", "-n", "logs", "ticker"]);
    follow.wait_line(T, "the first line", |l| l == "tick-1");
    let now: u32 = logs(&s, "logs", &["ticker"])
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("tick-"))
        .and_then(|n| n.parse().ok())
        .expect("a tick line");
    let later = format!("tick-{}", now + 5);
    follow.wait_line(T, "a line written after following began", |l| l == later);
    assert!(follow.running(), "logs -f ended on its own");
    follow.kill();
    let tail = logs(&s, "logs", &["ticker", "--tail=2"]);
    assert_eq!(tail.lines().count(), 2, "{tail}");
    let n: Vec<u32> = tail
        .lines()
        .map(|l| l.strip_prefix("tick-").unwrap().parse().unwrap())
        .collect();
    assert_eq!(n[1], n[0] + 1, "{tail}");
    let stamped = logs(&s, "logs", &["ticker", "--timestamps", "--tail=3"]);
    assert_eq!(stamped.lines().count(), 3, "{stamped}");
    for l in stamped.lines() {
        let (ts, text) = l.split_once(' ').unwrap_or_else(|| panic!("no timestamp in {l:?}"));
        assert!(
            ts.len() >= 20 && ts.as_bytes()[4] == b'-' && ts.contains('T') && ts.ends_with('Z'),
            "timestamp {ts:?} in {l:?}"
        );
        assert!(text.starts_with("tick-"), "{l:?}");
    }
    let err = k.fails(&["logs", "-n", "logs", "ticker", "--previous"]);
    assert_contains(
        &err,
        r#"previous terminated container "ticker" in pod "ticker" not found"#,
    );
}

#[test]
fn exec_attach_and_port_forward_across_kubectl_versions() {
    let s = start();
    let k = s.k();
    k.ok(&["create", "namespace", "ex"]);
    k.ok(&[
        "run",
        "box",
        "-n",
        "ex",
        "--image=busybox",
        "--env=FOO=bar",
        "--command",
        "--",
        "sleep",
        "3600",
    ]);
    let port = free_local_port();
    apply(
        &s,
        "ex",
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  volumes: [{{name: site, emptyDir: {{}}}}]
  containers:
  - name: web
    image: python
    command: [sh, -c, 'echo hello-from-pod > index.html; exec python3 -m http.server {port} --bind 127.0.0.1']
    readinessProbe:
      tcpSocket: {{port: {port}}}
      periodSeconds: 1
"#
        ),
    );
    wait_running(&s, "ex", "box");
    wait_until(T, "web ready", || pod_cell(&s, "ex", "web", "READY") == "1/1");

    for v in VERSIONS {
        let kv = s.kv(v);
        // The command runs in the container: its hostname (root: the pod's UTS namespace),
        // its environment, its working directory.
        let host = kv.ok(&["exec", "-n", "ex", "box", "--", "hostname"]);
        if is_root() {
            assert_eq!(host, "box\n", "kubectl {v}");
        }
        assert_eq!(
            kv.ok(&["exec", "-n", "ex", "box", "--", "sh", "-c", "echo $FOO"]),
            "bar\n",
            "kubectl {v}"
        );
        // stdin, and the exit code propagates.
        let out = kv.run_stdin(
            &[
                "exec",
                "-i",
                "-n",
                "ex",
                "box",
                "--",
                "sh",
                "-c",
                "cat; echo err >&2; exit 3",
            ],
            "hello\nworld\n",
        );
        assert_eq!(out.status.code(), Some(3), "kubectl {v}: {out:?}");
        assert_eq!(out.stdout, "hello\nworld\n", "kubectl {v}");
        assert_contains(&out.stderr, "err\n");
        assert_contains(&out.stderr, "command terminated with exit code 3");
        // -t: the command gets a terminal (`script` gives kubectl one). Input may arrive after
        // the command ended; the agent still closes the WebSocket cleanly.
        let kubectl = common::kubectl_bin(Some(v));
        let line = format!(
            "{} --kubeconfig {} exec -it -n ex box -- sh -c 'tty; echo in-tty'",
            kubectl.display(),
            s.kubeconfig.display()
        );
        let out = common::run_cmd(
            {
                let mut c = std::process::Command::new("script");
                c.args(["-qec", &line, "/dev/null"]);
                c
            },
            None,
            T,
        );
        assert!(out.success(), "kubectl {v}: {out:?}");
        assert_contains(&out.stdout, "/dev/pts/");
        assert_contains(&out.stdout, "in-tty\r\n");
        // A missing executable.
        let err = kv.fails(&["exec", "-n", "ex", "box", "--", "no-such-binary"]);
        assert_contains(&err, r#"exec: "no-such-binary": executable file not found in $PATH"#);
        // A container that does not exist.
        let err = kv.fails(&["exec", "-n", "ex", "box", "-c", "nope", "--", "true"]);
        assert_contains(&err, "container nope is not valid for pod box");
    }

    // port-forward to the HTTP server in the pod.
    for v in ["1.27", "1.33"] {
        let local = free_local_port();
        let mut pf = s.spawn_kubectl(
            Some(v),
            &["port-forward", "-n", "ex", "pod/web", &format!("{local}:{port}")],
        );
        pf.wait_line(T, "Forwarding from", |l| l.starts_with("Forwarding from 127.0.0.1"));
        for _ in 0..2 {
            let out = std::process::Command::new("curl")
                .args([
                    "-s",
                    "--max-time",
                    "10",
                    &format!("http://127.0.0.1:{local}/index.html"),
                ])
                .output()
                .expect("curl");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "hello-from-pod\n",
                "kubectl {v} port-forward\n{}",
                pf.stderr()
            );
        }
        pf.kill();
    }

    // attach: the container reads a line from its stdin and answers on its output.
    apply(
        &s,
        "ex",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: talk}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    stdin: true
    command: [sh, -c, 'read line; echo "got $line"; echo "to stderr" >&2']
"#,
    );
    wait_running(&s, "ex", "talk");
    let out = k.run_stdin(&["attach", "-i", "-n", "ex", "talk"], "ping\n");
    assert!(out.success(), "{out:?}");
    assert_contains(&out.stdout, "got ping\n");
    assert_contains(&out.stderr, "to stderr\n");
    wait_until(T, "talk completed", || {
        pod_cell(&s, "ex", "talk", "STATUS") == "Completed"
    });
    // (stdout and stderr are separate pipes: their relative order is not kept.)
    let mut lines: Vec<String> = logs(&s, "ex", &["talk"]).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["got ping", "to stderr"]);

    // A pod whose container is not running (a completed one): no exec.
    let out = k.run(&["exec", "-n", "ex", "talk", "--", "true"]);
    assert!(!out.success(), "{out:?}");
}
