//! `skiff bench`: benchmarks that print numbers (see BENCHMARKS.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

/// What to measure.
#[derive(Subcommand)]
pub enum What {
    /// Durable writes/s of the embedded store against Debian's etcd-server, same load.
    Store {
        /// Seconds per concurrency level.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent clients per level, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        clients: Vec<usize>,
        /// The etcd binary.
        #[arg(long, default_value = "/usr/bin/etcd")]
        etcd: PathBuf,
        /// Directory for the data (a real disk: fsync is measured).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Runs one benchmark and prints its report.
pub async fn run(what: What) -> anyhow::Result<()> {
    match what {
        What::Store {
            seconds,
            clients,
            etcd,
            dir,
        } => {
            let opts = skiff_store::bench::BenchOpts {
                clients,
                duration: Duration::from_secs(seconds),
                etcd_binary: etcd,
                dir,
                ..Default::default()
            };
            println!("{}", skiff_store::bench::run(opts).await?);
        }
    }
    Ok(())
}
