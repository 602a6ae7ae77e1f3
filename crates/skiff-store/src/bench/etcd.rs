//! A throwaway etcd server process and a minimal client of its JSON gRPC gateway.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::BenchError;

/// An etcd server on 127.0.0.1, killed (by its PID) when dropped.
pub(crate) struct EtcdProcess {
    child: Child,
    /// Base URL of the client endpoint.
    pub url: String,
}

impl EtcdProcess {
    /// Starts `binary` with its data in `dir` on free loopback ports and waits until it answers.
    pub(crate) async fn start(binary: &Path, dir: &Path) -> Result<EtcdProcess, BenchError> {
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let url = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.join("etcd.log"))?;
        let child = Command::new(binary)
            .arg("--name=skiff-bench")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=skiff-bench={peer}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut process = EtcdProcess { child, url };
        process.wait_ready().await?;
        Ok(process)
    }

    async fn wait_ready(&mut self) -> Result<(), BenchError> {
        let client = EtcdClient::new(&self.url);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(BenchError::Etcd(format!("etcd exited during startup: {status}")));
            }
            if client
                .post("/v3/kv/range", serde_json::json!({ "key": B64.encode("ping") }))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Etcd("etcd did not answer within 30s".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1 (free when this returns; etcd binds it right after).
fn free_port() -> Result<u16, BenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A pooled HTTP/1 client of etcd's JSON gateway.
#[derive(Clone)]
pub(crate) struct EtcdClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl EtcdClient {
    /// A client of the etcd at `base` (e.g. `http://127.0.0.1:2379`).
    pub(crate) fn new(base: &str) -> Self {
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .build_http();
        EtcdClient {
            http,
            base: base.to_owned(),
        }
    }

    /// Creates `key` if absent (a txn comparing mod_revision with 0, as the API server's create).
    pub(crate) async fn create(&self, key: &str, value: &[u8]) -> Result<(), BenchError> {
        let key = B64.encode(key);
        let body = serde_json::json!({
            "compare": [{ "key": key, "target": "MOD", "result": "EQUAL", "mod_revision": "0" }],
            "success": [{ "request_put": { "key": key, "value": B64.encode(value) } }],
        });
        let answer = self.post("/v3/kv/txn", body).await?;
        // proto3 JSON omits false, so a failed compare has no "succeeded".
        if answer.get("succeeded").and_then(serde_json::Value::as_bool) != Some(true) {
            return Err(BenchError::Etcd(format!("create of an existing key: {answer}")));
        }
        Ok(())
    }

    /// POSTs `body` as JSON to `path`, answering the parsed JSON of a 200 response.
    async fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, BenchError> {
        let request = hyper::Request::post(format!("{}{path}", self.base))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::Http(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(BenchError::Http(format!(
                "{path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| BenchError::Http(format!("{path}: bad JSON: {e}")))
    }
}
