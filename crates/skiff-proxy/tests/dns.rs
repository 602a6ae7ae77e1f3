//! The cluster DNS against an in-process API server, asked over real UDP and TCP sockets on
//! 127.0.0.1: ClusterIP, headless (ready and not-ready endpoints, StatefulSet pod names),
//! SRV, ExternalName, pods, NXDOMAIN with SOA, changes followed live, SERVFAIL before the
//! first list, and forwarding to a fake upstream on 127.0.0.1 (no traffic leaves loopback).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use skiff_proxy::dns::{self, Dns, DnsOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `f` until it holds, failing after [`DEADLINE`].
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn question(name: &str, t: RecordType) -> Message {
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.metadata.recursion_desired = true;
    m
}

/// Asks `server` over UDP.
async fn ask(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let q = question(name, t);
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&q.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer for {name} {t}"))
        .unwrap();
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.metadata.id, q.metadata.id);
    assert_eq!(r.metadata.message_type, MessageType::Response);
    r
}

/// Asks `server` over TCP (two-byte length prefix).
async fn ask_tcp(server: SocketAddr, name: &str, t: RecordType) -> Message {
    let q = question(name, t).to_vec().unwrap();
    let mut conn = TcpStream::connect(server).await.unwrap();
    conn.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
    conn.write_all(&q).await.unwrap();
    let mut len = [0u8; 2];
    timeout(Duration::from_secs(5), conn.read_exact(&mut len))
        .await
        .unwrap()
        .unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

/// The answer section as sorted `TYPE data` strings.
fn answers(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    v.sort();
    v
}

struct Cluster {
    client: Client,
    dns: Dns,
    _running: skiff_apiserver::Running,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(upstream: Vec<SocketAddr>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path()))
            .await
            .unwrap();
        let client = running.client();
        let dns = dns::start(
            client.clone(),
            DnsOptions {
                listen: vec!["127.0.0.1:0".parse().unwrap()],
                domain: "cluster.local".into(),
                upstream,
            },
        )
        .await
        .unwrap();
        timeout(DEADLINE, dns.synced()).await.expect("DNS synced in time");
        Cluster {
            client,
            dns,
            _running: running,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.dns.addrs()[0]
    }

    async fn ask(&self, name: &str, t: RecordType) -> Message {
        ask(self.addr(), name, t).await
    }

    async fn service(&self, spec: Value) -> Service {
        let s: Service = serde_json::from_value(spec).unwrap();
        Api::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &s)
            .await
            .unwrap()
    }

    /// An EndpointSlice of `svc` with `endpoints` and one port `web` 8080/TCP.
    async fn slice(&self, name: &str, svc: &str, endpoints: Value) {
        let s: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap();
        Api::<EndpointSlice>::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &s)
            .await
            .unwrap();
    }
}

/// A fake upstream resolver on 127.0.0.1 that knows one name, `upstream.example.` A
/// 192.0.2.53, and counts the questions it gets.
async fn fake_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.metadata.recursion_available = true;
            r.queries = q.queries.clone();
            match q.queries.first() {
                Some(query)
                    if query.name().to_lowercase().to_ascii() == "upstream.example."
                        && query.query_type() == RecordType::A =>
                {
                    let a = RData::A(A::new(192, 0, 2, 53));
                    r.answers.push(Record::from_rdata(query.name().clone(), 60, a));
                }
                _ => r.metadata.response_code = ResponseCode::NXDomain,
            }
            let _ = sock.send_to(&r.to_vec().unwrap(), peer).await;
        }
    });
    (addr, asked)
}

/// A headless Service `nginx` with port `web`, as a StatefulSet's governing Service.
fn headless(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "web", "port": 80}]}
    })
}

#[tokio::test]
async fn answers_services_endpoints_and_pods() {
    let (upstream, asked) = fake_upstream().await;
    let c = Cluster::start(vec![upstream]).await;

    let web = c
        .service(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .await;
    let ip = web.spec.unwrap().cluster_ip.unwrap();
    c.service(headless("nginx")).await;
    c.slice(
        "nginx-abc",
        "nginx",
        json!([
            {"addresses": ["10.42.0.5"], "hostname": "web-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "hostname": "web-1", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "hostname": "web-2", "conditions": {"ready": false}},
        ]),
    )
    .await;
    c.service(json!({
        "metadata": {"name": "db"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}
    }))
    .await;
    c.service(json!({
        "metadata": {"name": "alias"},
        "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}
    }))
    .await;

    // ClusterIP: A, answered over UDP and over TCP on the same address.
    let n = "web.default.svc.cluster.local.";
    eventually("web's A record", || async {
        answers(&c.ask(n, RecordType::A).await) == [format!("A {ip}")]
    })
    .await;
    let r = ask_tcp(c.addr(), "WEB.default.svc.Cluster.Local.", RecordType::A).await;
    assert_eq!(answers(&r), [format!("A {ip}")], "over TCP, any case");
    assert!(r.metadata.authoritative);
    let r = c.ask(n, RecordType::AAAA).await;
    assert_eq!((r.metadata.response_code, r.answers.len()), (ResponseCode::NoError, 0));

    // Headless: the two ready endpoints, and the StatefulSet pod's own name.
    let n = "nginx.default.svc.cluster.local.";
    eventually("nginx's endpoints", || async {
        answers(&c.ask(n, RecordType::A).await) == ["A 10.42.0.5", "A 10.42.0.6"]
    })
    .await;
    let r = c.ask("web-0.nginx.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&r), ["A 10.42.0.5"]);
    let r = c.ask("web-2.nginx.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "not ready: no name");

    // SRV for a named port: the service's port and own name; the slice's port and pod names.
    let r = c
        .ask("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV)
        .await;
    assert_eq!(answers(&r), ["SRV 0 100 80 web.default.svc.cluster.local."]);
    assert_eq!(r.additionals.len(), 1, "the target's address as additional");
    let r = c
        .ask("_web._tcp.nginx.default.svc.cluster.local.", RecordType::SRV)
        .await;
    assert_eq!(
        answers(&r),
        [
            "SRV 0 100 8080 web-0.nginx.default.svc.cluster.local.",
            "SRV 0 100 8080 web-1.nginx.default.svc.cluster.local."
        ]
    );

    // ExternalName: a CNAME, not chased outside the cluster domain; inside it, the target's
    // records follow in the same answer (stub resolvers do not ask again).
    let r = c.ask("db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&r), ["CNAME db.example.com."]);
    let r = c.ask("alias.default.svc.cluster.local.", RecordType::A).await;
    let in_order: Vec<String> = r
        .answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect();
    assert_eq!(
        in_order,
        ["CNAME web.default.svc.cluster.local.".to_string(), format!("A {ip}")],
        "the CNAME first, as resolvers read the chain"
    );

    // Pods: the dashed address, in any namespace.
    let r = c.ask("10-42-3-4.some-ns.pod.cluster.local.", RecordType::A).await;
    assert_eq!(answers(&r), ["A 10.42.3.4"]);

    // Unknown names: NXDOMAIN with the zone's SOA; never forwarded.
    for n in [
        "nope.default.svc.cluster.local.",
        "web.other.svc.cluster.local.",
        "x.cluster.local.",
    ] {
        let r = c.ask(n, RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{n}");
        assert!(r.answers.is_empty());
        let soa: Vec<String> = r.authorities.iter().map(|a| format!("{} {}", a.name, a.data)).collect();
        assert_eq!(soa.len(), 1, "{n}: {soa:?}");
        assert!(
            soa[0].starts_with("cluster.local. ns.dns.cluster.local. hostmaster.cluster.local. "),
            "{soa:?}"
        );
    }
    let r = c.ask("cluster.local.", RecordType::SOA).await;
    assert_eq!(r.answers.len(), 1);
    assert_eq!(r.answers[0].record_type(), RecordType::SOA);
    let r = c.ask("cluster.local.", RecordType::NS).await;
    assert_eq!(answers(&r), ["NS ns.dns.cluster.local."]);
    assert_eq!(asked.load(Ordering::SeqCst), 0, "cluster names never go upstream");
}

#[tokio::test]
async fn follows_changes() {
    let c = Cluster::start(Vec::new()).await;
    let gone = c
        .service(json!({"metadata": {"name": "gone"}, "spec": {"ports": [{"port": 80}]}}))
        .await;
    let ip = gone.spec.unwrap().cluster_ip.unwrap();
    let n = "gone.default.svc.cluster.local.";
    eventually("the new service", || async {
        answers(&c.ask(n, RecordType::A).await) == [format!("A {ip}")]
    })
    .await;
    Api::<Service>::namespaced(c.client.clone(), "default")
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted service to be NXDOMAIN", || async {
        c.ask(n, RecordType::A).await.metadata.response_code == ResponseCode::NXDomain
    })
    .await;

    // A headless service without endpoints exists without data, then gains them.
    c.service(headless("grow")).await;
    let n = "grow.default.svc.cluster.local.";
    eventually("the headless service", || async {
        let r = c.ask(n, RecordType::A).await;
        r.metadata.response_code == ResponseCode::NoError && r.answers.is_empty()
    })
    .await;
    c.slice(
        "grow-1",
        "grow",
        json!([{"addresses": ["10.42.0.8"], "hostname": "grow-0"}]),
    )
    .await;
    eventually("the first endpoint", || async {
        answers(&c.ask(n, RecordType::A).await) == ["A 10.42.0.8"]
    })
    .await;
    let patch = json!({"endpoints": [
        {"addresses": ["10.42.0.8"], "hostname": "grow-0"},
        {"addresses": ["10.42.0.9"], "hostname": "grow-1"},
    ]});
    Api::<EndpointSlice>::namespaced(c.client.clone(), "default")
        .patch("grow-1", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    eventually("the added endpoint", || async {
        answers(&c.ask(n, RecordType::A).await) == ["A 10.42.0.8", "A 10.42.0.9"]
    })
    .await;
    eventually("the added endpoint's name", || async {
        let r = c.ask("grow-1.grow.default.svc.cluster.local.", RecordType::A).await;
        answers(&r) == ["A 10.42.0.9"]
    })
    .await;

    // Stopping closes the sockets: the port can be bound again.
    let addr = c.addr();
    let Cluster { dns, .. } = c;
    dns.stop().await;
    UdpSocket::bind(addr).await.expect("UDP port free after stop");
    std::net::TcpListener::bind(addr).expect("TCP port free after stop");
}

#[tokio::test]
async fn forwards_other_names_upstream() {
    let (upstream, asked) = fake_upstream().await;
    let c = Cluster::start(vec![upstream]).await;
    let r = c.ask("upstream.example.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&r), ["A 192.0.2.53"]);
    assert!(r.metadata.recursion_available);
    assert!(!r.metadata.authoritative);
    assert!(asked.load(Ordering::SeqCst) >= 1);
    let r = c.ask("missing.example.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn servfail_until_listed() {
    // An API server that never answers (nothing listens on the port), so no list completes;
    // names outside the zone still go upstream.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
    let (upstream, _) = fake_upstream().await;
    let dns = dns::start(
        client,
        DnsOptions {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            domain: "cluster.local".into(),
            upstream: vec![upstream],
        },
    )
    .await
    .unwrap();
    let addr = dns.addrs()[0];
    let r = ask(addr, "kubernetes.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = ask(addr, "upstream.example.", RecordType::A).await;
    assert_eq!(answers(&r), ["A 192.0.2.53"]);
}
