//! Discovery documents: legacy (`APIVersions`, `APIGroupList`, `APIResourceList`) and
//! aggregated (`APIGroupDiscoveryList` v2 / v2beta1, chosen from the client's Accept).

use http::HeaderMap;
use serde_json::{json, Value};
use skiff_api::registry::{self, ResourceDef};

/// Aggregated discovery version a client accepts, if any (`v2` preferred).
pub fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let offered = |v: &str| {
        accept.split(',').any(|part| {
            part.contains("as=APIGroupDiscoveryList")
                && part.contains("g=apidiscovery.k8s.io")
                && part.split(';').any(|p| p.trim() == format!("v={v}"))
        })
    };
    if offered("v2") {
        Some("v2")
    } else if offered("v2beta1") {
        Some("v2beta1")
    } else {
        None
    }
}

/// Content type of an aggregated answer.
pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// Groups other than core, in discovery order, each with its versions.
fn named_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for (g, v) in registry::group_versions() {
        if g.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, vs)) => vs.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

/// `GET /api` (legacy).
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    })
}

/// `GET /apis` (legacy).
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = named_groups()
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            json!({"name": g, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>` (legacy single group).
pub fn api_group(group: &str) -> Option<Value> {
    let (g, vs) = named_groups().into_iter().find(|(g, _)| *g == group)?;
    let versions: Vec<Value> = vs
        .iter()
        .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    Some(
        json!({"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": versions, "preferredVersion": versions[0]}),
    )
}

/// `GET /api/v1` or `GET /apis/<group>/<version>` (legacy).
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for def in registry::resources_in(group, version) {
        let mut r = json!({
            "name": def.plural,
            "singularName": def.singular,
            "namespaced": def.namespaced,
            "kind": def.kind,
            "verbs": def.verbs,
        });
        if !def.short_names.is_empty() {
            r["shortNames"] = json!(def.short_names);
        }
        if !def.categories.is_empty() {
            r["categories"] = json!(def.categories);
        }
        resources.push(r);
        for s in def.subresources {
            let mut e = json!({
                "name": format!("{}/{}", def.plural, s.name),
                "singularName": "",
                "namespaced": def.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != group || s.version != version {
                e["group"] = json!(s.group);
                e["version"] = json!(s.version);
            }
            resources.push(e);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

fn aggregated_resource(def: &ResourceDef) -> Value {
    let mut r = json!({
        "resource": def.plural,
        "singularResource": def.singular,
        "scope": if def.namespaced { "Namespaced" } else { "Cluster" },
        "responseKind": {"group": def.group, "version": def.version, "kind": def.kind},
        "verbs": def.verbs,
    });
    if !def.short_names.is_empty() {
        r["shortNames"] = json!(def.short_names);
    }
    if !def.categories.is_empty() {
        r["categories"] = json!(def.categories);
    }
    if !def.subresources.is_empty() {
        let subs: Vec<Value> = def
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": s.verbs,
                })
            })
            .collect();
        r["subresources"] = Value::Array(subs);
    }
    r
}

fn aggregated_group(name: Option<&str>, group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = registry::resources_in(group, v).map(aggregated_resource).collect();
            json!({"version": v, "freshness": "Current", "resources": resources})
        })
        .collect();
    let meta = match name {
        Some(n) => json!({"name": n, "creationTimestamp": null}),
        None => json!({"creationTimestamp": null}),
    };
    json!({"metadata": meta, "versions": versions})
}

/// Aggregated `/api` (`core = true`) or `/apis` document.
pub fn aggregated(version: &str, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(None, "", &["v1"])]
    } else {
        named_groups()
            .iter()
            .map(|(g, vs)| aggregated_group(Some(g), g, vs))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_version_the_client_offered() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(aggregated_version(&h), Some("v2beta1"));
        h.insert(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(aggregated_version(&h), Some("v2"));
        h.insert(http::header::ACCEPT, "application/json, */*".parse().unwrap());
        assert_eq!(aggregated_version(&h), None);
    }

    #[test]
    fn documents_list_every_resource() {
        let apps = resource_list("apps", "v1").unwrap();
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments") && names.contains(&"deployments/scale"));
        let agg = aggregated("v2", false);
        assert!(agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["metadata"]["name"] == "batch"));
        assert!(
            aggregated("v2", true)["items"][0]["versions"][0]["resources"]
                .as_array()
                .unwrap()
                .len()
                > 10
        );
    }
}
