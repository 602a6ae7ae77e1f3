//! Impersonation headers (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`). Until
//! authorization exists nobody may impersonate, so a request carrying any of them is refused
//! with the Forbidden status upstream's impersonation filter gives a denied user, instead of
//! running it as the admin.

use http::HeaderMap;
use serde_json::json;

use crate::errors::ApiError;

/// The user name of the admin token (the kubeconfig's user).
pub const ADMIN_USER: &str = "admin";

/// The refusal of the first impersonation the request asks for, in upstream's order (user,
/// groups, extras, uid); `None` when it asks for none.
pub fn refuse(headers: &HeaderMap) -> Option<ApiError> {
    let first = |name: &str| {
        headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let extra = headers.iter().find_map(|(k, v)| {
        let key = k.as_str().strip_prefix("impersonate-extra-")?;
        Some((key.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
    });
    let (name, resource, group) = if let Some(u) = first("impersonate-user") {
        (u, "users".to_string(), "")
    } else if let Some(g) = first("impersonate-group") {
        (g, "groups".to_string(), "")
    } else if let Some((key, v)) = extra {
        (v, format!("userextras/{key}"), "authentication.k8s.io")
    } else if let Some(uid) = first("impersonate-uid") {
        (uid, "uids".to_string(), "authentication.k8s.io")
    } else {
        return None;
    };
    let plural = resource.split('/').next().unwrap_or("");
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    let message = format!(
        "{qualified} \"{name}\" is forbidden: User \"{ADMIN_USER}\" cannot impersonate resource \"{resource}\" in API group \"{group}\" at the cluster scope"
    );
    tracing::debug!(%message, "impersonation refused");
    let mut details = json!({"name": name, "kind": plural});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    Some(ApiError {
        details: Some(details),
        ..ApiError::forbidden(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn messages() {
        assert!(refuse(&h(&[("accept", "x")])).is_none());
        let e = refuse(&h(&[("Impersonate-Group", "g"), ("Impersonate-User", "bob")])).unwrap();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "users \"bob\" is forbidden: User \"admin\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
        let e = refuse(&h(&[("Impersonate-Group", "system:masters")])).unwrap();
        assert!(
            e.message.starts_with("groups \"system:masters\" is forbidden"),
            "{}",
            e.message
        );
        let e = refuse(&h(&[("Impersonate-Uid", "123")])).unwrap();
        assert!(
            e.message.starts_with("uids.authentication.k8s.io \"123\" is forbidden"),
            "{}",
            e.message
        );
        let e = refuse(&h(&[("Impersonate-Extra-Scopes", "view")])).unwrap();
        assert!(e.message.contains("resource \"userextras/scopes\""), "{}", e.message);
    }
}
