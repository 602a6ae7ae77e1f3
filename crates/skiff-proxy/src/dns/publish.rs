//! The cluster DNS as clients find it: the `kube-system/kube-dns` Service at the DNS address
//! of the service range, with an EndpointSlice naming where the server listens (on other
//! clusters, CoreDNS's pods).

use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Who manages these objects.
const MANAGER: &str = "skiff-dns";

/// Creates `obj`, or replaces the existing object of its name with it. (Not server-side
/// apply: two ports 53 of different protocols need its `port`+`protocol` list keys, which
/// skiff's apply does not have yet.)
async fn put<K>(api: &Api<K>, name: &str, obj: Value) -> Result<(), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let mut obj: K = serde_json::from_value(obj).map_err(kube::Error::SerdeError)?;
    match api.get_opt(name).await? {
        Some(cur) => {
            obj.meta_mut().resource_version = cur.meta().resource_version.clone();
            api.replace(name, &PostParams::default(), &obj).await?;
        }
        None => {
            api.create(&PostParams::default(), &obj).await?;
        }
    }
    Ok(())
}

/// Creates or updates the `kube-dns` Service at `cluster_ip` and its EndpointSlice pointing
/// at `addr` (port 53 of the Service forwards to `addr`'s port).
pub async fn publish(client: &Client, cluster_ip: IpAddr, addr: SocketAddr) -> Result<(), kube::Error> {
    let labels =
        json!({"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"});
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "clusterIP": cluster_ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": addr.port()},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": addr.port()},
            ],
        },
    });
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    put(&services, "kube-dns", svc).await?;
    let family = if addr.is_ipv4() { "IPv4" } else { "IPv6" };
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"kubernetes.io/service-name": "kube-dns", "endpointslice.kubernetes.io/managed-by": MANAGER}},
        "addressType": family,
        "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
        "ports": [
            {"name": "dns", "port": addr.port(), "protocol": "UDP"},
            {"name": "dns-tcp", "port": addr.port(), "protocol": "TCP"},
        ],
    });
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    put(&slices, "kube-dns", slice).await?;
    Ok(())
}
