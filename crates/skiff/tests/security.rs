//! What an attacker on the host or the network finds: the node agent's port answers only the
//! API server's client certificate (401 without one, a refused handshake with a foreign one,
//! 403 for another identity of the cluster CA) while kubectl logs and exec still work through
//! the API server; the data directory and its secrets are private (and an open one is fixed at
//! start); startup errors are one line without colour codes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{run_cmd, wait_until, Server};

const T: Duration = Duration::from_secs(60);

/// (InternalIP, kubelet port) a node announces in its status.
fn agent_address(s: &Server, node: &str) -> (String, u16) {
    let k = s.k();
    let out = common::wait_for(T, "node status", || {
        let o = k.run(&[
            "get",
            "node",
            node,
            "-o",
            "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address} {.status.daemonEndpoints.kubeletEndpoint.Port}",
        ]);
        (o.success() && o.stdout.split(' ').count() == 2 && !o.stdout.ends_with(' ')).then_some(o.stdout)
    });
    let (ip, port) = out.split_once(' ').unwrap();
    (ip.to_string(), port.parse().unwrap())
}

/// curl to the agent: (HTTP status, 0 when no HTTP answer, and body).
fn curl(url: &str, extra: &[&str]) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(url);
    let out = run_cmd(cmd, None, T);
    let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", out.stdout.as_str()));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A key and certificate for `subject`: self-signed, or signed by the CA in `ca` (cert, key).
fn make_cert(dir: &Path, name: &str, subject: &str, ca: Option<(&Path, &Path)>) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let mut cmd = Command::new("openssl");
    match ca {
        None => {
            cmd.args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "1",
            ])
            .args(["-subj", subject, "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&crt);
            let out = run_cmd(cmd, None, T);
            assert!(out.success(), "{out:?}");
        }
        Some((ca_crt, ca_key)) => {
            let csr = dir.join(format!("{name}.csr"));
            cmd.args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-subj", subject, "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr);
            let out = run_cmd(cmd, None, T);
            assert!(out.success(), "{out:?}");
            // Extensions make it an X.509 v3 certificate (v1 ones are refused by webpki).
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(&ext, "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
            let mut sign = Command::new("openssl");
            sign.args(["x509", "-req", "-days", "1", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(ca_crt)
                .arg("-CAkey")
                .arg(ca_key)
                .arg("-CAcreateserial")
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&crt);
            let out = run_cmd(sign, None, T);
            assert!(out.success(), "{out:?}");
        }
    }
    (crt.display().to_string(), key.display().to_string())
}

#[test]
fn the_agent_port_answers_only_the_api_server() {
    let s = Server::start_with(&["--nodes", "1"]);
    let k = s.k();
    k.ok(&[
        "run",
        "p",
        "--image=busybox",
        "--command",
        "--",
        "sh",
        "-c",
        "echo secret-log-line; sleep 3600",
    ]);
    wait_until(T, "pod p Running", || {
        k.run(&["get", "pod", "p", "-o", "jsonpath={.status.phase}"]).stdout == "Running"
    });
    let (ip, port) = agent_address(&s, "skiff-node-1");
    let path = "/containerLogs/default/p/p";
    let url = format!("https://{ip}:{port}{path}");

    // No client certificate: HTTP 401, nothing served.
    let (code, body) = curl(&url, &["-k"]);
    assert_eq!((code, body.trim()), (401, "Unauthorized"), "{url}");
    let (code, body) = curl(
        &format!("https://{ip}:{port}/exec/default/p/p?command=id"),
        &["-k", "-X", "POST"],
    );
    assert_eq!(code, 401, "exec without credentials: {body}");
    // Plain HTTP gets no answer from a TLS port.
    let (code, body) = curl(&format!("http://{ip}:{port}{path}"), &[]);
    assert!(
        code != 200 && !body.contains("secret-log-line"),
        "plain HTTP: {code} {body}"
    );

    // A certificate the cluster CA did not sign, even with the API server's subject: refused.
    let pki = s.data_dir.join("pki");
    let (crt, key) = make_cert(
        s.dir(),
        "forged",
        "/O=system:masters/CN=kube-apiserver-kubelet-client",
        None,
    );
    let (code, body) = curl(&url, &["-k", "--cert", &crt, "--key", &key]);
    assert!(code == 0 || code == 401, "forged certificate: {code} {body}");
    assert!(!body.contains("secret-log-line"), "{body}");

    // Another identity of the cluster CA: authenticated, not allowed (upstream's 403).
    let (crt, key) = make_cert(
        s.dir(),
        "bob",
        "/CN=bob",
        Some((&pki.join("ca.crt"), &pki.join("ca.key"))),
    );
    let (code, body) = curl(&url, &["-k", "--cert", &crt, "--key", &key]);
    assert_eq!(
        (code, body.trim()),
        (403, "Forbidden (user=bob, verb=get, resource=nodes, subresource=proxy)")
    );

    // The API server's own client certificate, verifying the agent's CA-signed certificate.
    let ca = pki.join("ca.crt").display().to_string();
    let client_crt = pki.join("kubelet-client.crt").display().to_string();
    let client_key = pki.join("kubelet-client.key").display().to_string();
    let (code, body) = curl(&url, &["--cacert", &ca, "--cert", &client_crt, "--key", &client_key]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("secret-log-line"), "{body}");
    assert_eq!(mode(&pki.join("kubelet-client.key")), 0o600);

    // kubectl reaches the agent through the API server.
    wait_until(T, "kubectl logs", || {
        k.run(&["logs", "p"]).stdout.contains("secret-log-line")
    });
    assert_eq!(k.ok(&["exec", "p", "--", "echo", "exec-works"]).trim(), "exec-works");
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data directory");
    for f in [
        "store.redb",
        "kubeconfig",
        "pki/ca.key",
        "pki/admin.token",
        "pki/kubelet-client.key",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    for d in ["pki", "nodes", "nodes/skiff-node-1"] {
        assert_eq!(mode(&data.join(d)), 0o700, "{d}");
    }
}

#[test]
fn the_data_directory_is_private_and_an_open_one_is_fixed() {
    let mut s = Server::start_with(&["--nodes", "1"]);
    let data = s.data_dir.clone();
    wait_until(T, "node directory", || data.join("nodes/skiff-node-1/pods").exists());
    assert_private(&data);
    let log = std::fs::read_to_string(s.stderr_log()).unwrap();
    assert!(!log.contains('\x1b'), "colour codes in a log file:\n{log}");

    // A data directory made by an older skiff (0755 / 0644) is tightened at the next start.
    s.stop();
    let set = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    for d in ["", "pki", "nodes", "nodes/skiff-node-1"] {
        set(&data.join(d), 0o755);
    }
    for f in ["store.redb", "kubeconfig", "pki/ca.key", "pki/admin.token"] {
        set(&data.join(f), 0o644);
    }
    s.restart();
    assert_private(&data);
    let log = std::fs::read_to_string(s.stderr_log()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("tightened permissions")).collect();
    assert_eq!(lines.len(), 1, "one log line about the fix:\n{log}");
    assert!(
        lines[0].contains("store.redb 0644 -> 0600") && lines[0].contains("0755 -> 0700"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_port_in_use_is_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_skiff"));
    cmd.arg("up").arg("--data-dir").arg(dir.path().join("data")).args([
        "--listen",
        &addr.to_string(),
        "--network",
        "host",
        "--nodes",
        "0",
    ]);
    let out = run_cmd(cmd, None, T);
    assert!(!out.success(), "{out:?}");
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.contains("rror")).collect();
    assert_eq!(
        errors,
        [format!(
            "error: cannot listen on {addr}: address already in use (is another skiff running? choose another with --listen)"
        )],
        "stderr:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Caused by") && !out.stderr.contains('\x1b'),
        "{}",
        out.stderr
    );
}
