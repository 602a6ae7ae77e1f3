//! `skiff`: a Kubernetes-compatible cluster in one binary.

mod agent;
mod bench;
mod claim;
mod errors;
mod kubeconfig;
mod up;
mod up_nodes;

use clap::{Parser, Subcommand};

// glibc malloc took about a third of the CPU under load (many small JSON allocations across
// threads) and fragments the watch caches; mimalloc is faster and returns memory better.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skiff", version, about = "A Kubernetes-compatible cluster in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the cluster: API server on an embedded durable store, controllers, scheduler, nodes.
    Up(up::UpArgs),
    /// Join a skiff server from this host as a node (process runtime) or as simulated nodes.
    Agent(agent::AgentArgs),
    /// Measure performance and print the numbers.
    Bench {
        #[command(subcommand)]
        what: bench::What,
    },
}

fn main() -> std::process::ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,hickory_server=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let done = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| match cli.command {
            Command::Up(args) => rt.block_on(up::run(args)),
            Command::Agent(args) => rt.block_on(agent::run(args)),
            Command::Bench { what } => rt.block_on(bench::run(what)),
        });
    match done {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", errors::one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
