//! The collector's table of served resources: a stable slot per resource, the kind → resource
//! mapping for owner references (upstream's RESTMapper), and which slots are watched.

use std::collections::HashMap;

use super::discovery::{is_event, Served};
use super::graph::Res;

/// Served resources by slot; slots never move, so graph nodes can keep them.
#[derive(Debug, Default)]
pub struct Table {
    slots: Vec<Served>,
    by_resource: HashMap<(String, String), Res>,
    by_kind: HashMap<(String, String), Res>,
    present: Vec<bool>,
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

impl Table {
    /// The resource in `slot`.
    pub fn get(&self, slot: Res) -> Option<&Served> {
        self.slots.get(usize::from(slot))
    }

    /// upstream RESTMapper: the slot of the resource serving `kind` in `apiVersion`'s group.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Res> {
        self.by_kind
            .get(&(group_of(api_version).to_string(), kind.to_string()))
            .copied()
    }

    /// upstream `GetDeletableResources`: what the collector watches (list, watch and delete;
    /// never events).
    pub fn watchable(&self, slot: Res) -> bool {
        let present = self.present.get(usize::from(slot)).copied().unwrap_or(false);
        self.get(slot)
            .is_some_and(|s| present && s.supports(&["delete", "list", "watch"]) && !is_event(&s.ar))
    }

    /// Takes in a discovery answer; returns the slots that became watchable and those that
    /// stopped being served.
    pub fn merge(&mut self, found: Vec<Served>) -> (Vec<Res>, Vec<Res>) {
        let before: Vec<bool> = (0..self.slots.len()).map(|i| self.watchable(i as Res)).collect();
        let mut seen = vec![false; self.slots.len()];
        for s in found {
            let key = (s.ar.group.clone(), s.ar.plural.clone());
            let slot = match self.by_resource.get(&key) {
                Some(slot) => {
                    self.slots[usize::from(*slot)] = s.clone();
                    *slot
                }
                None => {
                    // A table this large is far beyond any server's resource count; stop.
                    let Ok(slot) = Res::try_from(self.slots.len()) else {
                        break;
                    };
                    if slot == super::graph::UNKNOWN {
                        break;
                    }
                    self.slots.push(s.clone());
                    self.present.push(true);
                    seen.push(true);
                    self.by_resource.insert(key, slot);
                    slot
                }
            };
            self.present[usize::from(slot)] = true;
            seen[usize::from(slot)] = true;
            self.by_kind.insert((s.ar.group.clone(), s.ar.kind.clone()), slot);
        }
        for (i, s) in seen.iter().enumerate() {
            if !s {
                self.present[i] = false;
            }
        }
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for i in 0..self.slots.len() {
            let was = before.get(i).copied().unwrap_or(false);
            let now = self.watchable(i as Res);
            if now && !was {
                added.push(i as Res);
            } else if was && !now {
                removed.push(i as Res);
            }
        }
        (added, removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::discovery::ApiResource;

    fn served(group: &str, kind: &str, plural: &str, verbs: &[&str]) -> Served {
        let version = "v1";
        Served {
            ar: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn slots_are_stable_and_watchability_follows_discovery() {
        let all = [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ];
        let mut t = Table::default();
        let (added, removed) = t.merge(vec![
            served("", "Pod", "pods", &all),
            served("", "Event", "events", &all),
            served("apps", "ReplicaSet", "replicasets", &all),
            served(
                "authorization.k8s.io",
                "SelfSubjectReview",
                "selfsubjectreviews",
                &["create"],
            ),
        ]);
        assert_eq!(added, [0, 2], "events and create-only kinds are not watched");
        assert!(removed.is_empty());
        assert_eq!(t.resolve("apps/v1", "ReplicaSet"), Some(2));
        assert_eq!(t.resolve("extensions/v1beta1", "ReplicaSet"), None);
        assert_eq!(t.resolve("v1", "Pod"), Some(0));
        assert_eq!(
            t.resolve("apps/v1beta2", "ReplicaSet"),
            Some(2),
            "any version of the group"
        );

        let (added, removed) = t.merge(vec![
            served("", "Pod", "pods", &all),
            served("example.com", "Widget", "widgets", &all),
        ]);
        assert_eq!(added, [4]);
        assert_eq!(removed, [2]);
        assert_eq!(t.get(4).unwrap().ar.kind, "Widget");
    }
}
