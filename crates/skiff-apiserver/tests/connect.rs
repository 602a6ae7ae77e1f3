//! `pods/exec` is proxied to the node agent: the upgrade request reaches the agent's kubelet
//! API path and, after 101, bytes flow both ways.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// TLS of the fake agent: a self-signed certificate, as a joined agent's (the API server
/// accepts it unverified, as kube-apiserver without `--kubelet-certificate-authority`).
fn agent_tls() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rustls_pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A fake agent: answers any request with 101 and echoes the upgraded stream; reports the
/// request target it saw.
async fn fake_agent() -> (u16, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let tls = agent_tls();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tcp = tls.accept(tcp).await.unwrap();
        let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(req.uri().to_string()).await;
                let up = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let mut io = TokioIo::new(up.await.unwrap());
                    let mut buf = [0u8; 64];
                    let n = io.read(&mut buf).await.unwrap();
                    io.write_all(&buf[..n]).await.unwrap();
                });
                let resp = hyper::Response::builder()
                    .status(101)
                    .header("connection", "Upgrade")
                    .header("upgrade", "SPDY/3.1")
                    .header("x-stream-protocol-version", "v4.channel.k8s.io")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        server_http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), svc)
            .with_upgrades()
            .await
            .unwrap();
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_upgrade_is_spliced_to_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = skiff_apiserver::Config::loopback(dir.path());
    let running = skiff_apiserver::start(cfg).await.unwrap();
    let client = skiff_apiserver::local::client(running.server.clone());
    let (port, mut seen) = fake_agent().await;
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
    let status = json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}], "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    Api::<Node>::all(client.clone())
        .patch_status("n1", &Default::default(), &kube::api::Patch::Merge(status))
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}}),
    )
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();

    // An HTTP/1.1 client over TLS, as kubectl's SPDY dialer.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(dir.path().join("pki/ca.crt")).unwrap();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn.with_upgrades());
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/pods/p/exec?command=sh&command=-c&command=id&container=c&stdout=true")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {}", running.server.admin_token))
        .header("connection", "Upgrade")
        .header("upgrade", "SPDY/3.1")
        .header("x-stream-protocol-version", "v4.channel.k8s.io")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["x-stream-protocol-version"], "v4.channel.k8s.io");
    assert_eq!(
        seen.recv().await.unwrap(),
        "/exec/default/p/c?command=sh&command=-c&command=id&stdout=true"
    );
    let mut io = TokioIo::new(hyper::upgrade::on(&mut resp).await.unwrap());
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    drop(client);
    running.shutdown().await;
}
