//! Runs the SchedulingBasic benchmark: `cargo run --release -p skiff-scheduler --example bench [nodes placed measured]`.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("number")).collect();
    let mut opts = skiff_scheduler::bench::BenchOpts::default();
    if let [n, p, m, ..] = args[..] {
        opts.nodes = n;
        opts.initial_pods = p;
        opts.measured_pods = m;
    }
    if let Some(p) = std::env::var("PARALLELISM").ok().and_then(|v| v.parse().ok()) {
        opts.parallelism = p;
    }
    if let Some(c) = std::env::var("CREATE_CONCURRENCY").ok().and_then(|v| v.parse().ok()) {
        opts.create_concurrency = c;
    }
    if let Ok(d) = std::env::var("DIR") {
        opts.dir = Some(d.into());
    }
    match skiff_scheduler::bench::run(opts).await {
        Ok(out) => print!("{out}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
