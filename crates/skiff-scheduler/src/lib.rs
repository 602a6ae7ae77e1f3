//! The scheduler: watches unscheduled pods, filters and scores nodes, binds through `pods/binding`.
//!
//! Shaped like kube-scheduler's framework: a scheduling [`queue`], a node snapshot
//! ([`cache`]) kept from watch events with assumed pods, filter and score [`plugins`] named
//! as upstream's, and one cycle per pod in [`framework`].

use std::time::Duration;

pub mod bench;
pub mod cache;
mod events;
pub mod framework;
pub mod plugins;
pub mod queue;
pub mod resources;
mod scheduler;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Pods whose `spec.schedulerName` is this are ours (upstream default `default-scheduler`).
    pub scheduler_name: String,
    /// Bindings in flight at once. Each waits for a durable write (an fsync shared by a group
    /// commit), so throughput is about this many per commit interval: 64 caps SchedulingBasic
    /// near 2,600 pods/s here, 1,024 lets it follow the create rate.
    pub parallelism: usize,
    /// Percentage of nodes to find feasible before scoring; `None` for upstream's adaptive
    /// default (50% − nodes/125, at least 5%, at least 100 nodes).
    pub percentage_of_nodes_to_score: Option<u32>,
    /// upstream `podInitialBackoffSeconds` (1 s).
    pub initial_backoff: Duration,
    /// upstream `podMaxBackoffSeconds` (10 s).
    pub max_backoff: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            scheduler_name: "default-scheduler".into(),
            parallelism: 1024,
            percentage_of_nodes_to_score: None,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Why the scheduler or its benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API failed.
    #[error("API request: {0}")]
    Kube(#[from] kube::Error),
    /// The watches ended.
    #[error("the scheduler's watches stopped")]
    Stopped,
    /// The benchmark could not set up or finish.
    #[error("benchmark: {0}")]
    Bench(String),
}

/// Runs the scheduler until the returned future is dropped.
pub async fn run(client: kube::Client, opts: SchedulerOptions) -> Result<(), Error> {
    scheduler::run(client, opts).await
}
