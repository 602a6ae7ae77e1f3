//! Subresources served by the node agent (kubelet API), proxied by the API server over HTTPS
//! with its kubelet client certificate ([`crate::kubelet_client`]):
//! `pods/log` → `GET https://<node InternalIP>:<kubelet port>/containerLogs/NS/POD/CONTAINER`,
//! and the upgrading ones (`exec`, `attach`, `portforward`) → `/exec/…`, `/attach/…`,
//! `/portForward/…`, whose SPDY or WebSocket streams are then copied both ways untouched.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skiff_api::registry;

use super::Request;
use crate::errors::{ApiError, ApiResult};
use crate::state::ApiServer;

/// An HTTPS connection to the agent at `authority`.
async fn dial(server: &ApiServer, authority: &str) -> Result<SendRequest<Empty<Bytes>>, String> {
    let Some(kubelet) = &server.kubelet else {
        return Err("the API server has no kubelet client certificate".into());
    };
    kubelet.connect(authority).await
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The container a request names, or the only one, with upstream's errors.
fn container(pod: &Value, name: &str, wanted: Option<&str>) -> ApiResult<String> {
    let main = names(&pod["spec"]["containers"]);
    let init = names(&pod["spec"]["initContainers"]);
    match wanted.filter(|w| !w.is_empty()) {
        Some(w) if main.iter().chain(init.iter()).any(|c| c == w) => Ok(w.to_string()),
        Some(w) => Err(ApiError::bad_request(format!(
            "container {w} is not valid for pod {name}"
        ))),
        None if main.len() == 1 => Ok(main[0].clone()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                main.join(" ")
            );
            if !init.is_empty() {
                msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// `host:port` of the agent on the pod's node.
fn agent_base(server: &ApiServer, pod: &Value, name: &str) -> ApiResult<String> {
    let node_name = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty());
    let Some(node_name) = node_name else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    let nodes = registry::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = server
        .cache
        .get(nodes, &nodes.key(None, node_name))
        .ok_or_else(|| ApiError::not_found(nodes, node_name))?;
    let addrs = node["status"]["addresses"].as_array().cloned().unwrap_or_default();
    let ip = addrs
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .or_else(|| addrs.first())
        .and_then(|a| a["address"].as_str())
        .unwrap_or("127.0.0.1");
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_i64()
        .unwrap_or(10250);
    if ip.contains(':') {
        return Ok(format!("[{ip}]:{port}"));
    }
    Ok(format!("{ip}:{port}"))
}

/// Refuses a pod on a simulated node (label `skiff.dev/sim=true`): nothing runs there, so
/// kubectl gets a message saying so instead of a failed dial.
fn refuse_simulated(server: &ApiServer, pod: &Value, ns: &str, name: &str, sub: &str) -> ApiResult<()> {
    let Some(node_name) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
        return Ok(());
    };
    let Some(nodes) = registry::find("", "v1", "nodes") else {
        return Ok(());
    };
    let Some(node) = server.cache.get(nodes, &nodes.key(None, node_name)) else {
        return Ok(());
    };
    if node["metadata"]["labels"]["skiff.dev/sim"] != "true" {
        return Ok(());
    }
    let what = match sub {
        "log" => "it has no logs",
        "exec" => "there is no process to exec into",
        "attach" => "there is no process to attach to",
        _ => "there is no port to forward to",
    };
    Err(ApiError::bad_request(format!(
        "pod {ns}/{name} runs on simulated node {node_name}, which runs no processes: {what}"
    )))
}

/// Drops `container` from the query (it becomes part of the kubelet path).
fn forwarded_query(raw: &str) -> String {
    raw.split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("container="))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET pods/{name}/log`.
pub async fn log(server: &ApiServer, req: &Request, name: &str) -> ApiResult<Response> {
    let def = req.target.def;
    let ns = req.target.namespace.as_deref().unwrap_or("default");
    let pod = server
        .cache
        .get(def, &def.key(Some(ns), name))
        .ok_or_else(|| ApiError::not_found(def, name))?;
    let wanted = form_urlencoded_get(&req.raw_query, "container");
    let c = container(&pod, name, wanted.as_deref())?;
    refuse_simulated(server, &pod, ns, name, "log")?;
    let authority = agent_base(server, &pod, name)?;
    let q = forwarded_query(&req.raw_query);
    let path = format!(
        "/containerLogs/{ns}/{name}/{c}{}{q}",
        if q.is_empty() { "" } else { "?" }
    );
    let url = format!("https://{authority}{path}");
    let failed = |e: &dyn std::fmt::Display| ApiError::new(500, "InternalError", format!("Get \"{url}\": {e}"));
    let get = http::Request::get(&path)
        .header(http::header::HOST, &authority)
        .body(Empty::<Bytes>::new())
        .map_err(ApiError::internal)?;
    let mut sender = dial(server, &authority).await.map_err(|e| failed(&e))?;
    let resp = sender.send_request(get).await.map_err(|e| failed(&e))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_string();
        let reason = match status.as_u16() {
            400 => "BadRequest",
            404 => "NotFound",
            _ => "InternalError",
        };
        return Err(ApiError::new(status.as_u16(), reason, text));
    }
    let mut out = Response::new(Body::new(resp.into_body()));
    out.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    Ok(out)
}

/// Request headers the agent needs to pick and answer the stream protocol.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "origin",
];

/// `pods/{name}/exec|attach|portforward`: forwards the upgrade request to the pod's agent and,
/// once both sides switched protocols, splices the two connections.
pub async fn connect(
    server: &ApiServer,
    target: &crate::request::Target,
    mut parts: http::request::Parts,
) -> ApiResult<Response> {
    let def = target.def;
    let ns = target.namespace.as_deref().unwrap_or("default");
    let name = target.name.as_deref().unwrap_or_default();
    let pod = server
        .cache
        .get(def, &def.key(Some(ns), name))
        .ok_or_else(|| ApiError::not_found(def, name))?;
    let raw = parts.uri.query().unwrap_or("").to_string();
    let path = match target.sub.as_deref() {
        Some("portforward") => format!("/portForward/{ns}/{name}"),
        Some(kind) => {
            let c = container(&pod, name, form_urlencoded_get(&raw, "container").as_deref())?;
            format!("/{kind}/{ns}/{name}/{c}")
        }
        None => return Err(ApiError::no_route()),
    };
    refuse_simulated(server, &pod, ns, name, target.sub.as_deref().unwrap_or_default())?;
    let authority = agent_base(server, &pod, name)?;
    let q = forwarded_query(&raw);
    let uri = format!("{path}{}{q}", if q.is_empty() { "" } else { "?" });
    let mut req = http::Request::builder()
        .method(parts.method.clone())
        .uri(&uri)
        .header(http::header::HOST, &authority);
    for h in UPGRADE_HEADERS {
        for v in parts.headers.get_all(*h) {
            req = req.header(*h, v);
        }
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(ApiError::internal)?;
    let unreachable =
        |e: &dyn std::fmt::Display| ApiError::new(500, "InternalError", format!("error dialing backend: {e}"));
    let mut sender = dial(server, &authority).await.map_err(|e| unreachable(&e))?;
    let mut agent_resp = sender.send_request(req).await.map_err(|e| unreachable(&e))?;
    if agent_resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        // Passed through as the agent wrote it, as kube-apiserver does: kubectl prints
        // `unable to upgrade connection: <body>`.
        let status = agent_resp.status();
        let ct = agent_resp.headers().get(http::header::CONTENT_TYPE).cloned();
        let body = agent_resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = status;
        if let Some(ct) = ct {
            out.headers_mut().insert(http::header::CONTENT_TYPE, ct);
        }
        return Ok(out);
    }
    let client_upgrade = parts
        .extensions
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or_else(|| ApiError::bad_request("Upgrade request required"))?;
    let agent_upgrade = hyper::upgrade::on(&mut agent_resp);
    tokio::spawn(async move {
        let (client, agent) = match (client_upgrade.await, agent_upgrade.await) {
            (Ok(c), Ok(a)) => (c, a),
            (c, a) => {
                tracing::debug!(client = c.is_ok(), agent = a.is_ok(), "stream upgrade failed");
                return;
            }
        };
        let (mut client, mut agent) = (TokioIo::new(client), TokioIo::new(agent));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut agent).await {
            tracing::debug!(error = %e, "stream copy ended");
        }
    });
    let mut out = Response::new(Body::empty());
    *out.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    for (k, v) in agent_resp.headers() {
        out.headers_mut().append(k.clone(), v.clone());
    }
    Ok(out)
}

/// The first value of a query parameter.
fn form_urlencoded_get(raw: &str, key: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_choice_follows_upstream() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        assert_eq!(container(&pod, "p", Some("i")).unwrap(), "i");
        assert_eq!(
            container(&pod, "p", Some("x")).unwrap_err().message,
            "container x is not valid for pod p"
        );
        assert_eq!(
            container(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(container(&one, "p", None).unwrap(), "a");
        assert_eq!(
            forwarded_query("container=a&follow=true&tailLines=5"),
            "follow=true&tailLines=5"
        );
    }
}
