//! Objects every cluster starts with: the system namespaces, the `kubernetes` service and the
//! default `local-path` StorageClass (as k3s ships it) and the local APIServices.

use std::net::SocketAddr;

use serde_json::{json, Value};
use skiff_api::registry;

use crate::errors::ApiResult;
use crate::meta;
use crate::request::Target;
use crate::rest::{create, update, Request};
use crate::state::ApiServer;

/// Namespaces that exist in every cluster.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Name of the default StorageClass.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// Provisioner of the default StorageClass.
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";

/// Creates core `obj` unless an object of that name exists.
async fn ensure(server: &ApiServer, plural: &str, ns: Option<&str>, obj: Value) -> ApiResult<()> {
    ensure_in(server, "", plural, ns, obj).await
}

/// Creates `obj` of `group` unless an object of that name exists.
async fn ensure_in(server: &ApiServer, group: &str, plural: &str, ns: Option<&str>, obj: Value) -> ApiResult<()> {
    write(server, group, plural, ns, obj, None).await
}

/// Creates `obj`, or sets the `fields` of an existing one to `obj`'s (the apiserver's own
/// address may have changed since the last start).
async fn keep_current(
    server: &ApiServer,
    group: &str,
    plural: &str,
    ns: Option<&str>,
    obj: Value,
    fields: &[&str],
) -> ApiResult<()> {
    write(server, group, plural, ns, obj, Some(fields)).await
}

async fn write(
    server: &ApiServer,
    group: &str,
    plural: &str,
    ns: Option<&str>,
    mut obj: Value,
    fields: Option<&[&str]>,
) -> ApiResult<()> {
    let Some(def) = registry::find(group, "v1", plural) else {
        return Ok(());
    };
    let name = meta::name(&obj).to_string();
    let req = |name: Option<String>| Request {
        target: Target {
            def,
            namespace: ns.map(str::to_string),
            name,
            sub: None,
        },
        query: Default::default(),
        headers: Default::default(),
        raw_query: String::new(),
    };
    if server.cache.contains(def, &def.key(ns, &name)) {
        let Some(fields) = fields else { return Ok(()) };
        let stale = server
            .cache
            .get(def, &def.key(ns, &name))
            .is_some_and(|cur| fields.iter().any(|f| cur[*f] != obj[*f]));
        if stale {
            update::modify(server, &req(Some(name.clone())), &name, |cur| {
                let mut next = cur.clone();
                for f in fields {
                    next[*f] = obj[*f].clone();
                }
                Ok(next)
            })
            .await?;
        }
        return Ok(());
    }
    let req = Request {
        target: Target {
            def,
            namespace: ns.map(str::to_string),
            name: None,
            sub: None,
        },
        query: Default::default(),
        headers: Default::default(),
        raw_query: String::new(),
    };
    create::prepare(server, &req, &mut obj)?;
    match create::store_new(server, def, obj).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates the system namespaces, the `kubernetes` service and endpoints pointing at `addr`
/// and the default `local-path` StorageClass.
pub async fn run(server: &ApiServer, addr: SocketAddr) -> ApiResult<()> {
    for ns in SYSTEM_NAMESPACES {
        ensure(
            server,
            "namespaces",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": server.service_cidr.kubernetes().to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": addr.port()}],
            "sessionAffinity": "None",
        },
    });
    ensure(server, "services", Some("default"), svc).await?;
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}]}],
    });
    keep_current(server, "", "endpoints", Some("default"), ep, &["subsets"]).await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": addr.port(), "protocol": "TCP"}],
    });
    keep_current(
        server,
        "discovery.k8s.io",
        "endpointslices",
        Some("default"),
        slice,
        &["endpoints", "ports"],
    )
    .await?;
    let sc = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    });
    ensure_in(server, "storage.k8s.io", "storageclasses", None, sc).await?;
    for api_service in crate::apiservices::all() {
        ensure_in(server, "apiregistration.k8s.io", "apiservices", None, api_service).await?;
    }
    Ok(())
}
