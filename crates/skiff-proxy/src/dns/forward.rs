//! Upstream resolvers for every name outside the cluster domain.
//!
//! Forwarding uses hickory's `ForwardZoneHandler` (feature `resolver`) in a `Catalog` of its
//! own: it retries over TCP when an answer is truncated, fails over between upstreams and
//! caches answers, which a hand-written UDP relay would not, for a few small crates (moka,
//! resolv-conf).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::proto::rr::{LowerName, Name};
use hickory_server::resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_server::store::forwarder::{ForwardConfig, ForwardZoneHandler};
use hickory_server::zone_handler::Catalog;

use super::Error;

/// How long one upstream gets to answer before the next try.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The `nameserver` entries of a resolv.conf, on port 53.
pub(crate) fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            // A zone index (`fe80::1%eth0`) cannot be kept in a SocketAddr; dropped.
            let ip = words.next()?.split('%').next()?;
            Some(SocketAddr::new(ip.parse().ok()?, 53))
        })
        .collect()
}

/// The host's resolvers, from /etc/resolv.conf; none when it cannot be read.
pub(crate) fn system_upstreams() -> Vec<SocketAddr> {
    match std::fs::read_to_string("/etc/resolv.conf") {
        Ok(text) => resolv_conf_nameservers(&text),
        Err(e) => {
            tracing::warn!(error = %e, "cluster DNS: cannot read /etc/resolv.conf");
            Vec::new()
        }
    }
}

/// `upstream` without this server's own addresses: a resolv.conf naming the address the
/// cluster DNS listens on would send every forwarded question back to itself.
pub(crate) fn without_self(upstream: Vec<SocketAddr>, own: &[SocketAddr]) -> Vec<SocketAddr> {
    upstream
        .into_iter()
        .filter(|u| {
            let loops = own.iter().any(|o| {
                o == u
                    || (o.port() == u.port()
                        && o.ip().is_unspecified()
                        && (u.ip().is_loopback() || u.ip().is_unspecified()))
            });
            if loops {
                tracing::warn!(upstream = %u, "cluster DNS: not forwarding to its own address");
            }
            !loops
        })
        .collect()
}

/// A catalog that forwards every name to `upstream`; `None` without upstreams.
pub(crate) fn catalog(upstream: &[SocketAddr]) -> Result<Option<Catalog>, Error> {
    if upstream.is_empty() {
        return Ok(None);
    }
    let name_servers = upstream
        .iter()
        .map(|a| {
            let mut udp = ConnectionConfig::udp();
            udp.port = a.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = a.port();
            NameServerConfig::new(a.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.timeout = UPSTREAM_TIMEOUT;
    let handler = ForwardZoneHandler::builder_tokio(ForwardConfig {
        name_servers,
        options: Some(options),
    })
    .build()
    .map_err(Error::Forwarder)?;
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::new(&Name::root()), vec![Arc::new(handler)]);
    Ok(Some(catalog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    #[test]
    fn reads_nameservers_from_resolv_conf() {
        let text = "# generated\nsearch example.com\nnameserver 10.0.0.2\n  nameserver   fe80::1%eth0 \n\
                    nameserver bogus\noptions ndots:5\n;nameserver 10.9.9.9\nnameserver 127.0.0.53 # local\n";
        assert_eq!(
            resolv_conf_nameservers(text),
            [addr("10.0.0.2:53"), addr("[fe80::1]:53"), addr("127.0.0.53:53")]
        );
    }

    #[test]
    fn never_forwards_to_itself() {
        let upstream = vec![addr("127.0.0.1:53"), addr("127.0.0.53:53"), addr("10.0.0.2:53")];
        assert_eq!(
            without_self(upstream.clone(), &[addr("127.0.0.1:53")]),
            [addr("127.0.0.53:53"), addr("10.0.0.2:53")]
        );
        // A wildcard listener on port 53 also receives what goes to any loopback address.
        assert_eq!(
            without_self(upstream.clone(), &[addr("0.0.0.0:53")]),
            [addr("10.0.0.2:53")]
        );
        assert_eq!(without_self(upstream.clone(), &[addr("0.0.0.0:5353")]), upstream);
    }
}
