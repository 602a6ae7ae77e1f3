//! Which images exist: a small catalog of well-known official images (nginx, busybox) with
//! their real release tags, so simulated nodes fail to pull `nginx:1.9.21` as a real node does.
//! Repositories outside the catalog, and references by digest, are assumed to exist.

use std::time::Duration;

/// upstream: kubelet's image pull back-off starts at 10 s …
pub const PULL_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// … and doubles up to 5 minutes.
pub const PULL_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// An image reference split as containerd resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (`docker.io` when none is given).
    pub domain: String,
    /// Repository path (`library/nginx` for an official image).
    pub path: String,
    /// Tag (`latest` when neither tag nor digest is given).
    pub tag: Option<String>,
    /// Digest (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `nginx`, `nginx:1.9.1`, `bitnami/redis`, `quay.io/x/y:v1`, `busybox@sha256:…`.
    pub fn parse(image: &str) -> ImageRef {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (image, None),
        };
        let (name, tag) = match name.rsplit_once(':') {
            // A colon after the last slash is a tag; before it, a registry port.
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (name, None),
        };
        let first = name.split('/').next().unwrap_or("");
        let has_domain = name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
        let (domain, path) = if has_domain {
            let (d, p) = name.split_once('/').unwrap_or((name, ""));
            (d.to_string(), p.to_string())
        } else if name.contains('/') {
            ("docker.io".to_string(), name.to_string())
        } else {
            ("docker.io".to_string(), format!("library/{name}"))
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        ImageRef {
            domain,
            path,
            tag,
            digest,
        }
    }

    /// The fully qualified reference (`docker.io/library/nginx:1.9.21`).
    pub fn full(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

/// Release series of nginx on Docker Hub: (minor, highest patch).
const NGINX_SERIES: &[(u32, u32)] = &[
    (7, 12),
    (8, 1),
    (9, 15),
    (10, 3),
    (11, 13),
    (12, 2),
    (13, 12),
    (14, 2),
    (15, 12),
    (16, 1),
    (17, 10),
    (18, 0),
    (19, 10),
    (20, 2),
    (21, 6),
    (22, 1),
    (23, 4),
    (24, 0),
    (25, 5),
    (26, 3),
    (27, 5),
    (28, 0),
    (29, 1),
];
/// Variant suffixes of nginx tags (`1.25.3-alpine`) and the variant-only tags.
const NGINX_VARIANTS: &[&str] = &[
    "alpine",
    "perl",
    "alpine-perl",
    "alpine-slim",
    "bookworm",
    "bullseye",
    "bookworm-perl",
    "bullseye-perl",
    "otel",
    "alpine-otel",
    "bookworm-otel",
];
/// Release series of busybox on Docker Hub: (minor, highest patch).
const BUSYBOX_SERIES: &[(u32, u32)] = &[
    (21, 1),
    (22, 1),
    (23, 2),
    (24, 2),
    (25, 1),
    (26, 2),
    (27, 2),
    (28, 4),
    (29, 3),
    (30, 1),
    (31, 1),
    (32, 1),
    (33, 0),
    (34, 1),
    (35, 0),
    (36, 1),
    (37, 0),
];
const BUSYBOX_VARIANTS: &[&str] = &["glibc", "musl", "uclibc"];

/// Whether `1`, `1.M` or `1.M.P` names a release of a series table.
fn is_release(version: &str, series: &[(u32, u32)]) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    let num = |s: &str| s.parse::<u32>().ok().filter(|_| !s.starts_with('+'));
    match parts.as_slice() {
        ["1"] => true,
        ["1", minor] => num(minor).is_some_and(|m| series.iter().any(|(sm, _)| *sm == m)),
        ["1", minor, patch] => match (num(minor), num(patch)) {
            (Some(m), Some(p)) => series.iter().any(|(sm, max)| *sm == m && p <= *max),
            _ => false,
        },
        _ => false,
    }
}

/// Whether a tag of a catalogued repository exists: `latest`, a variant, a release, or a
/// release with a variant suffix.
fn tag_exists(tag: &str, series: &[(u32, u32)], variants: &[&str], named: &[&str]) -> bool {
    if tag == "latest" || named.contains(&tag) || variants.contains(&tag) {
        return true;
    }
    let (version, variant) = match tag.split_once('-') {
        Some((v, s)) => (v, Some(s)),
        None => (tag, None),
    };
    let version_ok = is_release(version, series) || named.contains(&version);
    version_ok && variant.is_none_or(|s| variants.contains(&s))
}

/// Whether the image can be pulled.
pub fn exists(image: &str) -> bool {
    let r = ImageRef::parse(image);
    if r.digest.is_some() || r.domain != "docker.io" {
        return true;
    }
    let tag = r.tag.as_deref().unwrap_or("latest");
    match r.path.as_str() {
        "library/nginx" => tag_exists(tag, NGINX_SERIES, NGINX_VARIANTS, &["mainline", "stable"]),
        "library/busybox" => tag_exists(tag, BUSYBOX_SERIES, BUSYBOX_VARIANTS, &["stable", "unstable"]),
        _ => true,
    }
}

/// containerd's error for an image that does not exist, as the container's waiting message
/// shows it.
pub fn not_found_message(image: &str) -> String {
    let full = ImageRef::parse(image).full();
    format!("failed to pull and unpack image {full:?}: failed to resolve reference {full:?}: {full}: not found")
}

/// upstream: kubelet's back-off before pull attempt `failures + 1` (10 s, 20 s, … 300 s).
pub fn pull_backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    PULL_BACKOFF_INITIAL.saturating_mul(1 << exp).min(PULL_BACKOFF_MAX)
}

/// An event kubelet records about a container's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEvent {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// upstream reason (`Pulling`, `Failed`, `BackOff`).
    pub reason: &'static str,
    /// What happened, distinct per message (events.k8s.io folds events of one action and
    /// reason into a series).
    pub action: &'static str,
    /// The message.
    pub message: String,
}

/// The events of one failed pull attempt of `image`, in kubelet's order.
pub fn failed_pull_events(image: &str) -> Vec<PullEvent> {
    vec![
        PullEvent {
            warning: false,
            reason: "Pulling",
            action: "Pulling",
            message: format!("Pulling image {image:?}"),
        },
        PullEvent {
            warning: true,
            reason: "Failed",
            action: "Pull",
            message: format!(
                "Failed to pull image {image:?}: rpc error: code = NotFound desc = {}",
                not_found_message(image)
            ),
        },
        PullEvent {
            warning: true,
            reason: "Failed",
            action: "ErrImagePull",
            message: "Error: ErrImagePull".into(),
        },
    ]
}

/// The events when kubelet backs off pulling `image`.
pub fn backoff_events(image: &str) -> Vec<PullEvent> {
    vec![
        PullEvent {
            warning: false,
            reason: "BackOff",
            action: "BackOff",
            message: backoff_message(image),
        },
        PullEvent {
            warning: true,
            reason: "Failed",
            action: "ImagePullBackOff",
            message: "Error: ImagePullBackOff".into(),
        },
    ]
}

/// The waiting message of a container in ImagePullBackOff.
pub fn backoff_message(image: &str) -> String {
    format!("Back-off pulling image {image:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_knows_real_tags() {
        let cases = [
            ("seed's first image", "nginx:1.7.9", true),
            ("seed's upgrade", "nginx:1.9.1", true),
            ("seed's bad tag", "nginx:1.9.21", false),
            ("last 1.9", "nginx:1.9.15", true),
            ("past 1.9", "nginx:1.9.16", false),
            ("series tag", "nginx:1.25", true),
            ("no such series", "nginx:1.99", false),
            ("bare", "nginx", true),
            ("latest", "nginx:latest", true),
            ("alpine", "nginx:alpine", true),
            ("stable", "nginx:stable", true),
            ("stable-alpine", "nginx:stable-alpine", true),
            ("version with variant", "nginx:1.25.3-alpine", true),
            ("unknown variant", "nginx:1.25.3-windows", false),
            ("nonsense", "nginx:banana", false),
            ("qualified", "docker.io/library/nginx:1.9.21", false),
            ("busybox", "busybox:1.36.1", true),
            ("busybox bad", "busybox:1.36.9", false),
            ("unknown repo", "luksa/kubia", true),
            ("other registry", "quay.io/fluentd_elasticsearch/fluentd:v2.5.2", true),
            ("digest", "nginx@sha256:abc", true),
            ("registry with port", "localhost:5000/nginx:nope", true),
        ];
        for (name, image, want) in cases {
            assert_eq!(exists(image), want, "{name}: {image}");
        }
    }

    #[test]
    fn messages_and_backoff_match_containerd_and_kubelet() {
        assert_eq!(
            not_found_message("nginx:1.9.21"),
            "failed to pull and unpack image \"docker.io/library/nginx:1.9.21\": failed to resolve reference \
             \"docker.io/library/nginx:1.9.21\": docker.io/library/nginx:1.9.21: not found"
        );
        let backoffs: Vec<u64> = (1..=7).map(|n| pull_backoff(n).as_secs()).collect();
        assert_eq!(backoffs, [10, 20, 40, 80, 160, 300, 300]);
        let ev = failed_pull_events("nginx:1.9.21");
        assert_eq!(ev[0].message, "Pulling image \"nginx:1.9.21\"");
        assert!(ev[1]
            .message
            .starts_with("Failed to pull image \"nginx:1.9.21\": rpc error: code = NotFound"));
        assert_eq!(
            backoff_events("nginx:1.9.21")[0].message,
            "Back-off pulling image \"nginx:1.9.21\""
        );
    }
}
