//! Rows for Service, Ingress, Endpoints and EndpointSlice.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::duration::{parse_time, since};
use super::json::{arr, at, format_labels, int, opt_s, s};

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(parse_time(opt_s(obj, "metadata.creationTimestamp")), now))
}

/// Upstream `loadBalancerStatusStringer` with `wide` (the server always prints wide): sorted,
/// de-duplicated ingress IPs or hostnames.
fn load_balancer(status: Option<&Value>) -> String {
    let set: BTreeSet<&str> = status
        .map(|s| arr(s, "ingress"))
        .unwrap_or(&[])
        .iter()
        .filter_map(|i| opt_s(i, "ip").or_else(|| opt_s(i, "hostname")))
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn external_ip(svc: &Value) -> String {
    let external: Vec<&str> = arr(svc, "spec.externalIPs").iter().filter_map(Value::as_str).collect();
    match s(svc, "spec.type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".into()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer(at(svc, "status.loadBalancer"));
            if !external.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    Vec::new()
                } else {
                    lb.split(',').collect()
                };
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".into()
            } else {
                lb
            }
        }
        "ExternalName" => s(svc, "spec.externalName").to_string(),
        _ => "<unknown>".into(),
    }
}

fn ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr(svc, "spec.ports")
        .iter()
        .map(|p| {
            let proto = opt_s(p, "protocol").unwrap_or("TCP");
            let node_port = int(p, "nodePort");
            if node_port > 0 {
                format!("{}:{}/{}", int(p, "port"), node_port, proto)
            } else {
                format!("{}/{}", int(p, "port"), proto)
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".into()
    } else {
        pieces.join(",")
    }
}

pub(crate) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    let cluster_ip = arr(svc, "spec.clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_s(svc, "spec.clusterIP"))
        .unwrap_or("<none>");
    vec![
        json!(s(svc, "metadata.name")),
        json!(s(svc, "spec.type")),
        json!(cluster_ip),
        json!(external_ip(svc)),
        json!(ports(svc)),
        age(svc, now),
        json!(format_labels(at(svc, "spec.selector"))),
    ]
}

fn ingress_hosts(ing: &Value) -> String {
    let rules = arr(ing, "spec.rules");
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == max {
            more = true;
        }
        if !more {
            if let Some(h) = opt_s(r, "host") {
                list.push(h);
            }
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - max)
    } else {
        ret
    }
}

pub(crate) fn ingress(ing: &Value, now: Timestamp) -> Vec<Value> {
    let ports = if arr(ing, "spec.tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(s(ing, "metadata.name")),
        json!(opt_s(ing, "spec.ingressClassName").unwrap_or("<none>")),
        json!(ingress_hosts(ing)),
        json!(load_balancer(at(ing, "status.loadBalancer"))),
        json!(ports),
        age(ing, now),
    ]
}

/// Go's `net.JoinHostPort`: brackets around IPv6 addresses.
fn join_host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, "subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = arr(ss, "addresses");
        let ports = arr(ss, "ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, "ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(join_host_port(s(a, "ip"), int(p, "port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

pub(crate) fn endpoints(ep: &Value, now: Timestamp) -> Vec<Value> {
    vec![json!(s(ep, "metadata.name")), json!(format_endpoints(ep)), age(ep, now)]
}

/// Upstream `listWithMoreString`.
fn list_with_more(list: Vec<String>, more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

pub(crate) fn endpoint_slice(es: &Value, now: Timestamp) -> Vec<Value> {
    let max = 3;
    let (mut ports, mut more, mut count) = (Vec::new(), false, 0);
    for p in arr(es, "ports") {
        if ports.len() < max {
            let num = match at(p, "port").and_then(Value::as_i64) {
                Some(n) => n.to_string(),
                None => at(p, "name").and_then(Value::as_str).unwrap_or("*").to_string(),
            };
            ports.push(num);
        } else if ports.len() == max {
            more = true;
        }
        count += 1;
    }
    let ports = list_with_more(ports, more, count, max);
    let (mut addrs, mut more, mut count) = (Vec::new(), false, 0);
    for e in arr(es, "endpoints") {
        for a in arr(e, "addresses") {
            if addrs.len() < max {
                addrs.push(a.as_str().unwrap_or("").to_string());
            } else if addrs.len() == max {
                more = true;
            }
            count += 1;
        }
    }
    vec![
        json!(s(es, "metadata.name")),
        json!(s(es, "addressType")),
        json!(ports),
        json!(list_with_more(addrs, more, count, max)),
        age(es, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_external_ip_and_ports() {
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "cluster ip",
                json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP"}]}}),
                "<none>",
                "80/TCP",
            ),
            (
                "node port",
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31190, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}),
                "<none>",
                "80:31190/TCP,53/UDP",
            ),
            (
                "external ips",
                json!({"spec": {"type": "ClusterIP", "externalIPs": ["1.2.3.4", "5.6.7.8"]}}),
                "1.2.3.4,5.6.7.8",
                "<none>",
            ),
            (
                "lb pending",
                json!({"spec": {"type": "LoadBalancer"}}),
                "<pending>",
                "<none>",
            ),
            (
                "lb ingress",
                json!({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}, {"hostname": "a.example.com"}, {"ip": "9.9.9.9"}]}}}),
                "9.9.9.9,a.example.com",
                "<none>",
            ),
            (
                "lb plus external",
                json!({"spec": {"type": "LoadBalancer", "externalIPs": ["1.1.1.1"]}, "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}}),
                "9.9.9.9,1.1.1.1",
                "<none>",
            ),
            (
                "external name",
                json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
                "db.example.com",
                "<none>",
            ),
        ];
        let now: Timestamp = "2024-05-01T12:00:00Z".parse().unwrap();
        for (name, svc, ext, ports) in cases {
            let row = service(&svc, now);
            assert_eq!(row[3], json!(ext), "{name}");
            assert_eq!(row[4], json!(ports), "{name}");
        }
    }

    #[test]
    fn endpoints_list_is_cut_at_three() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]},
                                    {"addresses": [{"ip": "fd00::1"}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 2 more..."
        );
        assert_eq!(format_endpoints(&json!({})), "<none>");
        let ep6 = json!({"subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
        assert_eq!(format_endpoints(&ep6), "[fd00::1]:80");
    }
}
