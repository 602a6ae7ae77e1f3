//! Serving limits: timeouts, connection caps and in-flight request caps that keep
//! unauthenticated or misbehaving clients from exhausting the server. Defaults follow
//! kube-apiserver (Go's `http.Server` settings in its secure serving, `--max-requests-inflight`,
//! `--max-mutating-requests-inflight`).

use std::time::Duration;

/// Limits of the HTTPS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingLimits {
    /// A TLS handshake must complete within this (Go clients' `TLSHandshakeTimeout`, 10 s).
    pub tls_handshake_timeout: Duration,
    /// An HTTP/1 request head must arrive within this (kube-apiserver's `ReadHeaderTimeout`,
    /// 32 s). hyper also applies it while an HTTP/1 keep-alive connection waits for its next
    /// request, so idle HTTP/1 connections close after it.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress is closed after this (kube-apiserver's
    /// `IdleTimeout`, 90 s; HTTP/2 gets a GOAWAY).
    pub idle_timeout: Duration,
    /// A request body must be read completely within this (the request timeout, 60 s);
    /// otherwise 408.
    pub body_read_timeout: Duration,
    /// Most open connections in total; more are closed right after accept (0 = no cap).
    pub max_connections: usize,
    /// Most open connections from one source address (0 = no cap).
    pub max_connections_per_ip: usize,
    /// Most non-mutating requests (GET, HEAD) in progress, long-running ones excepted;
    /// beyond it 429 (0 = no cap).
    pub max_requests_inflight: usize,
    /// Most mutating requests in progress; beyond it 429 (0 = no cap).
    pub max_mutating_requests_inflight: usize,
}

impl Default for ServingLimits {
    fn default() -> Self {
        ServingLimits {
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(32),
            idle_timeout: Duration::from_secs(90),
            body_read_timeout: Duration::from_secs(60),
            // Well below common descriptor limits, far above what a cluster's clients open
            // (each kubectl or agent holds one HTTP/2 connection).
            max_connections: 4096,
            max_connections_per_ip: 1024,
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
        }
    }
}

/// Why a limits override could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("invalid serving limit {0:?}: expected name=value, e.g. max-requests-inflight=10 or idle-timeout=5s")]
pub struct ParseLimitError(String);

fn duration(v: &str) -> Option<Duration> {
    if let Some(ms) = v.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    v.strip_suffix('s').unwrap_or(v).parse().ok().map(Duration::from_secs)
}

impl ServingLimits {
    /// Applies comma-separated `name=value` overrides (names as the fields, with dashes;
    /// durations in `s` or `ms`), e.g. `idle-timeout=2s,max-requests-inflight=1`.
    pub fn with_overrides(mut self, spec: &str) -> Result<Self, ParseLimitError> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad = || ParseLimitError(item.to_string());
            let (k, v) = item.split_once('=').ok_or_else(bad)?;
            let n = || v.parse::<usize>().map_err(|_| bad());
            let d = || duration(v).ok_or_else(bad);
            match k {
                "tls-handshake-timeout" => self.tls_handshake_timeout = d()?,
                "header-read-timeout" => self.header_read_timeout = d()?,
                "idle-timeout" => self.idle_timeout = d()?,
                "body-read-timeout" => self.body_read_timeout = d()?,
                "max-connections" => self.max_connections = n()?,
                "max-connections-per-ip" => self.max_connections_per_ip = n()?,
                "max-requests-inflight" => self.max_requests_inflight = n()?,
                "max-mutating-requests-inflight" => self.max_mutating_requests_inflight = n()?,
                _ => return Err(bad()),
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let l = ServingLimits::default()
            .with_overrides("idle-timeout=2s, body-read-timeout=500ms,max-requests-inflight=1")
            .unwrap();
        assert_eq!(l.idle_timeout, Duration::from_secs(2));
        assert_eq!(l.body_read_timeout, Duration::from_millis(500));
        assert_eq!(l.max_requests_inflight, 1);
        assert_eq!(l.max_mutating_requests_inflight, 200);
        assert!(ServingLimits::default().with_overrides("nope=1").is_err());
        assert!(ServingLimits::default().with_overrides("idle-timeout=x").is_err());
        assert_eq!(
            ServingLimits::default().with_overrides("").unwrap(),
            ServingLimits::default()
        );
    }
}
