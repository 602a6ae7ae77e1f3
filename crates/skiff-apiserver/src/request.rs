//! Parsing a resource URL and its query into what the handlers need.

use serde::Deserialize;
use skiff_api::registry::{self, ResourceDef};

use crate::errors::{ApiError, ApiResult};

/// The resource a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub def: &'static ResourceDef,
    /// Namespace from the URL (`None` for cluster-scoped kinds and all-namespace lists).
    pub namespace: Option<String>,
    /// Object name, if the URL names one.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `binding`, ...).
    pub sub: Option<String>,
}

/// Query parameters of resource requests; unknown ones are ignored as upstream does.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Query {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit`.
    pub limit: Option<String>,
    /// `continue`.
    #[serde(rename = "continue")]
    pub continue_: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch` (lists): Exact or NotOlderThan.
    pub resource_version_match: Option<String>,
    /// `watch`.
    pub watch: Option<String>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: Option<String>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<String>,
    /// `includeObject` (Table requests).
    pub include_object: Option<String>,
    /// `fieldValidation`: Strict, Warn or Ignore.
    pub field_validation: Option<String>,
    /// `fieldManager`.
    pub field_manager: Option<String>,
    /// `dryRun`.
    pub dry_run: Option<String>,
    /// `force` (server-side apply).
    pub force: Option<String>,
    /// `propagationPolicy` given as a query parameter.
    pub propagation_policy: Option<String>,
    /// `gracePeriodSeconds` given as a query parameter.
    pub grace_period_seconds: Option<String>,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<String>,
}

fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("true") | Some("1") | Some("True"))
}

impl Query {
    /// Parses a raw query string (form encoding: `+` is a space).
    pub fn parse(raw: Option<&str>) -> ApiResult<Query> {
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }

    /// Whether this is a watch request.
    pub fn is_watch(&self) -> bool {
        truthy(&self.watch)
    }

    /// Whether bookmarks were asked for.
    pub fn bookmarks(&self) -> bool {
        truthy(&self.allow_watch_bookmarks)
    }

    /// Whether this is a dry run.
    pub fn is_dry_run(&self) -> bool {
        self.dry_run.as_deref().is_some_and(|d| !d.is_empty())
    }

    /// `timeoutSeconds` as upstream's ListOptions decoding reads it: any value given must be a
    /// decimal integer, else 400 with Go's `strconv.ParseInt` message.
    pub fn timeout_seconds(&self) -> ApiResult<Option<i64>> {
        let Some(s) = self.timeout_seconds.as_deref() else {
            return Ok(None);
        };
        s.parse::<i64>().map(Some).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => "value out of range",
                _ => "invalid syntax",
            };
            ApiError::bad_request(format!("strconv.ParseInt: parsing {s:?}: {why}"))
        })
    }

    /// `limit` as a number (0 = none).
    pub fn limit(&self) -> ApiResult<usize> {
        match self.limit.as_deref() {
            None | Some("") => Ok(0),
            Some(s) => s
                .parse::<i64>()
                .map(|n| n.max(0) as usize)
                .map_err(|_| ApiError::bad_request(format!("invalid limit: {s}"))),
        }
    }
}

/// Parses `/api/v1/...` or `/apis/<group>/<version>/...` into a target; `None` if the path
/// is not a resource path of a served group version.
pub fn parse_path(path: &str) -> Option<ApiResult<Target>> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.is_empty() || registry::resources_in(group, version).next().is_none() {
        return None;
    }
    let find = |plural: &str| registry::find(group, version, plural).ok_or_else(ApiError::no_route);
    let t = |def: &'static ResourceDef, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
        def,
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        sub: sub.map(str::to_string),
    };
    let r = match rest {
        // Namespace objects themselves: /api/v1/namespaces/{name}[/status|finalize].
        ["namespaces", name] if group.is_empty() => find("namespaces").map(|d| t(d, None, Some(name), None)),
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            find("namespaces").map(|d| t(d, None, Some(name), Some(sub)))
        }
        ["namespaces", ns, plural, tail @ ..] => match find(plural) {
            Ok(d) if d.namespaced => match tail {
                [] => Ok(t(d, Some(ns), None, None)),
                [name] => Ok(t(d, Some(ns), Some(name), None)),
                [name, sub] => Ok(t(d, Some(ns), Some(name), Some(sub))),
                _ => Err(ApiError::no_route()),
            },
            Ok(_) => Err(ApiError::no_route()),
            Err(e) => Err(e),
        },
        [plural, tail @ ..] => find(plural).and_then(|d| match (d.namespaced, tail) {
            (_, []) => Ok(t(d, None, None, None)),
            (false, [name]) => Ok(t(d, None, Some(name), None)),
            (false, [name, sub]) => Ok(t(d, None, Some(name), Some(sub))),
            _ => Err(ApiError::no_route()),
        }),
        [] => Err(ApiError::no_route()),
    };
    Some(r.and_then(|t| {
        if let Some(n) = &t.name {
            if n.is_empty() {
                return Err(ApiError::no_route());
            }
        }
        Ok(t)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected plural, namespace, name and subresource.
    type Want<'a> = Option<(&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>)>;

    #[test]
    fn paths() {
        let cases: &[(&str, Want)] = &[
            (
                "/api/v1/namespaces/default/pods",
                Some(("pods", Some("default"), None, None)),
            ),
            (
                "/api/v1/namespaces/default/pods/x/status",
                Some(("pods", Some("default"), Some("x"), Some("status"))),
            ),
            ("/api/v1/pods", Some(("pods", None, None, None))),
            (
                "/api/v1/namespaces/kube-system",
                Some(("namespaces", None, Some("kube-system"), None)),
            ),
            ("/api/v1/namespaces", Some(("namespaces", None, None, None))),
            ("/api/v1/nodes/n1", Some(("nodes", None, Some("n1"), None))),
            (
                "/apis/apps/v1/namespaces/a/deployments/web/scale",
                Some(("deployments", Some("a"), Some("web"), Some("scale"))),
            ),
            ("/apis/apps/v1/deployments", Some(("deployments", None, None, None))),
            ("/apis/nope/v1/x", None),
            ("/version", None),
        ];
        for (path, want) in cases {
            let got = parse_path(path).map(|r| r.unwrap());
            match (got, want) {
                (None, None) => {}
                (Some(t), Some((plural, ns, name, sub))) => {
                    assert_eq!(t.def.plural, *plural, "{path}");
                    assert_eq!(t.namespace.as_deref(), *ns, "{path}");
                    assert_eq!(t.name.as_deref(), *name, "{path}");
                    assert_eq!(t.sub.as_deref(), *sub, "{path}");
                }
                (g, w) => panic!("{path}: got {:?} want {:?}", g.map(|t| t.def.plural), w),
            }
        }
        assert!(parse_path("/api/v1/namespaces/a/nodes").unwrap().is_err());
        assert!(parse_path("/api/v1/nopes").unwrap().is_err());
        let q = Query::parse(Some("labelSelector=env+in+%28a%2Cb%29&watch=true")).unwrap();
        assert_eq!(q.label_selector.as_deref(), Some("env in (a,b)"));
        assert!(q.is_watch());
    }

    #[test]
    fn timeout_seconds_must_be_an_integer() {
        let t = |raw: &str| Query::parse(Some(raw)).unwrap().timeout_seconds();
        assert_eq!(t("timeoutSeconds=30").unwrap(), Some(30));
        assert_eq!(t("watch=1").unwrap(), None);
        let e = t("timeoutSeconds=abc").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "strconv.ParseInt: parsing \"abc\": invalid syntax")
        );
        assert!(t("timeoutSeconds=").is_err());
        let e = t("timeoutSeconds=99999999999999999999").unwrap_err();
        assert!(e.message.ends_with("value out of range"), "{}", e.message);
    }
}
