//! A closed-loop load driver: N clients each issue one write at a time until a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one load level measured.
#[derive(Clone, Debug)]
pub struct LevelResult {
    /// Concurrent clients.
    pub clients: usize,
    /// Acknowledged writes.
    pub writes: usize,
    /// Writes per second over the level's wall time.
    pub writes_per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Runs `clients` concurrent loops of `write(client, seq)` for `duration` (at least one write each).
pub(crate) async fn drive<W, F, E>(clients: usize, duration: Duration, write: W) -> Result<LevelResult, E>
where
    W: Fn(usize, usize) -> F + Send + Sync + 'static,
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: Send + 'static,
{
    let write = Arc::new(write);
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let write = write.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut seq = 0;
                loop {
                    let t = Instant::now();
                    write(client, seq).await?;
                    latencies.push(t.elapsed());
                    seq += 1;
                    if Instant::now() >= deadline {
                        return Ok::<_, E>(latencies);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        match task.await {
            Ok(latencies) => all.extend(latencies?),
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    Ok(LevelResult {
        clients,
        writes: all.len(),
        writes_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
    })
}

/// The `p` quantile of sorted samples (zero when empty).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let ms = |v: &[u64]| v.iter().map(|m| Duration::from_millis(*m)).collect::<Vec<_>>();
        let cases = [
            ("empty", ms(&[]), 0.5, 0),
            ("single", ms(&[7]), 0.99, 7),
            ("median of odd", ms(&[1, 2, 3]), 0.5, 2),
            ("p99 of 100", (1..=100).map(Duration::from_millis).collect(), 0.99, 99),
        ];
        for (name, samples, p, want) in cases {
            assert_eq!(percentile(&samples, p), Duration::from_millis(want), "{name}");
        }
    }
}
