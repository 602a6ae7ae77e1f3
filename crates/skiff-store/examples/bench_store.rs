//! Runs the store benchmark (what `skiff bench store` prints): `cargo run --release -p skiff-store --example bench_store [SECONDS]`.

#[tokio::main]
async fn main() -> Result<(), skiff_store::bench::BenchError> {
    let mut opts = skiff_store::bench::BenchOpts::default();
    if let Some(secs) = std::env::args().nth(1).and_then(|s| s.parse::<f64>().ok()) {
        opts.duration = std::time::Duration::from_secs_f64(secs);
    }
    println!("{}", skiff_store::bench::run(opts).await?);
    Ok(())
}
