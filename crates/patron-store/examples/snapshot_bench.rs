//! Times loading the analyze stages' order snapshot from a data directory's store (see
//! bench/rfm/load.sh). Prints one JSON line: the best of three loads and what was loaded.
//!
//!     snapshot_bench DATA_DIR

use patron_store::{Store, StoreConfig};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::env::args()
        .nth(1)
        .ok_or("usage: snapshot_bench DATA_DIR")?;
    let store = Store::open(&StoreConfig {
        data_dir: data_dir.into(),
        database_url: None,
        master_key: None,
    })
    .await?;
    let mut best = f64::INFINITY;
    let mut sizes = (0, 0, 0);
    for _ in 0..3 {
        let start = Instant::now();
        let snap = store.order_snapshot().await?;
        best = best.min(start.elapsed().as_secs_f64());
        sizes = (
            snap.customers.len(),
            snap.orders.len(),
            snap.purchases.len(),
        );
    }
    println!(
        "{{\"seconds\": {best:.3}, \"customers\": {}, \"orders\": {}, \"purchases\": {}}}",
        sizes.0, sizes.1, sizes.2
    );
    store.close().await;
    Ok(())
}
