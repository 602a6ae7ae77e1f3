//! `skiff up`: starts every component in this process and runs until interrupted.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;

/// Starts the API server and waits for Ctrl-C or SIGTERM.
pub async fn run(data_dir: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let cfg = skiff_apiserver::Config {
        data_dir,
        listen,
        extra_hosts: Vec::new(),
    };
    let running = skiff_apiserver::start(cfg).await.context("starting the API server")?;
    println!("skiff is up at {}", running.url);
    println!("kubeconfig: {}", running.kubeconfig.display());
    println!("try: kubectl --kubeconfig {} get all -A", running.kubeconfig.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}
