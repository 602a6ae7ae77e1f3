//! `skiff`: a Kubernetes-compatible cluster in one binary.

mod bench;
mod up;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "skiff", version, about = "A Kubernetes-compatible cluster in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the cluster: API server on an embedded durable store.
    Up {
        /// Directory for the store, certificates and kubeconfig (default `~/.skiff`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address the API server listens on.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
    },
    /// Measure performance and print the numbers.
    Bench {
        #[command(subcommand)]
        what: bench::What,
    },
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".skiff")
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Up { data_dir, listen } => rt.block_on(up::run(data_dir.unwrap_or_else(default_data_dir), listen)),
        Command::Bench { what } => rt.block_on(bench::run(what)),
    }
}
