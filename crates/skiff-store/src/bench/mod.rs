//! `skiff bench store`: durable writes/s of [`RedbStore`](crate::RedbStore) against Debian's etcd.
//!
//! Each client creates keys one after another (a txn comparing mod_revision with 0, then a put
//! of a ~1 KiB value, which is what the API server does on create) and waits for the durable
//! acknowledgement before the next. Both stores fsync before answering. etcd runs as a local
//! single-member cluster in a temp dir, driven through its JSON gRPC gateway over HTTP/1.

mod etcd;
mod load;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

pub use load::LevelResult;

use crate::{Compare, Op, RedbStore, Store, StoreError, Txn};

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOpts {
    /// Concurrent client counts, one level each.
    pub clients: Vec<usize>,
    /// How long each level runs.
    pub duration: Duration,
    /// Bytes per written value.
    pub value_size: usize,
    /// The etcd server binary; skipped (and said so) when missing.
    pub etcd_binary: PathBuf,
    /// Whether to skip etcd even when installed.
    pub skip_etcd: bool,
    /// Where the temp dirs go (the system temp dir if `None`); use a real disk, since fsync is measured.
    pub dir: Option<PathBuf>,
}

impl Default for BenchOpts {
    fn default() -> Self {
        BenchOpts {
            clients: vec![1, 16, 64],
            duration: Duration::from_secs(5),
            value_size: 1024,
            etcd_binary: PathBuf::from("/usr/bin/etcd"),
            skip_etcd: false,
            dir: None,
        }
    }
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The skiff store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// etcd failed to start or refused a write.
    #[error("etcd: {0}")]
    Etcd(String),
    /// An HTTP exchange with etcd failed.
    #[error("http: {0}")]
    Http(String),
    /// Temp dirs or processes.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Results of one benchmark run.
#[derive(Clone, Debug)]
pub struct BenchResults {
    /// One entry per client count for skiff.
    pub skiff: Vec<LevelResult>,
    /// Same for etcd, or why it was not measured.
    pub etcd: Result<Vec<LevelResult>, String>,
}

/// Runs the benchmark and answers a printable report.
pub async fn run(opts: BenchOpts) -> Result<String, BenchError> {
    let results = measure(&opts).await?;
    Ok(report(&opts, &results))
}

/// Runs the benchmark and answers the raw numbers.
pub async fn measure(opts: &BenchOpts) -> Result<BenchResults, BenchError> {
    let value = Bytes::from(vec![b'x'; opts.value_size]);
    let skiff = measure_skiff(opts, value.clone()).await?;
    let etcd = if opts.skip_etcd {
        Err("skipped on request".to_owned())
    } else if !opts.etcd_binary.exists() {
        Err(format!(
            "{} not found (install Debian's etcd-server)",
            opts.etcd_binary.display()
        ))
    } else {
        Ok(measure_etcd(opts, value).await?)
    };
    Ok(BenchResults { skiff, etcd })
}

fn temp_dir(opts: &BenchOpts, prefix: &str) -> Result<tempfile::TempDir, BenchError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    Ok(match &opts.dir {
        Some(dir) => builder.tempdir_in(dir)?,
        None => builder.tempdir()?,
    })
}

async fn measure_skiff(opts: &BenchOpts, value: Bytes) -> Result<Vec<LevelResult>, BenchError> {
    let dir = temp_dir(opts, "skiff-bench-store-")?;
    let store = RedbStore::open(dir.path().join("store.redb"))?;
    let mut levels = Vec::new();
    for &clients in &opts.clients {
        let (store, value) = (store.clone(), value.clone());
        let level = load::drive(clients, opts.duration, move |client, seq| {
            let (store, value) = (store.clone(), value.clone());
            async move {
                let key = format!("/bench/{clients}/{client}/{seq}");
                let txn = Txn {
                    compare: vec![Compare::ModRevision {
                        key: key.clone(),
                        revision: 0,
                    }],
                    success: vec![Op::Put { key, value }],
                    failure: vec![],
                };
                match store.txn(txn).await? {
                    resp if resp.succeeded => Ok(()),
                    _ => Err(BenchError::Store(StoreError::Commit(
                        "bench key already existed".into(),
                    ))),
                }
            }
        })
        .await?;
        levels.push(level);
    }
    Ok(levels)
}

async fn measure_etcd(opts: &BenchOpts, value: Bytes) -> Result<Vec<LevelResult>, BenchError> {
    let dir = temp_dir(opts, "skiff-bench-etcd-")?;
    let server = etcd::EtcdProcess::start(&opts.etcd_binary, dir.path()).await?;
    let client = etcd::EtcdClient::new(&server.url);
    let mut levels = Vec::new();
    for &clients in &opts.clients {
        let (client, value) = (client.clone(), value.clone());
        let level = load::drive(clients, opts.duration, move |c, seq| {
            let (client, value) = (client.clone(), value.clone());
            async move { client.create(&format!("/bench/{clients}/{c}/{seq}"), &value).await }
        })
        .await?;
        levels.push(level);
    }
    drop(server);
    Ok(levels)
}

/// Formats the results as a table with the skiff/etcd ratio.
pub fn report(opts: &BenchOpts, results: &BenchResults) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "durable creates (txn mod_revision=0 + put, {} B values, distinct keys), {:.1}s per level",
        opts.value_size,
        opts.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "{:>7} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | {:>10}",
        "clients", "skiff w/s", "p50 ms", "p99 ms", "etcd w/s", "p50 ms", "p99 ms", "skiff/etcd"
    );
    for (i, s) in results.skiff.iter().enumerate() {
        let _ = write!(
            out,
            "{:>7} | {:>10.0} {:>8.2} {:>8.2} |",
            s.clients,
            s.writes_per_sec,
            ms(s.p50),
            ms(s.p99)
        );
        match results.etcd.as_ref().ok().and_then(|e| e.get(i)) {
            Some(e) => {
                let ratio = s.writes_per_sec / e.writes_per_sec.max(f64::MIN_POSITIVE);
                let _ = writeln!(
                    out,
                    " {:>10.0} {:>8.2} {:>8.2} | {:>9.1}x",
                    e.writes_per_sec,
                    ms(e.p50),
                    ms(e.p99),
                    ratio
                );
            }
            None => {
                let _ = writeln!(out, " {:>10} {:>8} {:>8} | {:>10}", "-", "-", "-", "-");
            }
        }
    }
    if let Err(why) = &results.etcd {
        let _ = writeln!(out, "etcd not measured: {why}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_run_reports_every_level() {
        let opts = BenchOpts {
            clients: vec![1, 4],
            duration: Duration::from_millis(200),
            value_size: 64,
            ..BenchOpts::default()
        };
        let results = measure(&opts).await.unwrap();
        assert_eq!(results.skiff.iter().map(|l| l.clients).collect::<Vec<_>>(), vec![1, 4]);
        assert!(results.skiff.iter().all(|l| l.writes > 0 && l.p99 >= l.p50));
        match &results.etcd {
            Ok(levels) => assert!(levels.iter().all(|l| l.writes > 0), "etcd measured"),
            Err(why) => assert!(!opts.etcd_binary.exists(), "etcd installed but not measured: {why}"),
        }
        let text = report(&opts, &results);
        assert_eq!(
            text.lines().filter(|l| l.trim_start().starts_with(['1', '4'])).count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn report_says_why_etcd_is_missing() {
        let opts = BenchOpts::default();
        let results = BenchResults {
            skiff: vec![],
            etcd: Err("/usr/bin/etcd not found".into()),
        };
        assert!(report(&opts, &results).contains("etcd not measured: /usr/bin/etcd not found"));
    }
}
