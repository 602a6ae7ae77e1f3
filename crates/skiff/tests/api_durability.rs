//! Durability: every acknowledged write survives SIGKILL, and a restart on the same data
//! directory sees every object again.
mod common;

use common::*;
use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn acknowledged_creates_survive_sigkill() {
    let mut srv = Server::start();
    let token = srv.token();
    let url = srv.url();
    let kubeconfig = srv.kubeconfig.clone();

    // name -> value of every create the server acknowledged (201 / kubectl exit 0).
    let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    // Answers other than 201 while the server was up (would be server bugs).
    let unexpected: Arc<Mutex<Vec<String>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();

    for t in 0..4 {
        let (acked, unexpected, killed, token, url) = (
            acked.clone(),
            unexpected.clone(),
            killed.clone(),
            token.clone(),
            url.clone(),
        );
        threads.push(std::thread::spawn(move || {
            for i in 0.. {
                let name = format!("c{t}-{i}");
                let value = format!("value-{t}-{i}");
                let body = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"v":"{value}"}}}}"#);
                let mut cmd = Command::new("curl");
                cmd.args(["-sk", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
                    .arg("-H")
                    .arg(format!("Authorization: Bearer {token}"))
                    .args(["-H", "Content-Type: application/json", "--data-binary", "@-"])
                    .arg(format!("{url}/api/v1/namespaces/default/configmaps"));
                let out = run_cmd(cmd, Some(body.as_bytes()), Duration::from_secs(60));
                if out.stdout.trim() == "201" {
                    acked.lock().unwrap().insert(name, value);
                } else if killed.load(Ordering::SeqCst) {
                    break;
                } else {
                    unexpected.lock().unwrap().push(format!("{name}: http {} {}", out.stdout, out.stderr));
                }
            }
        }));
    }
    // One stream through kubectl as well (exit status 0 = acknowledged).
    {
        let (acked, killed, kubeconfig) = (acked.clone(), killed.clone(), kubeconfig.clone());
        let cache = srv.dir().join("kube-cache-durability");
        threads.push(std::thread::spawn(move || {
            for i in 0.. {
                let name = format!("k-{i}");
                let mut cmd = Command::new(kubectl_bin(Some("1.33")));
                cmd.arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg(format!("--cache-dir={}", cache.display()))
                    .args([
                        "create",
                        "configmap",
                        &name,
                        "-n",
                        "default",
                        &format!("--from-literal=v=kv-{i}"),
                    ]);
                let out = run_cmd(cmd, None, Duration::from_secs(90));
                if out.success() {
                    acked.lock().unwrap().insert(name, format!("kv-{i}"));
                } else if killed.load(Ordering::SeqCst) {
                    break;
                }
            }
        }));
    }

    wait_until(Duration::from_secs(120), "300 creates are acknowledged", || {
        acked.lock().unwrap().len() >= 300
    });
    killed.store(true, Ordering::SeqCst);
    srv.kill();
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        unexpected.lock().unwrap().is_empty(),
        "non-201 answers while up: {:?}",
        unexpected.lock().unwrap()
    );

    srv.restart();
    let list: serde_json::Value = serde_json::from_str(&srv.ok(&["get", "cm", "-n", "default", "-o", "json"])).unwrap();
    let mut found = BTreeMap::new();
    let mut max_rv = 0u64;
    for item in list["items"].as_array().unwrap() {
        let name = item["metadata"]["name"].as_str().unwrap().to_string();
        max_rv = max_rv.max(item["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap());
        found.insert(name, item["data"]["v"].as_str().unwrap_or("").to_string());
    }
    let lost: Vec<&String> = acked.keys().filter(|n| !found.contains_key(*n)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged objects lost after SIGKILL: {:?}",
        lost.len(),
        acked.len(),
        lost
    );
    for (n, v) in &acked {
        assert_eq!(&found[n], v, "content of {n}");
    }
    // Names are unique: nothing was stored twice.
    let uniq: HashSet<&String> = found.keys().collect();
    assert_eq!(uniq.len(), found.len());

    // The revision keeps growing after the restart.
    srv.ok(&["create", "configmap", "after-restart", "-n", "default"]);
    let rv: u64 = srv
        .ok(&[
            "get",
            "cm",
            "after-restart",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(rv > max_rv, "resourceVersion after restart {rv} <= {max_rv} before");
}

#[test]
fn restart_sees_every_object_and_keeps_credentials() {
    let mut srv = Server::start();
    let k = srv.k();
    k.ok(&["create", "namespace", "keep"]);
    for f in [
        "deployment-mydeploy.yaml",
        "statefulset-mysts-with-service.yaml",
        "service-my-service.yaml",
        "secret-mysecret.yaml",
        "cronjob-hello.yaml",
    ] {
        k.ok(&["apply", "-n", "keep", "-f", seed(f).to_str().unwrap()]);
    }
    k.ok(&["label", "deploy", "mydeploy", "-n", "keep", "survives=yes"]);
    let before = k.ok(&["get", "all,secrets", "-n", "keep", "-o", "json"]);
    let uid = k.ok(&[
        "get",
        "deploy",
        "mydeploy",
        "-n",
        "keep",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let svc_ip = k.ok(&["get", "svc", "mysts", "-n", "keep", "-o", "jsonpath={.spec.clusterIP}"]);
    let kubeconfig_before = std::fs::read_to_string(&srv.kubeconfig).unwrap();
    drop(k);

    srv.kill();
    srv.restart();
    let k = srv.k();
    // Same CA and credentials: the old kubeconfig still works and was not rewritten.
    assert_eq!(std::fs::read_to_string(&srv.kubeconfig).unwrap(), kubeconfig_before);
    let after = k.ok(&["get", "all,secrets", "-n", "keep", "-o", "json"]);
    // Controllers keep working around the snapshot (pods created, statuses written), so each
    // object seen before must be there after with the same uid, and unchanged unless a later
    // write (a higher resourceVersion) changed it.
    let items = |s: &str| -> Vec<serde_json::Value> {
        let list: serde_json::Value = serde_json::from_str(s).unwrap();
        list["items"].as_array().unwrap().clone()
    };
    let after = items(&after);
    let rv = |o: &serde_json::Value| -> u64 { o["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap() };
    for b in items(&before) {
        let id = (&b["kind"], &b["metadata"]["name"]);
        let a = after
            .iter()
            .find(|a| (&a["kind"], &a["metadata"]["name"]) == id)
            .unwrap_or_else(|| panic!("{id:?} lost in the restart"));
        assert_eq!(a["metadata"]["uid"], b["metadata"]["uid"], "{id:?}");
        assert!(rv(a) >= rv(&b), "{id:?} went back in time");
        if rv(a) == rv(&b) {
            assert_eq!(a, &b, "{id:?} differs after restart");
        }
    }
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "mydeploy",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.uid}"
        ]),
        uid
    );
    assert_eq!(
        k.ok(&[
            "get",
            "deploy",
            "mydeploy",
            "-n",
            "keep",
            "-o",
            "jsonpath={.metadata.labels.survives}"
        ]),
        "yes"
    );
    assert_eq!(
        k.ok(&["get", "svc", "mysts", "-n", "keep", "-o", "jsonpath={.spec.clusterIP}"]),
        svc_ip
    );
    // Re-apply is a no-op: the last-applied annotation survived too.
    let out = k.ok(&[
        "apply",
        "-n",
        "keep",
        "-f",
        seed("deployment-mydeploy.yaml").to_str().unwrap(),
    ]);
    assert_eq!(lines(&out), ["deployment.apps/mydeploy unchanged"]);
    // Services created after the restart get a different cluster IP.
    k.ok(&["create", "service", "clusterip", "fresh", "-n", "keep", "--tcp=80:80"]);
    let t = Table::parse(&k.ok(&["get", "svc", "-n", "keep"]));
    let ips: Vec<String> = t.column("CLUSTER-IP").into_iter().filter(|ip| ip != "None").collect();
    let uniq: HashSet<&String> = ips.iter().collect();
    assert_eq!(uniq.len(), ips.len(), "cluster IPs are unique: {ips:?}");
}
