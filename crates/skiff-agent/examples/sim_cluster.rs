//! A throwaway cluster for trying simulated nodes with kubectl: an API server in a temporary
//! directory and N simulated nodes, until Ctrl-C.
//!
//! `cargo run -p skiff-agent --example sim_cluster -- [nodes]`, then
//! `KUBECONFIG=<printed path> kubectl get nodes`.

use skiff_agent::sim::{SimNodes, SimOptions};

#[tokio::main]
async fn main() {
    let count = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().unwrap();
    let running = skiff_apiserver::start(skiff_apiserver::Config::loopback(dir.path().to_path_buf()))
        .await
        .unwrap();
    let client = skiff_apiserver::local::client(running.server.clone());
    let sim = SimNodes::start(
        client.clone(),
        SimOptions {
            count,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    println!("KUBECONFIG={}", running.kubeconfig.display());
    let _ = tokio::signal::ctrl_c().await;
    drop(sim);
    drop(client);
    running.shutdown().await;
}
