//! A throwaway HTTP server for checking the OpenAPI documents with the real kubectl:
//! `cargo run -p skiff-api --example openapi_serve -- 8099 33`, then
//! `kubectl --server=http://127.0.0.1:8099 explain pods.spec`. It serves `/version` (with the
//! given minor version), legacy discovery, the `/openapi` endpoints, a map of objects (POST
//! stores, GET returns, PATCH logs the patch kubectl computed) and 404 elsewhere.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::{json, Value};
use skiff_api::openapi;
use skiff_api::registry::{self, RESOURCES};

fn resource_list(group: &str, version: &str) -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| {
            json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                   "verbs": r.verbs, "shortNames": r.short_names, "categories": r.categories})
        })
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn route(path: &str, accept: &str, minor: &str) -> Option<(&'static str, Vec<u8>)> {
    const JSON: &str = "application/json";
    let path = path.split('?').next().unwrap_or(path);
    let json_bytes = |v: Value| Some((JSON, v.to_string().into_bytes()));
    match path {
        "/version" => json_bytes(
            json!({"major": "1", "minor": minor, "gitVersion": format!("v1.{minor}.0"), "platform": "linux/amd64"}),
        ),
        "/api" => json_bytes(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})),
        "/apis" => {
            let groups: Vec<Value> = registry::group_versions()
                .into_iter()
                .filter(|(g, _)| !g.is_empty())
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            json_bytes(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        }
        "/api/v1" => json_bytes(resource_list("", "v1")),
        "/openapi/v3" => Some((JSON, openapi::v3_index().to_vec())),
        "/openapi/v2" if accept.contains("protobuf") => {
            Some((openapi::V2_PROTOBUF_CONTENT_TYPE, openapi::v2_protobuf().to_vec()))
        }
        "/openapi/v2" => Some((JSON, openapi::v2_json().to_vec())),
        "/swagger-2.0.0.pb-v1" => Some((openapi::V2_PROTOBUF_CONTENT_TYPE, openapi::v2_protobuf().to_vec())),
        _ => {
            if let Some(rest) = path.strip_prefix("/openapi/v3/") {
                return openapi::v3_document(rest).map(|d| (JSON, d.to_vec()));
            }
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            match parts.as_slice() {
                ["apis", g, v] if registry::group_versions().contains(&(g, v)) => json_bytes(resource_list(g, v)),
                _ => None,
            }
        }
    }
}

/// Objects created through the server, by object path.
type Objects = HashMap<String, Vec<u8>>;

fn store(objects: &mut Objects, method: &str, path: &str, body: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    let path = path.split('?').next().unwrap_or(path);
    match method {
        "POST" => {
            let value: Value = serde_json::from_slice(body).ok()?;
            let name = value.pointer("/metadata/name")?.as_str()?;
            objects.insert(format!("{path}/{name}"), body.to_vec());
            Some(("application/json", body.to_vec()))
        }
        "GET" | "PATCH" => objects.get(path).map(|o| ("application/json", o.clone())),
        _ => None,
    }
}

fn handle(mut stream: TcpStream, minor: &str, objects: &mut Objects) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut accept, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("accept:") {
            accept = v.trim().to_string();
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(&mut reader, &mut body)?;
    let mut words = request_line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    let routed = if method == "GET" {
        route(path, &accept, minor)
    } else {
        None
    };
    let answer = routed.or_else(|| store(objects, method, path, &body));
    eprintln!(
        "{method} {path} [{accept}] {} -> {}",
        String::from_utf8_lossy(&body),
        answer.is_some()
    );
    let (status, content_type, payload) = match answer {
        Some((ct, bytes)) => ("200 OK", ct, bytes),
        None => (
            "404 Not Found",
            "application/json",
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#.to_vec(),
        ),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )?;
    stream.write_all(&payload)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port = args.get(1).map(String::as_str).unwrap_or("8099");
    let minor = args.get(2).cloned().unwrap_or_else(|| "33".into());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    eprintln!("serving on 127.0.0.1:{port} as v1.{minor}");
    let mut objects = Objects::new();
    for stream in listener.incoming() {
        if let Err(e) = stream.and_then(|s| handle(s, &minor, &mut objects)) {
            eprintln!("connection error: {e}");
        }
    }
    Ok(())
}
