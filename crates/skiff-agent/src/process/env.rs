//! Container environment: `env` and `envFrom` resolved against ConfigMaps, Secrets, the
//! Downward API and resources, and `$(VAR)` expansion of values, command and args.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectFieldSelector, Pod, ResourceFieldSelector, Secret, Service,
};
use kube::{Api, Client};

/// `PATH` given to containers that set none (what container images usually carry).
pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Facts about the node the Downward API and resource defaults need.
#[derive(Debug, Clone)]
pub(crate) struct NodeFacts {
    /// The node's InternalIP (also the pod IP in host networking).
    pub(crate) node_ip: String,
    /// The pod's own address in bridge networking (set per pod).
    pub(crate) pod_ip: Option<String>,
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
    /// The variables of the services the pod sees, once listed.
    service_env: Option<Vec<(String, String)>>,
}

impl Sources {
    pub(crate) fn new(client: Client, ns: &str) -> Self {
        Sources {
            client,
            ns: ns.to_string(),
            configmaps: HashMap::new(),
            secrets: HashMap::new(),
            service_env: None,
        }
    }

    /// upstream `getServiceEnvVarMap`: the variables of the services of the pod's namespace
    /// (with `enableServiceLinks`, the default) and of the `kubernetes` service, sorted by name.
    pub(crate) async fn service_env(&mut self, links: bool) -> Result<Vec<(String, String)>, String> {
        if let Some(v) = &self.service_env {
            return Ok(v.clone());
        }
        let mut services: BTreeMap<String, Service> = BTreeMap::new();
        if links {
            let api: Api<Service> = Api::namespaced(self.client.clone(), &self.ns);
            let list = api.list(&Default::default()).await.map_err(|e| e.to_string())?;
            services.extend(
                list.items
                    .into_iter()
                    .map(|s| (s.metadata.name.clone().unwrap_or_default(), s)),
            );
        }
        let default: Api<Service> = Api::namespaced(self.client.clone(), "default");
        if let Some(k) = default.get_opt("kubernetes").await.map_err(|e| e.to_string())? {
            services.entry("kubernetes".into()).or_insert(k);
        }
        let vars: Vec<(String, String)> = services.values().flat_map(service_vars).collect();
        self.service_env = Some(vars.clone());
        Ok(vars)
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
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    let service_env = src.service_env(links).await?;
    for e in c.env.iter().flatten() {
        let value = if let Some(v) = &e.value {
            let lookup: HashMap<&str, &str> = service_env
                .iter()
                .chain(vars.iter())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
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
    // Service variables come last and never replace the container's own.
    for (k, v) in service_env {
        if !vars.iter().any(|(n, _)| *n == k) {
            vars.push((k, v));
        }
    }
    Ok(Resolved {
        vars,
        invalid_names: invalid,
    })
}

/// upstream `envvars.FromServices`: `NAME_SERVICE_HOST`, `NAME_SERVICE_PORT[_PORTNAME]` and the
/// Docker link variables (`NAME_PORT`, `NAME_PORT_80_TCP`, `…_PROTO`, `…_PORT`, `…_ADDR`) of a
/// service with a ClusterIP.
fn service_vars(svc: &Service) -> Vec<(String, String)> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.as_deref().unwrap_or_default();
    if ip.is_empty() || ip == "None" {
        return Vec::new();
    }
    let var = |s: &str| s.replace('-', "_").to_uppercase();
    let prefix = var(svc.metadata.name.as_deref().unwrap_or_default());
    let ports = spec.ports.as_deref().unwrap_or_default();
    let mut out = vec![(format!("{prefix}_SERVICE_HOST"), ip.to_string())];
    if let Some(first) = ports.first() {
        out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
    }
    for p in ports {
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((format!("{prefix}_SERVICE_PORT_{}", var(name)), p.port.to_string()));
        }
    }
    let host_port = |port: i32| match ip.contains(':') {
        true => format!("[{ip}]:{port}"),
        false => format!("{ip}:{port}"),
    };
    for (i, p) in ports.iter().enumerate() {
        let proto = p.protocol.as_deref().unwrap_or("TCP");
        let url = format!("{}://{}", proto.to_lowercase(), host_port(p.port));
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let pp = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
        out.push((pp.clone(), url));
        out.push((format!("{pp}_PROTO"), proto.to_lowercase()));
        out.push((format!("{pp}_PORT"), p.port.to_string()));
        out.push((format!("{pp}_ADDR"), ip.to_string()));
    }
    out
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
        "status.hostIP" | "status.hostIPs" => node.node_ip.clone(),
        "status.podIP" | "status.podIPs" => node.pod_ip.clone().unwrap_or_else(|| node.node_ip.clone()),
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

    #[test]
    fn service_variables_are_upstreams() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "my-svc"},
            "spec": {"clusterIP": "10.43.0.12", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap();
        let got: BTreeMap<String, String> = service_vars(&svc).into_iter().collect();
        let want: BTreeMap<String, String> = [
            ("MY_SVC_SERVICE_HOST", "10.43.0.12"),
            ("MY_SVC_SERVICE_PORT", "80"),
            ("MY_SVC_SERVICE_PORT_HTTP", "80"),
            ("MY_SVC_SERVICE_PORT_DNS_UDP", "53"),
            ("MY_SVC_PORT", "tcp://10.43.0.12:80"),
            ("MY_SVC_PORT_80_TCP", "tcp://10.43.0.12:80"),
            ("MY_SVC_PORT_80_TCP_PROTO", "tcp"),
            ("MY_SVC_PORT_80_TCP_PORT", "80"),
            ("MY_SVC_PORT_80_TCP_ADDR", "10.43.0.12"),
            ("MY_SVC_PORT_53_UDP", "udp://10.43.0.12:53"),
            ("MY_SVC_PORT_53_UDP_PROTO", "udp"),
            ("MY_SVC_PORT_53_UDP_PORT", "53"),
            ("MY_SVC_PORT_53_UDP_ADDR", "10.43.0.12"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        let headless: Service =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}}))
                .unwrap();
        assert!(service_vars(&headless).is_empty());
    }
}
