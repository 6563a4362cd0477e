//! An open-loop HTTP load generator for latency benchmarks: sends GETs at a fixed rate
//! (not "as fast as answers come back", which hides queueing), spreads them over a list of
//! paths, and reports latency percentiles measured from each request's scheduled send time,
//! so a stalled server shows up as latency instead of as fewer requests.
//!
//! cargo run --release --example loadgen -- URL_PREFIX PATHS_FILE RATE SECONDS [BEARER]
//!
//! PATHS_FILE holds one path per line, appended to URL_PREFIX in turn. Certificates are not
//! checked (the benchmark talks to a self-signed loopback server).

use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: loadgen URL_PREFIX PATHS_FILE RATE SECONDS [BEARER]");
        std::process::exit(2);
    }
    let prefix = args[1].clone();
    let paths: Vec<String> = std::fs::read_to_string(&args[2])?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("{prefix}{}", l.trim()))
        .collect();
    let rate: f64 = args[3].parse()?;
    let seconds: f64 = args[4].parse()?;
    let bearer = args.get(5).cloned().unwrap_or_default();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(256)
        .build()?;
    // Warm the connection pool and the server's caches with 50 unmeasured requests.
    for p in paths.iter().take(50) {
        client
            .get(p)
            .bearer_auth(&bearer)
            .send()
            .await?
            .bytes()
            .await?;
    }
    let total = (rate * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, bearer) = (
            client.clone(),
            paths[i % paths.len()].clone(),
            bearer.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ok = match client.get(&url).bearer_auth(&bearer).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            (due.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0usize;
    for t in tasks {
        let (d, ok) = t.await?;
        latencies.push(d);
        errors += usize::from(!ok);
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{{\"requests\": {total}, \"errors\": {errors}, \"rate_achieved\": {:.1}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}, \"max_ms\": {:.3}}}",
        total as f64 / elapsed,
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(pct(0.999)),
        ms(*latencies.last().unwrap()),
    );
    Ok(())
}
