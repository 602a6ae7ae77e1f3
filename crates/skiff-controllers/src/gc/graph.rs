//! upstream `GraphBuilder`: the owner → dependent graph, kept from metadata events of every
//! watched resource. Applying an event tells which objects the collector must look at.
//!
//! Memory: a node holds only what the collector reads (a resource index, namespace, name,
//! owner uids with their blockOwnerDeletion bit, dependent uids and a few flags), with uids as
//! 16 bytes and namespaces as indexes into an interned list (30,000 pods: about 10 MB).

use std::collections::HashMap;
use std::sync::Arc;

/// An object's uid in 16 bytes (a UUID's bits; other strings are hashed and kept as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(u64, u64);

impl Uid {
    /// Parses a canonical UUID; anything else is hashed (and its text must be kept).
    pub fn parse(s: &str) -> (Uid, bool) {
        if let Some(u) = Self::from_uuid(s) {
            return (u, true);
        }
        // FNV-1a over the bytes, twice with different offsets, for 128 bits.
        let fnv = |seed: u64| {
            s.bytes()
                .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
        };
        (Uid(fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142)), false)
    }

    fn from_uuid(s: &str) -> Option<Uid> {
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|i| b[*i] != b'-') {
            return None;
        }
        let mut v: u128 = 0;
        for (i, c) in b.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                continue;
            }
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            v = (v << 4) | u128::from(d);
        }
        Some(Uid((v >> 64) as u64, v as u64))
    }

    /// The canonical UUID text of a uid parsed from one.
    pub fn to_uuid(self) -> String {
        let v = (u128::from(self.0) << 64) | u128::from(self.1);
        let h = format!("{v:032x}");
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    }
}

/// A resource slot in the collector's table of watched resources.
pub type Res = u16;
/// The slot of an owner whose kind is not (yet) known.
pub const UNKNOWN: Res = Res::MAX;

/// One owner reference as the graph keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The owner's uid.
    pub uid: Uid,
    /// `blockOwnerDeletion`.
    pub block: bool,
}

/// One owner reference as an event carries it.
#[derive(Debug, Clone)]
pub struct OwnerRef {
    /// The owner's uid.
    pub uid: Uid,
    /// `blockOwnerDeletion`.
    pub block: bool,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// The owner's slot, resolved by the caller from apiVersion and kind.
    pub res: Res,
}

/// What an event says about one object.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The object's resource slot.
    pub res: Res,
    /// Its uid.
    pub uid: Uid,
    /// The uid text when it is not a canonical UUID.
    pub uid_text: Option<String>,
    /// Its namespace.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Its owner references.
    pub owners: Vec<OwnerRef>,
    /// Whether deletionTimestamp is set.
    pub deleting: bool,
    /// Whether it has the `foregroundDeletion` finalizer.
    pub foreground: bool,
    /// Whether it has the `orphan` finalizer.
    pub orphan: bool,
}

const OBSERVED: u8 = 1;
const BEING_DELETED: u8 = 2;
const DELETING_DEPENDENTS: u8 = 4;
const ORPHANING: u8 = 8;

/// Coordinates of an owner known only from references (upstream's "virtual" node).
#[derive(Debug, Clone)]
pub struct Virtual {
    /// `apiVersion` of the reference.
    pub api_version: String,
    /// `kind` of the reference.
    pub kind: String,
}

/// One object in the graph.
#[derive(Debug)]
pub struct Node {
    /// Resource slot.
    pub res: Res,
    flags: u8,
    /// Namespace, as an index into the graph's interned namespaces (0: none).
    ns: u32,
    /// Name.
    pub name: Box<str>,
    /// Owner references.
    pub owners: Box<[Link]>,
    /// Objects that name this one as an owner.
    pub dependents: Vec<Uid>,
    /// Set while the node is known only from references.
    pub virtual_of: Option<Box<Virtual>>,
}

impl Node {
    /// Whether a watch event showed the object (not only a reference to it).
    pub fn observed(&self) -> bool {
        self.flags & OBSERVED != 0
    }
    /// Whether deletionTimestamp is set.
    pub fn being_deleted(&self) -> bool {
        self.flags & BEING_DELETED != 0
    }
    /// Whether it is being deleted in the foreground (waits for its blocking dependents).
    pub fn deleting_dependents(&self) -> bool {
        self.flags & DELETING_DEPENDENTS != 0
    }
    fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

/// Objects the collector should look at after an event.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// upstream `attemptToDelete`.
    pub delete: Vec<Uid>,
    /// upstream `attemptToOrphan`.
    pub orphan: Vec<Uid>,
    /// Uids whose owners were found absent.
    pub absent: Vec<Uid>,
}

/// The dependency graph.
#[derive(Debug)]
pub struct Graph {
    nodes: HashMap<Uid, Node>,
    /// Interned namespaces; index 0 stands for "cluster-scoped".
    namespaces: Vec<Arc<str>>,
    namespace_ids: HashMap<Arc<str>, u32>,
    /// Uids that are not canonical UUIDs, as written (rare).
    uid_texts: HashMap<Uid, Box<str>>,
}

impl Default for Graph {
    fn default() -> Self {
        Graph {
            nodes: HashMap::new(),
            namespaces: vec![Arc::from("")],
            namespace_ids: HashMap::new(),
            uid_texts: HashMap::new(),
        }
    }
}

impl Graph {
    /// The node of `uid`.
    pub fn get(&self, uid: &Uid) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Observed nodes of a resource slot (to find what a relist no longer shows).
    pub fn observed_of(&self, res: Res) -> Vec<Uid> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.res == res && n.observed())
            .map(|(u, _)| *u)
            .collect()
    }

    /// Virtual nodes whose kind was unknown, to resolve after discovery found more kinds.
    pub fn resolve_unknown(&mut self, resolve: impl Fn(&str, &str) -> Option<Res>) {
        for n in self.nodes.values_mut() {
            if n.res == UNKNOWN {
                if let Some(v) = &n.virtual_of {
                    if let Some(r) = resolve(&v.api_version, &v.kind) {
                        n.res = r;
                    }
                }
            }
        }
    }

    /// The namespace of a node.
    pub fn namespace_of(&self, n: &Node) -> Option<&str> {
        (n.ns != 0)
            .then(|| self.namespaces.get(n.ns as usize).map(|a| &**a))
            .flatten()
    }

    /// The uid text for API calls.
    pub fn uid_string(&self, uid: Uid) -> String {
        match self.uid_texts.get(&uid) {
            Some(t) => t.to_string(),
            None => uid.to_uuid(),
        }
    }

    fn intern(&mut self, ns: Option<&str>) -> u32 {
        let Some(ns) = ns else { return 0 };
        if let Some(i) = self.namespace_ids.get(ns) {
            return *i;
        }
        let a: Arc<str> = Arc::from(ns);
        let i = u32::try_from(self.namespaces.len()).unwrap_or(0);
        self.namespaces.push(a.clone());
        self.namespace_ids.insert(a, i);
        i
    }

    /// upstream `processGraphChanges` for an add or update event.
    pub fn upsert(&mut self, m: Meta, work: &mut Work) {
        let links: Box<[Link]> = m
            .owners
            .iter()
            .map(|o| Link {
                uid: o.uid,
                block: o.block,
            })
            .collect();
        let namespace = self.intern(m.namespace.as_deref());
        if let Some(t) = &m.uid_text {
            self.uid_texts.insert(m.uid, t.clone().into_boxed_str());
        }
        let (old_flags, old_links) = match self.nodes.get_mut(&m.uid) {
            Some(n) => {
                if !n.observed() {
                    // A virtual node becomes real: dependents that named it by other
                    // coordinates get another look (upstream `partitionDependents`).
                    let differs = n.res != m.res || *n.name != *m.name || n.ns != namespace;
                    if differs {
                        work.delete.extend(n.dependents.iter().copied());
                    }
                    n.res = m.res;
                    n.name = m.name.clone().into_boxed_str();
                    n.ns = namespace;
                    n.virtual_of = None;
                }
                let old = (n.flags, std::mem::replace(&mut n.owners, links.clone()));
                n.set(OBSERVED, true);
                old
            }
            None => {
                self.nodes.insert(
                    m.uid,
                    Node {
                        res: m.res,
                        flags: OBSERVED,
                        ns: namespace,
                        name: m.name.clone().into_boxed_str(),
                        owners: links.clone(),
                        dependents: Vec::new(),
                        virtual_of: None,
                    },
                );
                (0, Box::default())
            }
        };
        // Owner reference changes: unblocked owners waiting in the foreground get another look.
        let removed: Vec<Link> = old_links
            .iter()
            .filter(|o| !links.iter().any(|l| l.uid == o.uid))
            .copied()
            .collect();
        let unblocked = old_links
            .iter()
            .filter(|o| o.block && links.iter().any(|l| l.uid == o.uid && !l.block));
        for o in removed.iter().filter(|o| o.block).chain(unblocked) {
            if self.nodes.get(&o.uid).is_some_and(Node::deleting_dependents) {
                work.delete.push(o.uid);
            }
        }
        for o in &removed {
            self.drop_dependent(o.uid, m.uid);
        }
        let added: Vec<&OwnerRef> = m
            .owners
            .iter()
            .filter(|o| !old_links.iter().any(|l| l.uid == o.uid))
            .collect();
        for o in added {
            self.add_dependent(&m, namespace, o, work);
        }
        self.transitions(&m, old_flags, work);
    }

    /// upstream `addDependentToOwners`: an unknown owner becomes a virtual node, verified by
    /// the collector.
    fn add_dependent(&mut self, m: &Meta, namespace: u32, o: &OwnerRef, work: &mut Work) {
        match self.nodes.get_mut(&o.uid) {
            Some(owner) => {
                if !owner.dependents.contains(&m.uid) {
                    owner.dependents.push(m.uid);
                }
                // An owner already being deleted decides this dependent's fate too.
                if owner.observed() && owner.being_deleted() {
                    work.delete.push(m.uid);
                }
            }
            None => {
                self.nodes.insert(
                    o.uid,
                    Node {
                        res: o.res,
                        flags: 0,
                        ns: namespace,
                        name: o.name.clone().into_boxed_str(),
                        owners: Box::default(),
                        dependents: vec![m.uid],
                        virtual_of: Some(Box::new(Virtual {
                            api_version: o.api_version.clone(),
                            kind: o.kind.clone(),
                        })),
                    },
                );
                work.delete.push(o.uid);
            }
        }
    }

    /// upstream `processTransitions`: entering orphan or foreground deletion.
    fn transitions(&mut self, m: &Meta, old_flags: u8, work: &mut Work) {
        let Some(n) = self.nodes.get_mut(&m.uid) else { return };
        n.set(BEING_DELETED, m.deleting || old_flags & BEING_DELETED != 0);
        let orphaning = m.deleting && m.orphan;
        n.set(ORPHANING, orphaning);
        if orphaning && old_flags & ORPHANING == 0 {
            work.orphan.push(m.uid);
            return;
        }
        let foreground = m.deleting && m.foreground;
        if foreground || old_flags & DELETING_DEPENDENTS != 0 {
            n.set(DELETING_DEPENDENTS, true);
        }
        if foreground && old_flags & DELETING_DEPENDENTS == 0 {
            work.delete.extend(n.dependents.iter().copied());
            work.delete.push(m.uid);
        }
    }

    /// upstream: a delete event — the node goes, its dependents get looked at, and owners
    /// waiting for their dependents get another look.
    pub fn remove(&mut self, uid: Uid, work: &mut Work) {
        let Some(node) = self.nodes.remove(&uid) else { return };
        self.uid_texts.remove(&uid);
        if !node.dependents.is_empty() {
            work.absent.push(uid);
        }
        work.delete.extend(node.dependents.iter().copied());
        for o in node.owners.iter() {
            if self.nodes.get(&o.uid).is_some_and(Node::deleting_dependents) {
                work.delete.push(o.uid);
            }
            self.drop_dependent(o.uid, uid);
        }
    }

    /// upstream virtual delete event: the collector found the object `uid` named `name` in
    /// slot `res` absent. A node that meanwhile turned out to be something else stays.
    pub fn remove_verified_absent(&mut self, uid: Uid, res: Res, name: &str, work: &mut Work) {
        let same = self.nodes.get(&uid).is_some_and(|n| n.res == res && *n.name == *name);
        if same {
            self.remove(uid, work);
        }
    }

    fn drop_dependent(&mut self, owner: Uid, dependent: Uid) {
        let Some(o) = self.nodes.get_mut(&owner) else { return };
        if let Some(i) = o.dependents.iter().position(|d| *d == dependent) {
            o.dependents.swap_remove(i);
        }
        // A virtual owner nobody references any more is forgotten.
        if !o.observed() && o.dependents.is_empty() {
            self.nodes.remove(&owner);
        }
    }

    /// Dependents of `uid` whose reference to it blocks its deletion, each with whether it
    /// is itself deleting its dependents (upstream `blockingDependents`).
    pub fn blocking_dependents(&self, uid: &Uid) -> Vec<(Uid, bool)> {
        let Some(n) = self.nodes.get(uid) else {
            return Vec::new();
        };
        n.dependents
            .iter()
            .filter_map(|d| {
                let dn = self.nodes.get(d)?;
                dn.owners
                    .iter()
                    .any(|l| l.uid == *uid && l.block)
                    .then_some((*d, dn.deleting_dependents()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uid(n: u64) -> Uid {
        Uid(0, n)
    }

    fn meta(n: u64, owners: &[(u64, bool)]) -> Meta {
        Meta {
            res: 0,
            uid: uid(n),
            uid_text: None,
            namespace: Some("default".into()),
            name: format!("o{n}"),
            owners: owners
                .iter()
                .map(|(o, block)| OwnerRef {
                    uid: uid(*o),
                    block: *block,
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: format!("o{o}"),
                    res: 0,
                })
                .collect(),
            deleting: false,
            foreground: false,
            orphan: false,
        }
    }

    #[test]
    fn nodes_stay_small() {
        // 30,000 pods cost a few megabytes: keep a node (besides its name and owners) small.
        assert!(std::mem::size_of::<Node>() <= 72, "{}", std::mem::size_of::<Node>());
        assert_eq!(std::mem::size_of::<Link>(), 24);
    }

    #[test]
    fn uids_round_trip_and_fall_back_to_hashing() {
        let s = "0b6c5e1c-2f0a-4c9e-9d4b-5a1f3e2d7c88";
        let (u, canonical) = Uid::parse(s);
        assert!(canonical);
        assert_eq!(u.to_uuid(), s);
        let (a, canonical) = Uid::parse("not-a-uuid");
        assert!(!canonical);
        assert_ne!(a, Uid::parse("not-a-uuid2").0);
        assert!(
            !Uid::parse("0B6C5E1C-2F0A-4C9E-9D4B-5A1F3E2D7C88").1,
            "upper case is not canonical"
        );
    }

    #[test]
    fn owners_and_dependents_follow_events() {
        let mut g = Graph::default();
        let mut w = Work::default();
        // A dependent seen before its owner makes a virtual owner to verify.
        g.upsert(meta(2, &[(1, true)]), &mut w);
        assert_eq!(w.delete, [uid(1)]);
        assert!(!g.get(&uid(1)).unwrap().observed());
        let mut w = Work::default();
        g.upsert(meta(1, &[]), &mut w);
        assert!(g.get(&uid(1)).unwrap().observed());
        assert_eq!(w, Work::default(), "same coordinates: nothing to look at");
        assert_eq!(g.blocking_dependents(&uid(1)), [(uid(2), false)]);

        // The owner goes: its dependents are looked at and it counts as absent.
        let mut w = Work::default();
        g.remove(uid(1), &mut w);
        assert_eq!(w.delete, [uid(2)]);
        assert_eq!(w.absent, [uid(1)]);
    }

    #[test]
    fn foreground_and_orphan_transitions() {
        let mut g = Graph::default();
        let mut w = Work::default();
        g.upsert(meta(1, &[]), &mut w);
        g.upsert(meta(2, &[(1, true)]), &mut w);
        g.upsert(meta(3, &[(1, false)]), &mut w);
        let mut fg = meta(1, &[]);
        fg.deleting = true;
        fg.foreground = true;
        let mut w = Work::default();
        g.upsert(fg.clone(), &mut w);
        assert_eq!(w.delete, [uid(2), uid(3), uid(1)]);
        assert!(g.get(&uid(1)).unwrap().deleting_dependents());
        // Only the blocking dependent holds the owner.
        assert_eq!(g.blocking_dependents(&uid(1)), [(uid(2), false)]);
        // A repeated event is no new transition.
        let mut w = Work::default();
        g.upsert(fg, &mut w);
        assert_eq!(w, Work::default());
        // Dropping the blocking reference gives the owner another look.
        let mut w = Work::default();
        g.upsert(meta(2, &[(1, false)]), &mut w);
        assert_eq!(w.delete, [uid(1)]);
        assert!(g.blocking_dependents(&uid(1)).is_empty());
        // The dependent going gives the owner another look too.
        let mut w = Work::default();
        g.remove(uid(3), &mut w);
        assert_eq!(w.delete, [uid(1)]);

        let mut w = Work::default();
        g.upsert(meta(5, &[]), &mut w);
        g.upsert(meta(6, &[(5, true)]), &mut w);
        let mut orphan = meta(5, &[]);
        orphan.deleting = true;
        orphan.orphan = true;
        let mut w = Work::default();
        g.upsert(orphan, &mut w);
        assert_eq!(w.orphan, [uid(5)]);
        assert!(w.delete.is_empty());
    }

    #[test]
    fn virtual_owners_are_forgotten_with_their_last_dependent() {
        let mut g = Graph::default();
        let mut w = Work::default();
        g.upsert(meta(2, &[(1, true)]), &mut w);
        g.upsert(meta(2, &[]), &mut w);
        assert!(g.get(&uid(1)).is_none());
        assert_eq!(g.node_count(), 1);
        // A verified-absent report for something that turned out different is ignored.
        g.upsert(meta(3, &[(4, true)]), &mut w);
        let mut w = Work::default();
        g.remove_verified_absent(uid(4), 0, "other", &mut w);
        assert!(g.get(&uid(4)).is_some());
        g.remove_verified_absent(uid(4), 0, "o4", &mut w);
        assert!(g.get(&uid(4)).is_none());
        assert_eq!(w.delete, [uid(3)]);
    }
}
