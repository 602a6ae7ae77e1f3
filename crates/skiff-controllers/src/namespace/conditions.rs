//! upstream `namespaceConditionUpdater`: the conditions a terminating namespace carries, saying
//! what keeps it from going away.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The condition types the namespace controller keeps, in upstream's order, each with the
/// reason and message of its "nothing wrong" form.
const KEPT: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The problems one pass over a namespace's content found.
#[derive(Debug, Default)]
pub struct Findings {
    failing: Vec<(&'static str, &'static str, String)>,
    delete_errors: Vec<String>,
}

impl Findings {
    /// Discovery failed (the pass went on with what it had, if anything).
    pub fn discovery_failed(&mut self, message: String) {
        self.failing
            .push(("NamespaceDeletionDiscoveryFailure", "DiscoveryFailed", message));
    }

    /// Deleting or listing one resource failed.
    pub fn delete_failed(&mut self, message: String) {
        self.delete_errors.push(message);
    }

    /// What is left: instances per `resource.group` and per finalizer.
    pub fn remaining(&mut self, resources: &BTreeMap<String, usize>, finalizers: &BTreeMap<String, usize>) {
        let res: Vec<String> = resources
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        if !res.is_empty() {
            self.failing.push((
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", res.join(", ")),
            ));
        }
        let fin: Vec<String> = finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !fin.is_empty() {
            self.failing.push((
                "NamespaceFinalizersRemaining",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    fin.join(", ")
                ),
            ));
        }
    }

    /// Whether any deletion failed.
    pub fn has_delete_errors(&self) -> bool {
        !self.delete_errors.is_empty()
    }

    /// The namespace's conditions updated with these findings, or `None` when nothing changed.
    /// Conditions of other types are kept; a transition time moves only when the status flips.
    pub fn apply(mut self, current: &[NamespaceCondition], now: jiff::Timestamp) -> Option<Vec<NamespaceCondition>> {
        if !self.delete_errors.is_empty() {
            self.delete_errors.sort();
            let msg = format!(
                "Failed to delete all resource types, {} remaining: {}",
                self.delete_errors.len(),
                self.delete_errors.join(", ")
            );
            self.failing
                .push(("NamespaceDeletionContentFailure", "ContentDeletionFailed", msg));
        }
        let mut out = current.to_vec();
        let mut changed = false;
        for (type_, ok_reason, ok_message) in KEPT {
            let (status, reason, message) = match self.failing.iter().find(|f| f.0 == type_) {
                Some((_, reason, message)) => ("True", *reason, message.clone()),
                None => ("False", ok_reason, ok_message.to_string()),
            };
            match out.iter_mut().find(|c| c.type_ == type_) {
                None => {
                    out.push(NamespaceCondition {
                        type_: type_.into(),
                        status: status.into(),
                        reason: Some(reason.into()),
                        message: Some(message),
                        last_transition_time: Some(Time(now)),
                    });
                    changed = true;
                }
                Some(c) => {
                    let same = c.status == status
                        && c.reason.as_deref() == Some(reason)
                        && c.message.as_deref() == Some(message.as_str());
                    if !same {
                        if c.status != status {
                            c.last_transition_time = Some(Time(now));
                        }
                        c.status = status.into();
                        c.reason = Some(reason.into());
                        c.message = Some(message);
                        changed = true;
                    }
                }
            }
        }
        changed.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_upstream() {
        let now = jiff::Timestamp::UNIX_EPOCH;
        let clean = Findings::default().apply(&[], now).unwrap();
        let got: Vec<(&str, &str, &str)> = clean
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("NamespaceDeletionDiscoveryFailure", "False", "ResourcesDiscovered"),
                (
                    "NamespaceDeletionGroupVersionParsingFailure",
                    "False",
                    "ParsedGroupVersions"
                ),
                ("NamespaceDeletionContentFailure", "False", "ContentDeleted"),
                ("NamespaceContentRemaining", "False", "ContentRemoved"),
                ("NamespaceFinalizersRemaining", "False", "ContentHasNoFinalizers"),
            ]
        );
        assert!(Findings::default().apply(&clean, now).is_none(), "unchanged");

        let mut f = Findings::default();
        let res = BTreeMap::from([("configmaps.".to_string(), 2), ("pods.".to_string(), 1)]);
        let fin = BTreeMap::from([("example.com/hold".to_string(), 2)]);
        f.remaining(&res, &fin);
        f.delete_failed("b".into());
        f.delete_failed("a".into());
        let later = now + jiff::SignedDuration::from_secs(5);
        let out = f.apply(&clean, later).unwrap();
        let get = |t: &str| out.iter().find(|c| c.type_ == t).unwrap();
        let c = get("NamespaceContentRemaining");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
            (
                "True",
                Some("SomeResourcesRemain"),
                Some("Some resources are remaining: configmaps. has 2 resource instances, pods. has 1 resource instances")
            )
        );
        assert_eq!(c.last_transition_time, Some(Time(later)));
        let c = get("NamespaceFinalizersRemaining");
        assert_eq!(
            c.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 2 resource instances")
        );
        let c = get("NamespaceDeletionContentFailure");
        assert_eq!(
            c.message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a, b")
        );
        assert_eq!(
            get("NamespaceDeletionDiscoveryFailure").last_transition_time,
            Some(Time(now)),
            "an unchanged condition keeps its time"
        );
    }
}
