//! upstream: `ControlleeExpectations` — creations and deletions a controller issued but has not
//! yet seen in its informer, so it does not act twice on a stale cache.

use std::collections::HashSet;
use std::time::{Duration, Instant};

/// upstream: `ExpectationsTimeout`, after which unmet expectations are ignored.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// Creations and deletions (by pod uid) still to be observed for one owner.
#[derive(Debug, Default)]
pub struct Expectation {
    /// Creations issued and not yet observed.
    pub adds: i64,
    /// Uids of objects whose deletion was issued and not yet observed.
    pub dels: HashSet<String>,
    /// When the expectations were set.
    pub at: Option<Instant>,
}

impl Expectation {
    /// Expects `adds` creations from now on.
    pub fn adds(adds: usize) -> Self {
        Expectation {
            adds: adds as i64,
            dels: HashSet::new(),
            at: Some(Instant::now()),
        }
    }

    /// Expects the deletion of these uids from now on.
    pub fn dels(uids: impl IntoIterator<Item = String>) -> Self {
        Expectation {
            adds: 0,
            dels: uids.into_iter().collect(),
            at: Some(Instant::now()),
        }
    }

    /// Whether everything expected was observed, or the expectations timed out.
    pub fn satisfied(&self) -> bool {
        (self.adds <= 0 && self.dels.is_empty()) || self.at.is_none_or(|t| t.elapsed() > EXPECTATIONS_TIMEOUT)
    }
}
