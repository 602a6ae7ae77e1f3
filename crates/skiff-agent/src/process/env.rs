//! Container environment: `env` and `envFrom` resolved against ConfigMaps, Secrets, the
//! Downward API and resources, and `$(VAR)` expansion of values, command and args.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret};
use kube::{Api, Client};

/// `PATH` given to containers that set none (what container images usually carry).
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Facts about the node the Downward API and resource defaults need.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    /// The node's InternalIP (also the pod IP in host networking).
    pub(crate) node_ip: String,
    /// Allocatable cpu in cores.
    pub(crate) cpu: f64,
    /// Allocatable memory in bytes.
    pub(crate) memory: f64,
    /// Allocatable ephemeral storage in bytes.
    pub(crate) ephemeral_storage: f64,
}

/// ConfigMaps and Secrets of one namespace, fetched once per pod sync.
pub(crate) struct Sources {
    client: Client,
    ns: String,
    configmaps: HashMap<String, Option<Arc<ConfigMap>>>,
    secrets: HashMap<String, Option<Arc<Secret>>>,
}

impl Sources {
    pub(crate) fn new(client: Client, ns: &str) -> Self {
        Sources {
            client,
            ns: ns.to_string(),
            configmaps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// The ConfigMap, `None` when it does not exist.
    pub(crate) async fn configmap(&mut self, name: &str) -> Result<Option<Arc<ConfigMap>>, String> {
        if let Some(c) = self.configmaps.get(name) {
            return Ok(c.clone());
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.ns);
        let c = api.get_opt(name).await.map_err(|e| e.to_string())?.map(Arc::new);
        self.configmaps.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// The Secret, `None` when it does not exist.
    pub(crate) async fn secret(&mut self, name: &str) -> Result<Option<Arc<Secret>>, String> {
        if let Some(c) = self.secrets.get(name) {
            return Ok(c.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let c = api.get_opt(name).await.map_err(|e| e.to_string())?.map(Arc::new);
        self.secrets.insert(name.to_string(), c.clone());
        Ok(c)
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}

/// The data of a ConfigMap as strings (binaryData as lossy UTF-8).
pub(crate) fn configmap_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

/// The data of a Secret (`stringData` is folded in by the API server).
pub(crate) fn secret_data(s: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in s.data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    for (k, v) in s.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// What resolving a container's environment gave.
pub(crate) struct Resolved {
    /// Variables in definition order, later duplicates replacing earlier ones.
    pub(crate) vars: Vec<(String, String)>,
    /// `envFrom` keys skipped for not being valid variable names.
    pub(crate) invalid_names: Vec<String>,
}

/// Resolves the environment of `c` in `pod`, as kubelet's `makeEnvironmentVariables`.
///
/// Errors carry kubelet's messages (`configmap "x" not found`, `couldn't find key k in
/// ConfigMap ns/x`) and become `CreateContainerConfigError`.
pub(crate) async fn resolve(pod: &Pod, c: &Container, node: &NodeFacts, src: &mut Sources) -> Result<Resolved, String> {
    let ns = src.namespace().to_string();
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut invalid = Vec::new();
    let set = |vars: &mut Vec<(String, String)>, k: String, v: String| {
        if let Some(slot) = vars.iter_mut().find(|(n, _)| *n == k) {
            slot.1 = v;
        } else {
            vars.push((k, v));
        }
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            match src.configmap(&r.name).await? {
                Some(cm) => configmap_data(&cm),
                None if r.optional == Some(true) => continue,
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        } else if let Some(r) = &from.secret_ref {
            match src.secret(&r.name).await? {
                Some(s) => secret_data(&s),
                None if r.optional == Some(true) => continue,
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            let name = format!("{prefix}{k}");
            if !is_env_var_name(&name) {
                invalid.push(name);
                continue;
            }
            set(&mut vars, name, String::from_utf8_lossy(&v).into_owned());
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let lookup: HashMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            expand(v, &lookup)
        } else if let Some(from) = &e.value_from {
            if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional == Some(true);
                match src.configmap(&r.name).await? {
                    None if optional => continue,
                    None => return Err(format!("configmap \"{}\" not found", r.name)),
                    Some(cm) => match configmap_data(&cm).remove(&r.key) {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if optional => continue,
                        None => return Err(format!("couldn't find key {} in ConfigMap {ns}/{}", r.key, r.name)),
                    },
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional == Some(true);
                match src.secret(&r.name).await? {
                    None if optional => continue,
                    None => return Err(format!("secret \"{}\" not found", r.name)),
                    Some(s) => match secret_data(&s).remove(&r.key) {
                        Some(v) => String::from_utf8_lossy(&v).into_owned(),
                        None if optional => continue,
                        None => return Err(format!("couldn't find key {} in Secret {ns}/{}", r.key, r.name)),
                    },
                }
            } else if let Some(f) = &from.field_ref {
                field_value(pod, f, node)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(pod, Some(c), r, node)?
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(&mut vars, e.name.clone(), value);
    }
    Ok(Resolved {
        vars,
        invalid_names: invalid,
    })
}

/// The value of a Downward API field (`metadata.name`, `metadata.labels['k']`, `status.podIP`, …).
pub(crate) fn field_value(pod: &Pod, f: &ObjectFieldSelector, node: &NodeFacts) -> Result<String, String> {
    let meta = &pod.metadata;
    let path = f.field_path.as_str();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')?;
        let key = rest
            .strip_prefix('\'')
            .and_then(|r| r.strip_suffix('\''))
            .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))?;
        Some(key.to_string())
    };
    if let Some(k) = subscript("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" | "status.podIP" | "status.podIPs" => node.node_ip.clone(),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// `key="value"` lines, sorted by key, as the Downward API writes label and annotation files.
pub(crate) fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    let mut out = String::new();
    for (k, v) in m.into_iter().flatten() {
        out.push_str(&format!("{k}={}\n", serde_json::Value::String(v.clone())));
    }
    out.trim_end_matches('\n').to_string()
}

/// The value of a resource field (`limits.cpu`, `requests.memory`, …), divided by its divisor
/// and rounded up; unset limits default to the node's allocatable.
pub(crate) fn resource_value(
    pod: &Pod,
    c: Option<&Container>,
    r: &ResourceFieldSelector,
    node: &NodeFacts,
) -> Result<String, String> {
    let container = match (&r.container_name, c) {
        (Some(n), _) if !n.is_empty() => pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| &c.name == n))
            .ok_or_else(|| format!("container {n} not found"))?,
        (_, Some(c)) => c,
        _ => return Err("resourceFieldRef needs a containerName".into()),
    };
    let res = container.resources.as_ref();
    let get = |kind: &str, name: &str| -> Option<f64> {
        let m = match kind {
            "limits" => res.and_then(|r| r.limits.as_ref()),
            _ => res.and_then(|r| r.requests.as_ref()),
        }?;
        parse_quantity(&m.get(name)?.0)
    };
    let (kind, name) = r
        .resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource: {}", r.resource))?;
    let node_default = match name {
        "cpu" => node.cpu,
        "memory" => node.memory,
        "ephemeral-storage" => node.ephemeral_storage,
        _ => return Err(format!("unsupported container resource: {}", r.resource)),
    };
    let value = match kind {
        "limits" => get("limits", name).unwrap_or(node_default),
        // upstream: an unset request defaults to the limit, else to zero
        "requests" => get("requests", name).or_else(|| get("limits", name)).unwrap_or(0.0),
        _ => return Err(format!("unsupported container resource: {}", r.resource)),
    };
    let divisor = r
        .divisor
        .as_ref()
        .and_then(|d| parse_quantity(&d.0))
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    Ok(format!("{}", (value / divisor - 1e-9).ceil().max(0.0) as i64))
}

/// A Kubernetes quantity (`100m`, `1.5Gi`, `2e3`) as a number.
pub(crate) fn parse_quantity(q: &str) -> Option<f64> {
    skiff_api::validation::parse_quantity(q)
}

/// upstream `IsEnvVarName`: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
pub(crate) fn is_env_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || "-._".contains(c) => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Expands `$(VAR)` references as upstream's `expansion.Expand`: defined names are replaced,
/// undefined ones are left as written, `$$` is an escaped `$`.
pub(crate) fn expand(input: &str, vars: &HashMap<&str, &str>) -> String {
    let b = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.extend_from_slice(&b[checkpoint..cursor]);
            let rest = &b[cursor + 1..];
            let advance = match rest[0] {
                b'$' => {
                    out.push(b'$');
                    1
                }
                b'(' => match rest.iter().position(|&c| c == b')') {
                    Some(end) => {
                        let name = String::from_utf8_lossy(&rest[1..end]);
                        match vars.get(name.as_ref()) {
                            Some(v) => out.extend_from_slice(v.as_bytes()),
                            None => out.extend_from_slice(format!("$({name})").as_bytes()),
                        }
                        end + 1
                    }
                    None => {
                        out.extend_from_slice(b"$(");
                        1
                    }
                },
                c => {
                    out.push(b'$');
                    out.push(c);
                    1
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.extend_from_slice(&b[checkpoint.min(b.len())..]);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_upstream() {
        let vars: HashMap<&str, &str> = [("A", "a"), ("EMPTY", "")].into_iter().collect();
        let cases = [
            ("plain", "plain"),
            ("$(A)", "a"),
            ("x$(A)y$(A)", "xaya"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$(A", "$(A"),
            ("a$", "a$"),
            ("$x", "$x"),
            ("$(EMPTY)-", "-"),
            ("é$(A)é", "éaé"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }

    #[test]
    fn quantities_parse() {
        let cases = [
            ("100m", 0.1),
            ("2", 2.0),
            ("1Ki", 1024.0),
            ("64Mi", 64.0 * 1024.0 * 1024.0),
            ("1.5G", 1.5e9),
            ("1e3", 1000.0),
        ];
        for (q, want) in cases {
            assert!((parse_quantity(q).unwrap() - want).abs() < 1e-6, "{q}");
        }
        assert!(parse_quantity("abc").is_none());
    }

    #[test]
    fn env_var_names() {
        for (n, ok) in [
            ("A_B", true),
            ("-x.y", true),
            ("1A", false),
            ("a b", false),
            ("", false),
        ] {
            assert_eq!(is_env_var_name(n), ok, "{n}");
        }
    }
}
