//! The API server under hostile or sloppy clients: unauthenticated uploads, impersonation,
//! oversized bodies over HTTP/2, partial headers and bodies, idle and excess connections,
//! in-flight limits, badly typed DeleteOptions, bad dryRun values and JSON patch bombs.
//! Raw TLS clients stand in where curl cannot express the misbehaviour.
mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A TLS connection to the server trusting its CA, offering `alpn`.
async fn tls(s: &Server, alpn: &[u8]) -> TlsStream<TcpStream> {
    let ca = std::fs::read(s.data_dir.join("pki").join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::from(ip), tcp)
        .await
        .unwrap()
}

/// Reads until the server closes the connection or `limit` passes; returns what arrived and
/// whether it closed.
async fn read_until_close<R: AsyncReadExt + Unpin>(r: &mut R, limit: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Err(_) => return (String::from_utf8_lossy(&buf).into_owned(), false),
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&buf).into_owned(), true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// curl with extra arguments; returns (status, headers and body).
fn curl(s: &Server, args: &[&str], path: &str, body: Option<&[u8]>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "-i", "--max-time", "30", "-w", "\n%{http_code}"]);
    cmd.args(args);
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    cmd.arg(format!("{}{}", s.url(), path));
    let out = run_cmd(cmd, body, Duration::from_secs(60));
    let (text, code) = out.stdout.rsplit_once('\n').unwrap_or(("", out.stdout.as_str()));
    (code.trim().parse().unwrap_or(0), text.to_string())
}

/// The JSON body of a `curl -i` answer.
fn status_body(text: &str) -> Value {
    let body = text.split("\r\n\r\n").last().unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn bearer(s: &Server) -> String {
    format!("Authorization: Bearer {}", s.token())
}

/// Item 4: a client without credentials is answered 401 before it sends its body, over
/// HTTP/1.1 (then the connection closes) and HTTP/2 (a 401, not a reset stream).
#[test]
fn unauthenticated_upload_is_refused_before_the_body() {
    let s = Server::start();
    runtime().block_on(async {
        let mut c = tls(&s, b"http/1.1").await;
        let head = "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n\
                    Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n";
        c.write_all(head.as_bytes()).await.unwrap();
        c.write_all(b"{\"kind\":").await.unwrap();
        let (got, closed) = read_until_close(&mut c, Duration::from_secs(10)).await;
        assert!(got.starts_with("HTTP/1.1 401"), "{got}");
        assert!(got.to_ascii_lowercase().contains("connection: close"), "{got}");
        assert!(got.contains("\"reason\":\"Unauthorized\""), "{got}");
        assert!(closed, "the connection stays open after an unread body: {got}");
    });
    let big = vec![b'x'; 5 << 20];
    for proto in ["--http2", "--http1.1"] {
        let (code, text) = curl(
            &s,
            &[proto, "-H", "Content-Type: application/json"],
            "/api/v1/namespaces/default/configmaps",
            Some(&big),
        );
        assert_eq!(code, 401, "{proto}: {text}");
        assert_eq!(status_body(&text)["reason"], "Unauthorized", "{proto}");
    }
}

/// Item 12: an oversized body over HTTP/2 (and HTTP/1.1) gets a 413 Status, not a reset.
#[test]
fn oversized_body_is_413_over_http2_and_http1() {
    let s = Server::start();
    let auth = bearer(&s);
    let big = vec![b' '; 4 << 20];
    for proto in ["--http2", "--http1.1"] {
        let (code, text) = curl(
            &s,
            &[proto, "-H", &auth, "-H", "Content-Type: application/json"],
            "/api/v1/namespaces/default/configmaps",
            Some(&big),
        );
        assert_eq!(code, 413, "{proto}: {text}");
        let st = status_body(&text);
        assert_eq!(st["reason"], "RequestEntityTooLarge", "{proto}");
        assert_eq!(st["message"], "Request entity too large: limit is 3145728", "{proto}");
    }
    // The server is fine afterwards.
    assert_eq!(
        s.curl("GET", "/api/v1/namespaces/default", Some(&s.token()), None, "")
            .0,
        200
    );
}

/// Item 6: impersonation headers are refused with 403 instead of being ignored.
#[test]
fn impersonation_is_forbidden() {
    let s = Server::start();
    let auth = bearer(&s);
    let (code, text) = curl(
        &s,
        &["-H", &auth, "-H", "Impersonate-User: bob"],
        "/api/v1/namespaces",
        None,
    );
    assert_eq!(code, 403, "{text}");
    let st = status_body(&text);
    assert_eq!(st["reason"], "Forbidden");
    assert_eq!(
        st["message"],
        "users \"bob\" is forbidden: User \"admin\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let (code, text) = curl(
        &s,
        &["-H", &auth, "-H", "Impersonate-Group: system:masters"],
        "/api/v1/namespaces",
        None,
    );
    assert_eq!(code, 403, "{text}");
    let (code, _) = curl(
        &s,
        &["-H", &auth, "-H", "Impersonate-Uid: 1"],
        "/api/v1/namespaces",
        None,
    );
    assert_eq!(code, 403);
    // kubectl --as is refused the same way, and nothing is created.
    let out = s.fails(&["--as", "bob", "create", "configmap", "imp"]);
    assert_contains(&out, "User \"admin\" cannot impersonate resource \"users\"");
    s.fails(&["get", "configmap", "imp"]);
}

/// Items 4 and 12: partial headers, a TLS handshake never started and a body shorter than its
/// Content-Length are cut off after their timeouts; an idle HTTP/2 connection is closed.
#[test]
fn slow_clients_are_cut_off() {
    let s = Server::start_with(&[
        "--api-serving-limits",
        "tls-handshake-timeout=1s,header-read-timeout=1s,body-read-timeout=2s,idle-timeout=2s",
    ]);
    let token = s.token();
    runtime().block_on(async {
        // No TLS handshake at all.
        let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        let t = Instant::now();
        let (_, closed) = read_until_close(&mut tcp, Duration::from_secs(10)).await;
        assert!(
            closed && t.elapsed() < Duration::from_secs(5),
            "handshake timeout: {:?}",
            t.elapsed()
        );

        // Headers that never end.
        let mut c = tls(&s, b"http/1.1").await;
        c.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
            .await
            .unwrap();
        let t = Instant::now();
        let (_, closed) = read_until_close(&mut c, Duration::from_secs(10)).await;
        assert!(
            closed && t.elapsed() < Duration::from_secs(5),
            "header timeout: {:?}",
            t.elapsed()
        );

        // A body shorter than declared: 408.
        let mut c = tls(&s, b"http/1.1").await;
        let head = format!(
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"kind\":"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        let t = Instant::now();
        let (got, _) = read_until_close(&mut c, Duration::from_secs(10)).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(got.contains("\"code\":408"), "{got}");
        assert!(t.elapsed() < Duration::from_secs(6), "body timeout: {:?}", t.elapsed());

        // An HTTP/2 connection left idle after a request is closed (GOAWAY).
        let c = tls(&s, b"h2").await;
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, http_body_util::Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(c))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let req = hyper::Request::get(format!("{}/version", s.url()))
            .body(http_body_util::Empty::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        drop(resp);
        let t = Instant::now();
        // Ended cleanly or not, the server ended it.
        let _ = tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("idle HTTP/2 connection was not closed");
        assert!(
            t.elapsed() >= Duration::from_secs(1),
            "closed too early: {:?}",
            t.elapsed()
        );
    });
}

/// Item 4: connections beyond the per-source cap are closed right after accept (logged), and
/// accepted again once others close.
#[test]
fn connections_per_source_are_capped() {
    let s = Server::start_with(&["--api-serving-limits", "max-connections-per-ip=4"]);
    runtime().block_on(async {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(tls(&s, b"http/1.1").await);
        }
        let mut extra = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        let (_, closed) = read_until_close(&mut extra, Duration::from_secs(5)).await;
        assert!(closed, "a connection over the cap was kept");
        drop(held);
    });
    wait_until(Duration::from_secs(10), "a connection is accepted again", || {
        s.curl("GET", "/version", None, None, "").0 == 200
    });
    let log = std::fs::read_to_string(s.stderr_log()).unwrap_or_default()
        + &std::fs::read_to_string(s.stdout_log()).unwrap_or_default();
    assert_contains(&log, "connection limit reached");
}

/// Item 4: beyond --max-mutating-requests-inflight a write gets 429 with Retry-After and a
/// Status; reads have their own pool; the place frees when the request ends.
#[test]
fn inflight_limit_answers_429() {
    let s = Server::start_with(&["--api-serving-limits", "max-mutating-requests-inflight=1"]);
    let token = s.token();
    let auth = bearer(&s);
    let cm = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"generateName":"c-"}}"#;
    let rt = runtime();
    // A write whose body is still arriving holds the only mutating place.
    let mut slow = rt.block_on(async {
        let mut c = tls(&s, b"http/1.1").await;
        let head = format!(
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        c.write_all(head.as_bytes()).await.unwrap();
        c.flush().await.unwrap();
        c
    });
    let got = wait_for(Duration::from_secs(10), "a 429", || {
        let (code, text) = curl(
            &s,
            &["-H", &auth, "-H", "Content-Type: application/json"],
            "/api/v1/namespaces/default/configmaps",
            Some(cm),
        );
        (code == 429).then_some(text)
    });
    assert!(got.to_ascii_lowercase().contains("retry-after: 1"), "{got}");
    let st = status_body(&got);
    assert_eq!(st["reason"], "TooManyRequests");
    assert_eq!(st["message"], "Too many requests, please try again later.");
    assert_eq!(st["code"], 429);
    // Reads are not in the mutating pool.
    assert_eq!(
        s.curl("GET", "/api/v1/namespaces/default/configmaps", Some(&token), None, "")
            .0,
        200
    );
    rt.block_on(async { slow.shutdown().await.ok() });
    drop(slow);
    wait_until(Duration::from_secs(10), "the place is freed", || {
        curl(
            &s,
            &["-H", &auth, "-H", "Content-Type: application/json"],
            "/api/v1/namespaces/default/configmaps",
            Some(cm),
        )
        .0 == 201
    });
}

/// Item 7: badly typed DeleteOptions are refused with 400 and nothing is deleted.
#[test]
fn delete_options_are_decoded_strictly() {
    let s = Server::start();
    let token = s.token();
    s.ok(&["create", "configmap", "keep"]);
    for body in [
        r#"{"dryRun":"All"}"#,
        r#"{"preconditions":{"resourceVersion":1}}"#,
        r#"{"preconditions":{"uid":123}}"#,
        r#"{"gracePeriodSeconds":"x"}"#,
    ] {
        let (code, text) = s.curl(
            "DELETE",
            "/api/v1/namespaces/default/configmaps/keep",
            Some(&token),
            Some(body.as_bytes()),
            "application/json",
        );
        assert_eq!(code, 400, "{body}: {text}");
        let st: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(st["reason"], "BadRequest", "{body}");
        s.ok(&["get", "configmap", "keep"]);
    }
    // dryRun with an unsupported value in the body: 422, still there.
    let (code, text) = s.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/keep",
        Some(&token),
        Some(br#"{"dryRun":["Bogus"]}"#),
        "application/json",
    );
    assert_eq!(code, 422, "{text}");
    // A well-typed dry run keeps it; a real delete removes it.
    let (code, _) = s.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/keep",
        Some(&token),
        Some(br#"{"dryRun":["All"]}"#),
        "application/json",
    );
    assert_eq!(code, 200);
    s.ok(&["get", "configmap", "keep"]);
    let (code, _) = s.curl(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/keep",
        Some(&token),
        Some(br#"{"gracePeriodSeconds":0}"#),
        "application/json",
    );
    assert_eq!(code, 200);
    s.fails(&["get", "configmap", "keep"]);
}

/// Item 8: an unsupported dryRun value is refused (upstream's ValidateDryRun message) and a dry
/// run create of an existing name is a conflict like the real create.
#[test]
fn dry_run_is_validated_and_checks_existence() {
    let s = Server::start();
    let token = s.token();
    let cm = |n: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}}).to_string();
    let post = |q: &str, n: &str| {
        s.curl(
            "POST",
            &format!("/api/v1/namespaces/default/configmaps{q}"),
            Some(&token),
            Some(cm(n).as_bytes()),
            "application/json",
        )
    };
    let (code, text) = post("?dryRun=Bogus", "bogus");
    assert_eq!(code, 422, "{text}");
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["reason"], "Invalid");
    assert_eq!(
        st["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Bogus\"}: supported values: \"All\""
    );
    s.fails(&["get", "configmap", "bogus"]);

    s.ok(&["create", "configmap", "there"]);
    let (code, text) = post("?dryRun=All", "there");
    assert_eq!(code, 409, "{text}");
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["reason"], "AlreadyExists");
    assert_eq!(st["message"], "configmaps \"there\" already exists");
    let out = s.fails(&["create", "configmap", "there", "--dry-run=server"]);
    assert_contains(&out, r#"configmaps "there" already exists"#);

    let (code, text) = post("?dryRun=All", "fresh");
    assert_eq!(code, 201, "{text}");
    s.fails(&["get", "configmap", "fresh"]);
}

/// Item 5: the 3 KB JSON patch whose copies double a value is refused (422) at once instead of
/// eating the machine's memory; more than 10000 operations is 413.
#[test]
fn json_patch_bombs_are_refused() {
    let s = Server::start();
    let token = s.token();
    s.ok(&["create", "configmap", "bomb", "--from-literal=a=seed"]);
    let mut ops = vec![json!({"op": "add", "path": "/data/list", "value": "x".repeat(64)})];
    ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {"v": ["x".repeat(64)]}}));
    for _ in 0..40 {
        ops.push(json!({"op": "copy", "from": "/metadata/annotations/v", "path": "/metadata/annotations/v/-"}));
    }
    let body = Value::Array(ops).to_string();
    assert!(body.len() < 4096);
    let t = Instant::now();
    let (code, text) = s.curl(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/bomb",
        Some(&token),
        Some(body.as_bytes()),
        "application/json-patch+json",
    );
    assert_eq!(code, 422, "{text}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(st["reason"], "Invalid");
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Unable to complete the copy, the accumulated size increase of copy is "),
        "{msg}"
    );
    assert!(msg.ends_with("exceeding the limit 3145728"), "{msg}");

    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/data/a", "value": "seed"}))
        .collect();
    let (code, text) = s.curl(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/bomb",
        Some(&token),
        Some(Value::Array(many).to_string().as_bytes()),
        "application/json-patch+json",
    );
    assert_eq!(code, 413, "{text}");
    let st: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        st["message"],
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
    // Unchanged and the server alive.
    assert_eq!(s.ok(&["get", "configmap", "bomb", "-o", "jsonpath={.data.a}"]), "seed");
}
