//! Placeholder until this controller lands.

use kube::Client;

use crate::Error;

/// Runs the controller until the future is dropped.
pub async fn run(client: Client) -> Result<(), Error> {
    let _ = client;
    std::future::pending().await
}
