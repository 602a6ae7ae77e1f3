//! The cluster zone: the records each Service contributes, built by a pure function from the
//! Service and its EndpointSlices the way CoreDNS's kubernetes plugin serves them, and the
//! answer to one question.
//!
//! The zone is kept per Service so that a change recomputes one Service's records, not the
//! whole zone: at a few thousand Services with busy endpoints a full rebuild per event would
//! keep a core busy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_server::proto::rr::domain::Label;
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// TTL of every record, CoreDNS's kubernetes plugin default.
pub(crate) const TTL: u32 = 5;

/// SRV weight: CoreDNS gives every target of a name the same weight.
const SRV_WEIGHT: u16 = 100;

/// The label with which the EndpointSlice controller ties a slice to its Service.
pub(crate) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (namespace, name) of a Service.
pub(crate) type ServiceKey = (String, String);

/// The cluster domain as a lowercase, fully qualified name (`cluster.local.`).
pub(crate) fn origin(domain: &str) -> Option<Name> {
    let domain = domain.trim_end_matches('.');
    if domain.is_empty() {
        return None;
    }
    let mut name = Name::from_ascii(domain).ok()?.to_lowercase();
    name.set_fqdn(true);
    Some(name)
}

/// The names one Service owns and their records. A name with an empty list exists but has no
/// records, so it answers NOERROR with no data rather than NXDOMAIN.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct ServiceRecords {
    names: HashMap<LowerName, Vec<Record>>,
}

impl ServiceRecords {
    /// How many records the Service has.
    pub(crate) fn len(&self) -> usize {
        self.names.values().map(Vec::len).sum()
    }

    fn add(&mut self, name: &Name, data: Option<RData>) {
        let list = self.names.entry(LowerName::new(name)).or_default();
        if let Some(data) = data {
            list.push(Record::from_rdata(name.clone(), TTL, data));
        }
    }
}

/// `label.parent`, or `None` when `label` is not a valid DNS label. Kubernetes names and
/// port names are letters, digits and hyphens (SRV labels add a leading `_`); anything else,
/// such as a dot, which hickory would take escaped, is refused.
fn child(label: &str, parent: &Name) -> Option<Name> {
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if !label.bytes().all(valid) {
        return None;
    }
    let label = Label::from_ascii(&label.to_ascii_lowercase()).ok()?;
    parent.prepend_label(label).ok()
}

fn address(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// An address as one label, as CoreDNS names endpoints without a hostname and pods:
/// `10-1-2-3`, `fd00--1`.
fn dashed(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The address a dashed label stands for.
fn undashed(label: &str) -> Option<IpAddr> {
    if label.bytes().filter(|&b| b == b'-').count() == 3 {
        if let Ok(v4) = label.replace('-', ".").parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(v4));
        }
    }
    label.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// A port of a Service or an EndpointSlice: name, lowercase protocol, number.
type Port = (Option<String>, String, u16);

fn port(name: Option<&str>, protocol: Option<&str>, number: i32) -> Option<Port> {
    let name = name.filter(|n| !n.is_empty()).map(str::to_ascii_lowercase);
    let protocol = protocol.unwrap_or("TCP").to_ascii_lowercase();
    Some((name, protocol, u16::try_from(number).ok().filter(|&p| p != 0)?))
}

/// SRV records at the Service's name and, for a named port, at `_port._proto.<service>`
/// (with `_proto.<service>` existing as an empty name in between).
fn add_srv(out: &mut ServiceRecords, base: &Name, (name, protocol, number): &Port, target: Name) {
    let srv = RData::SRV(SRV::new(0, SRV_WEIGHT, *number, target));
    out.add(base, Some(srv.clone()));
    let Some(name) = name else { return };
    let Some(proto) = child(&format!("_{protocol}"), base) else {
        return;
    };
    let Some(named) = child(&format!("_{name}"), &proto) else {
        return;
    };
    out.add(&proto, None);
    out.add(&named, Some(srv));
}

/// The records of one Service under `origin`; `slices` are its EndpointSlices (only headless
/// Services read them). `None` when the Service's name cannot be a DNS name.
pub(crate) fn service_records(origin: &Name, svc: &Service, slices: &[Arc<EndpointSlice>]) -> Option<ServiceRecords> {
    let ns = svc.metadata.namespace.as_deref()?;
    let name = svc.metadata.name.as_deref()?;
    let base = child(name, &child(ns, &child("svc", origin)?)?)?;
    let mut out = ServiceRecords::default();
    out.add(&base, None);
    let Some(spec) = &svc.spec else {
        return Some(out);
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        // The target is not chased: the client's resolver follows the CNAME.
        let target = spec.external_name.as_deref().and_then(|t| {
            let mut n = Name::from_ascii(t.trim_end_matches('.')).ok()?;
            n.set_fqdn(true);
            Some(n)
        });
        if let Some(target) = target {
            out.add(&base, Some(RData::CNAME(CNAME(target))));
        }
    } else if spec.cluster_ip.as_deref() == Some("None") {
        headless(&mut out, &base, slices);
    } else {
        cluster_ip(&mut out, &base, spec);
    }
    Some(out)
}

/// A normal Service: its cluster IPs, and SRV records pointing at its own name.
fn cluster_ip(out: &mut ServiceRecords, base: &Name, spec: &ServiceSpec) {
    let ips: Vec<IpAddr> = match &spec.cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
        _ => spec.cluster_ip.iter().filter_map(|ip| ip.parse().ok()).collect(),
    };
    // No address yet (not allocated): SRV records would point at a name without one.
    if ips.is_empty() {
        return;
    }
    for ip in ips {
        out.add(base, Some(address(ip)));
    }
    let ports = spec.ports.iter().flatten();
    for p in ports.filter_map(|p| port(p.name.as_deref(), p.protocol.as_deref(), p.port)) {
        add_srv(out, base, &p, base.clone());
    }
}

/// A headless Service: the addresses of its ready endpoints, a name per endpoint (its
/// hostname, or its dashed address), and SRV records pointing at those names with the
/// slice's ports.
fn headless(out: &mut ServiceRecords, base: &Name, slices: &[Arc<EndpointSlice>]) {
    // Collected into ordered sets first: one endpoint often shows in two slices while the
    // controller moves it, and the records come out in a stable order.
    let mut addrs = BTreeSet::new();
    let mut hosts: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut srvs: BTreeSet<(Port, String)> = BTreeSet::new();
    for slice in slices {
        if slice.address_type == "FQDN" {
            continue;
        }
        let ports: Vec<Port> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| port(p.name.as_deref(), p.protocol.as_deref(), p.port?))
            .collect();
        for ep in &slice.endpoints {
            // An unknown readiness counts as ready, as for kube-proxy and CoreDNS.
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for ip in ep.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
                let host = match ep.hostname.as_deref() {
                    Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
                    _ => dashed(ip),
                };
                addrs.insert(ip);
                for p in &ports {
                    srvs.insert((p.clone(), host.clone()));
                }
                hosts.entry(host).or_default().insert(ip);
            }
        }
    }
    for ip in addrs {
        out.add(base, Some(address(ip)));
    }
    for (host, ips) in &hosts {
        let Some(name) = child(host, base) else { continue };
        for ip in ips {
            out.add(&name, Some(address(*ip)));
        }
    }
    for (p, host) in &srvs {
        if let Some(target) = child(host, base) {
            add_srv(out, base, p, target);
        }
    }
}

/// What the zone says to one question.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    /// The name is not in the cluster domain: forward it.
    Outside,
    /// Records for the answer section, and the addresses of SRV targets for the additional one.
    Found {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// The name exists without records of the asked type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// The cluster zone.
pub(crate) struct Zone {
    origin: Name,
    lower: LowerName,
    /// `ns.dns.<domain>`, the zone's name server.
    ns_name: Name,
    /// Addresses of the name server (the non-wildcard listen addresses).
    ns_addrs: Vec<IpAddr>,
    serial: u32,
    services: HashMap<ServiceKey, Arc<ServiceRecords>>,
    /// Services per namespace: `<ns>.svc.<domain>` exists while the namespace has one.
    namespaces: HashMap<String, usize>,
}

impl Zone {
    /// An empty zone for `origin`, whose name server answers at `ns_addrs`.
    pub(crate) fn new(origin: Name, ns_addrs: Vec<IpAddr>) -> Zone {
        let ns_name = Name::from_labels(["ns", "dns"])
            .and_then(|n| n.append_domain(&origin))
            .unwrap_or_else(|_| origin.clone());
        Zone {
            lower: LowerName::new(&origin),
            origin,
            ns_name,
            ns_addrs,
            serial: now_serial(0),
            services: HashMap::new(),
            namespaces: HashMap::new(),
        }
    }

    /// The cluster domain.
    pub(crate) fn origin(&self) -> &Name {
        &self.origin
    }

    /// How many Services have records.
    pub(crate) fn services(&self) -> usize {
        self.services.len()
    }

    /// How many records the zone holds.
    pub(crate) fn records(&self) -> usize {
        self.services.values().map(|s| s.len()).sum()
    }

    /// The zone's SOA record, for answers and for the authority section of negative answers.
    pub(crate) fn soa(&self) -> Record {
        let rname = child("hostmaster", &self.origin).unwrap_or_else(|| self.origin.clone());
        let soa = SOA::new(self.ns_name.clone(), rname, self.serial, 7200, 1800, 86400, TTL);
        Record::from_rdata(self.origin.clone(), TTL, RData::SOA(soa))
    }

    fn ns(&self) -> Record {
        Record::from_rdata(self.origin.clone(), TTL, RData::NS(NS(self.ns_name.clone())))
    }

    /// Sets (or with `None` removes) one Service's records; true when the zone changed.
    pub(crate) fn set(&mut self, key: ServiceKey, records: Option<ServiceRecords>) -> bool {
        let changed = match records {
            Some(records) => {
                let ns = key.0.clone();
                let records = Arc::new(records);
                match self.services.insert(key, records.clone()) {
                    None => {
                        *self.namespaces.entry(ns).or_default() += 1;
                        true
                    }
                    // Compared only to keep the serial when nothing changed.
                    Some(old) => *old != *records,
                }
            }
            None => match self.services.remove(&key) {
                None => false,
                Some(_) => {
                    self.forget_namespace(&key.0);
                    true
                }
            },
        };
        if changed {
            self.serial = now_serial(self.serial);
        }
        changed
    }

    fn forget_namespace(&mut self, ns: &str) {
        if let Some(n) = self.namespaces.get_mut(ns) {
            *n -= 1;
            if *n == 0 {
                self.namespaces.remove(ns);
            }
        }
    }

    /// Replaces every Service's records at once, after a (re)list.
    pub(crate) fn replace(&mut self, all: HashMap<ServiceKey, ServiceRecords>) {
        self.namespaces.clear();
        for (ns, _) in all.keys() {
            *self.namespaces.entry(ns.clone()).or_default() += 1;
        }
        self.services = all.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        self.serial = now_serial(self.serial);
    }

    /// The answer to `name`/`qtype`. Names arrive lowercased (`LowerName`), so matching is
    /// case-insensitive.
    pub(crate) fn lookup(&self, name: &LowerName, qtype: RecordType) -> Answer {
        if !self.lower.zone_of(name) {
            return Answer::Outside;
        }
        let labels: Vec<&[u8]> = name.iter().collect();
        let rel = &labels[..labels.len() - self.lower.num_labels() as usize];
        match rel.split_last() {
            None => self.apex(qtype),
            Some((last, rest)) if *last == b"svc" => self.service(name, rest, qtype),
            Some((last, rest)) if *last == b"pod" => pod(rest, name, qtype),
            Some((last, rest)) if *last == b"dns" => self.name_server(rest, qtype),
            Some(_) => Answer::NxDomain,
        }
    }

    fn apex(&self, qtype: RecordType) -> Answer {
        let answers = match qtype {
            RecordType::SOA => vec![self.soa()],
            RecordType::NS => vec![self.ns()],
            RecordType::ANY => vec![self.soa(), self.ns()],
            _ => return Answer::NoData,
        };
        found(answers)
    }

    /// `dns.<domain>` (empty) and `ns.dns.<domain>`, the name server the SOA and NS name.
    fn name_server(&self, rest: &[&[u8]], qtype: RecordType) -> Answer {
        match rest {
            [] => Answer::NoData,
            [ns] if *ns == b"ns" => {
                let name = &self.ns_name;
                let answers = self
                    .ns_addrs
                    .iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, address(*ip)))
                    .collect();
                select(answers, qtype, None)
            }
            _ => Answer::NxDomain,
        }
    }

    /// Names under `svc.<domain>`; `rest` are the labels before `svc`.
    fn service(&self, name: &LowerName, rest: &[&[u8]], qtype: RecordType) -> Answer {
        let text = |l: &[u8]| String::from_utf8_lossy(l).into_owned();
        match rest {
            [] => Answer::NoData,
            [ns] if self.namespaces.contains_key(&text(ns)) => Answer::NoData,
            [_] => Answer::NxDomain,
            [.., svc, ns] => {
                let Some(records) = self.services.get(&(text(ns), text(svc))) else {
                    return Answer::NxDomain;
                };
                match records.names.get(name) {
                    Some(list) => select(list.clone(), qtype, Some(records)),
                    None => Answer::NxDomain,
                }
            }
        }
    }
}

fn found(answers: Vec<Record>) -> Answer {
    Answer::Found {
        answers,
        additionals: Vec::new(),
    }
}

/// The records of one name that answer `qtype`: those of the type, or the name's CNAME. SRV
/// answers carry their targets' addresses (found in the same Service) as additionals.
fn select(list: Vec<Record>, qtype: RecordType, svc: Option<&ServiceRecords>) -> Answer {
    if list.is_empty() {
        return Answer::NoData;
    }
    let answers: Vec<Record> = if qtype == RecordType::ANY {
        list
    } else if list.iter().any(|r| r.record_type() == qtype) {
        list.into_iter().filter(|r| r.record_type() == qtype).collect()
    } else {
        list.into_iter()
            .filter(|r| r.record_type() == RecordType::CNAME)
            .collect()
    };
    if answers.is_empty() {
        return Answer::NoData;
    }
    let mut additionals = Vec::new();
    if let Some(svc) = svc {
        let mut seen = BTreeSet::new();
        for r in &answers {
            let RData::SRV(srv) = &r.data else { continue };
            let target = LowerName::new(&srv.target);
            if seen.insert(target.clone()) {
                let addresses = svc.names.get(&target).into_iter().flatten();
                additionals.extend(
                    addresses
                        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
                        .cloned(),
                );
            }
        }
    }
    Answer::Found { answers, additionals }
}

/// Names under `pod.<domain>` (CoreDNS's "pods insecure"): `<dashed ip>.<ns>.pod.<domain>`
/// answers that address for any namespace, without looking the pod up.
fn pod(rest: &[&[u8]], name: &LowerName, qtype: RecordType) -> Answer {
    match rest {
        [] | [_] => Answer::NoData,
        [ip, _ns] => {
            let Some(ip) = std::str::from_utf8(ip).ok().and_then(undashed) else {
                return Answer::NxDomain;
            };
            let record = Record::from_rdata(Name::from(name), TTL, address(ip));
            select(vec![record], qtype, None)
        }
        _ => Answer::NxDomain,
    }
}

/// A serial that grows with each change: the Unix time, as CoreDNS uses, or one more than
/// the last when changes come faster than seconds.
fn now_serial(last: u32) -> u32 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    now.max(last.wrapping_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn origin() -> Name {
        super::origin("Cluster.Local").expect("valid domain")
    }

    fn service(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("valid Service")
    }

    fn slice(v: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(serde_json::from_value(v).expect("valid EndpointSlice"))
    }

    fn lower(name: &str) -> LowerName {
        LowerName::new(&Name::from_ascii(name).expect("valid name"))
    }

    /// The answer section's data as text, sorted.
    fn data(answer: &Answer) -> Vec<String> {
        let Answer::Found { answers, .. } = answer else {
            return Vec::new();
        };
        let mut v: Vec<String> = answers.iter().map(|r| r.data.to_string()).collect();
        v.sort();
        v
    }

    fn zone_with(services: &[(Service, Vec<Arc<EndpointSlice>>)]) -> Zone {
        let mut zone = Zone::new(origin(), vec!["10.43.0.10".parse().expect("ip")]);
        for (svc, slices) in services {
            let key = key(svc);
            let records = service_records(zone.origin(), svc, slices);
            zone.set(key, records);
        }
        zone
    }

    fn key(svc: &Service) -> ServiceKey {
        (
            svc.metadata.namespace.clone().expect("namespace"),
            svc.metadata.name.clone().expect("name"),
        )
    }

    fn web() -> Service {
        service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                               {"port": 9090, "protocol": "UDP"}]}
        }))
    }

    fn nginx() -> (Service, Vec<Arc<EndpointSlice>>) {
        let svc = service(json!({
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}
        }));
        let slices = vec![
            slice(json!({
                "metadata": {"name": "nginx-a", "namespace": "default",
                             "labels": {SERVICE_NAME_LABEL: "nginx"}},
                "addressType": "IPv4",
                "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "hostname": "web-0", "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.6"], "conditions": {}},
                    {"addresses": ["10.42.0.7"], "hostname": "web-2", "conditions": {"ready": false}},
                ]
            })),
            // The same endpoint again, as while the controller moves it between slices.
            slice(json!({
                "metadata": {"name": "nginx-b", "namespace": "default",
                             "labels": {SERVICE_NAME_LABEL: "nginx"}},
                "addressType": "IPv4",
                "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.42.0.5"], "hostname": "web-0"}]
            })),
        ];
        (svc, slices)
    }

    #[test]
    fn cluster_ip_service_answers_its_address_and_srv() {
        let zone = zone_with(&[(web(), vec![])]);
        let a = zone.lookup(&lower("web.default.svc.cluster.local."), RecordType::A);
        assert_eq!(data(&a), ["10.43.0.20"]);
        // Case does not matter.
        let a = zone.lookup(&lower("WEB.Default.SVC.cluster.LOCAL."), RecordType::A);
        assert_eq!(data(&a), ["10.43.0.20"]);
        // An IPv4 service has no AAAA: the name exists without data.
        let aaaa = zone.lookup(&lower("web.default.svc.cluster.local."), RecordType::AAAA);
        assert_eq!(aaaa, Answer::NoData);

        let srv = zone.lookup(&lower("_http._tcp.web.default.svc.cluster.local."), RecordType::SRV);
        assert_eq!(data(&srv), ["0 100 80 web.default.svc.cluster.local."]);
        let Answer::Found { additionals, .. } = &srv else {
            panic!("{srv:?}")
        };
        assert_eq!(additionals.len(), 1, "the target's address rides along");
        // The unnamed UDP port has no port name, but shows in the service's own SRV set.
        let all = zone.lookup(&lower("web.default.svc.cluster.local."), RecordType::SRV);
        assert_eq!(
            data(&all),
            [
                "0 100 80 web.default.svc.cluster.local.",
                "0 100 9090 web.default.svc.cluster.local."
            ]
        );
        // Wrong protocol or port name: no such name.
        for n in [
            "_http._udp.web.default.svc.cluster.local.",
            "_grpc._tcp.web.default.svc.cluster.local.",
        ] {
            assert_eq!(zone.lookup(&lower(n), RecordType::SRV), Answer::NxDomain, "{n}");
        }
        assert_eq!(
            zone.lookup(&lower("_tcp.web.default.svc.cluster.local."), RecordType::SRV),
            Answer::NoData
        );
    }

    #[test]
    fn dual_stack_service_answers_both_families() {
        let svc = service(json!({
            "metadata": {"name": "ds", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.30", "clusterIPs": ["10.43.0.30", "fd00::30"]}
        }));
        let zone = zone_with(&[(svc, vec![])]);
        let name = lower("ds.default.svc.cluster.local.");
        assert_eq!(data(&zone.lookup(&name, RecordType::A)), ["10.43.0.30"]);
        assert_eq!(data(&zone.lookup(&name, RecordType::AAAA)), ["fd00::30"]);
    }

    #[test]
    fn headless_service_answers_ready_endpoints_and_their_names() {
        let zone = zone_with(&[nginx()]);
        let a = zone.lookup(&lower("nginx.default.svc.cluster.local."), RecordType::A);
        assert_eq!(data(&a), ["10.42.0.5", "10.42.0.6"], "ready ones, once each");
        let a = zone.lookup(&lower("web-0.nginx.default.svc.cluster.local."), RecordType::A);
        assert_eq!(data(&a), ["10.42.0.5"]);
        // Without a hostname the endpoint is named by its dashed address.
        let a = zone.lookup(&lower("10-42-0-6.nginx.default.svc.cluster.local."), RecordType::A);
        assert_eq!(data(&a), ["10.42.0.6"]);
        // A not-ready endpoint has no name.
        let a = zone.lookup(&lower("web-2.nginx.default.svc.cluster.local."), RecordType::A);
        assert_eq!(a, Answer::NxDomain);

        let srv = zone.lookup(&lower("_web._tcp.nginx.default.svc.cluster.local."), RecordType::SRV);
        assert_eq!(
            data(&srv),
            [
                "0 100 8080 10-42-0-6.nginx.default.svc.cluster.local.",
                "0 100 8080 web-0.nginx.default.svc.cluster.local."
            ]
        );
        let Answer::Found { additionals, .. } = &srv else {
            panic!("{srv:?}")
        };
        let mut adds: Vec<String> = additionals.iter().map(|r| format!("{} {}", r.name, r.data)).collect();
        adds.sort();
        assert_eq!(
            adds,
            [
                "10-42-0-6.nginx.default.svc.cluster.local. 10.42.0.6",
                "web-0.nginx.default.svc.cluster.local. 10.42.0.5"
            ]
        );
    }

    #[test]
    fn headless_service_without_endpoints_exists_without_data() {
        let (svc, _) = nginx();
        let zone = zone_with(&[(svc, vec![])]);
        let a = zone.lookup(&lower("nginx.default.svc.cluster.local."), RecordType::A);
        assert_eq!(a, Answer::NoData);
    }

    #[test]
    fn external_name_is_a_cname_for_any_type() {
        let svc = service(json!({
            "metadata": {"name": "db", "namespace": "prod"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com"}
        }));
        let zone = zone_with(&[(svc, vec![])]);
        for t in [RecordType::A, RecordType::AAAA, RecordType::CNAME, RecordType::SRV] {
            let answer = zone.lookup(&lower("db.prod.svc.cluster.local."), t);
            assert_eq!(data(&answer), ["db.example.com."], "{t}");
        }
    }

    #[test]
    fn pods_answer_their_dashed_address_in_any_namespace() {
        let zone = zone_with(&[]);
        let a = zone.lookup(&lower("10-42-1-7.anything.pod.cluster.local."), RecordType::A);
        assert_eq!(data(&a), ["10.42.1.7"]);
        let a = zone.lookup(&lower("fd00--7.default.pod.cluster.local."), RecordType::AAAA);
        assert_eq!(data(&a), ["fd00::7"]);
        let aaaa = zone.lookup(&lower("10-42-1-7.default.pod.cluster.local."), RecordType::AAAA);
        assert_eq!(aaaa, Answer::NoData);
        let bad = zone.lookup(&lower("not-an-ip.default.pod.cluster.local."), RecordType::A);
        assert_eq!(bad, Answer::NxDomain);
        let ns = zone.lookup(&lower("default.pod.cluster.local."), RecordType::A);
        assert_eq!(ns, Answer::NoData);
    }

    #[test]
    fn apex_structure_and_unknown_names() {
        let zone = zone_with(&[(web(), vec![])]);
        let soa = zone.lookup(&lower("cluster.local."), RecordType::SOA);
        let soa = data(&soa);
        assert_eq!(soa.len(), 1);
        assert!(
            soa[0].starts_with("ns.dns.cluster.local. hostmaster.cluster.local. "),
            "{soa:?}"
        );
        let ns = zone.lookup(&lower("cluster.local."), RecordType::NS);
        assert_eq!(data(&ns), ["ns.dns.cluster.local."]);
        let glue = zone.lookup(&lower("ns.dns.cluster.local."), RecordType::A);
        assert_eq!(data(&glue), ["10.43.0.10"]);
        assert_eq!(zone.lookup(&lower("cluster.local."), RecordType::A), Answer::NoData);
        // Names with something below them exist; the rest does not.
        assert_eq!(zone.lookup(&lower("svc.cluster.local."), RecordType::A), Answer::NoData);
        assert_eq!(
            zone.lookup(&lower("default.svc.cluster.local."), RecordType::A),
            Answer::NoData
        );
        for n in [
            "other.svc.cluster.local.",
            "nope.default.svc.cluster.local.",
            "x.web.default.svc.cluster.local.",
            "foo.cluster.local.",
        ] {
            assert_eq!(zone.lookup(&lower(n), RecordType::A), Answer::NxDomain, "{n}");
        }
        assert_eq!(zone.lookup(&lower("example.com."), RecordType::A), Answer::Outside);
        assert_eq!(
            zone.lookup(&lower("cluster.local.example."), RecordType::A),
            Answer::Outside
        );
    }

    #[test]
    fn set_and_remove_follow_services_and_namespaces() {
        let mut zone = zone_with(&[(web(), vec![])]);
        let serial = zone.soa().to_string();
        // The same records again change nothing.
        let records = service_records(zone.origin(), &web(), &[]);
        assert!(!zone.set(key(&web()), records));
        assert_eq!(zone.soa().to_string(), serial);
        assert!(zone.set(key(&web()), None));
        assert_ne!(zone.soa().to_string(), serial, "serial moves on a change");
        assert_eq!(
            zone.lookup(&lower("web.default.svc.cluster.local."), RecordType::A),
            Answer::NxDomain
        );
        assert_eq!(
            zone.lookup(&lower("default.svc.cluster.local."), RecordType::A),
            Answer::NxDomain,
            "the namespace has no Service left"
        );
    }

    #[test]
    fn invalid_names_are_skipped() {
        assert!(super::origin("").is_none());
        assert!(super::origin("bad..domain").is_none());
        let svc = service(json!({
            "metadata": {"name": "has.dot", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.9"}
        }));
        assert_eq!(service_records(&origin(), &svc, &[]), None);
    }
}
