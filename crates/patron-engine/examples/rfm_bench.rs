//! The engine's side of the RFM benchmark (bench/rfm/run.sh).
//!
//! `rfm_bench generate FILE CUSTOMERS LINES` writes synthetic order lines
//! (`order_id,customer_id,day,amount`, amounts in cents) with skewed purchase counts;
//! `rfm_bench run FILE` reads them, builds the snapshot the store hands the engine (one row
//! per order, lines summed), then times RFM and five rule segments on it and prints JSON.

use patron_engine::rfm::{self, Order};
use patron_engine::rules::{self, Column};
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::time::Instant;

fn generate(path: &str, customers: u32, lines: u64) -> std::io::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "order_id,customer_id,day,amount")?;
    let (mut written, mut order) = (0u64, 0u64);
    while written < lines {
        // Skewed activity: most customers buy rarely, a few often.
        let customer = (rng.gen::<f64>().powi(2) * f64::from(customers)) as u32;
        let day = 19_000 + rng.gen_range(0..730);
        let n = rng.gen_range(1..=5u64).min(lines - written);
        for _ in 0..n {
            let amount = (rng.gen::<f64>() * 8.0).exp() as i64 + 100;
            writeln!(out, "{order},{customer},{day},{amount}")?;
        }
        written += n;
        order += 1;
    }
    out.flush()
}

/// Groups order lines (order id, customer, day, amount) into orders, amounts summed.
fn orders_of(lines: &[(u64, u32, i32, i64)]) -> Vec<Order> {
    let mut orders: HashMap<u64, Order> = HashMap::with_capacity(lines.len() / 2);
    for &(id, customer, day, amount) in lines {
        let o = orders.entry(id).or_insert(Order {
            customer,
            day,
            amount: 0,
        });
        o.amount += amount;
    }
    orders.into_values().collect()
}

/// RFM and five rule segments over `orders`; returns the members of each segment.
fn rfm_and_segments(orders: &[Order], customers: usize) -> (Vec<rfm::Rfm>, Vec<usize>) {
    let as_of = orders.iter().map(|o| o.day).max().unwrap_or(0) + 1;
    let scored = rfm::rfm(orders, customers, as_of, &rfm::RfmConfig::default());
    let buyers: Vec<rfm::Rfm> = scored.into_iter().flatten().collect();
    let num = |f: fn(&rfm::Rfm) -> f64| Column::Number(buyers.iter().map(|r| Some(f(r))).collect());
    let table = HashMap::from([
        (
            "days_since_last_order".to_owned(),
            num(|r| f64::from(r.recency_days)),
        ),
        ("orders".to_owned(), num(|r| f64::from(r.frequency))),
        ("total_spent".to_owned(), num(|r| r.monetary as f64 / 100.0)),
        ("r".to_owned(), num(|r| f64::from(r.r))),
        ("f".to_owned(), num(|r| f64::from(r.f))),
        (
            "rfm_segment".to_owned(),
            Column::Text(buyers.iter().map(|r| Some(r.segment.clone())).collect()),
        ),
    ]);
    let schema = rules::schema(&table);
    let segments = [
        "total_spent > 500 and days_since_last_order <= 30",
        "rfm_segment in ('At Risk', 'Can''t Lose Them')",
        "orders >= 5 or total_spent > 2000",
        "r >= 4 and f >= 4",
        "not rfm_segment = 'Lost' and days_since_last_order > 180",
    ];
    let members = segments
        .iter()
        .map(|s| {
            let rule = rules::parse(s, &schema).expect("valid rule");
            rules::evaluate(&rule, &table, buyers.len())
                .iter()
                .filter(|m| **m)
                .count()
        })
        .collect();
    (buyers, members)
}

fn run(path: &str) -> std::io::Result<()> {
    // Not timed: reading the file stands for the store's snapshot load.
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut lines = Vec::new();
    let mut customers = 0u32;
    for line in file.lines().skip(1) {
        let line = line?;
        let f: Vec<&str> = line.split(',').collect();
        let customer: u32 = f[1].parse().unwrap_or(0);
        customers = customers.max(customer + 1);
        lines.push((
            f[0].parse().unwrap_or(0),
            customer,
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
        ));
    }
    let best = |f: &dyn Fn() -> (Vec<rfm::Rfm>, Vec<usize>)| {
        (0..3)
            .map(|_| {
                let start = Instant::now();
                let out = f();
                (start.elapsed().as_secs_f64(), out)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .expect("three runs")
    };
    let orders = orders_of(&lines);
    let (snapshot_s, (buyers, members)) = best(&|| rfm_and_segments(&orders, customers as usize));
    let (lines_s, _) = best(&|| rfm_and_segments(&orders_of(&lines), customers as usize));
    println!(
        "{{\"lines\": {}, \"orders\": {}, \"buyers\": {}, \"seconds_rfm_and_segments\": {snapshot_s:.4}, \"seconds_from_lines\": {lines_s:.4}, \"segment_members\": {members:?}, \"r_sum\": {}}}",
        lines.len(),
        orders.len(),
        buyers.len(),
        buyers.iter().map(|r| u64::from(r.r)).sum::<u64>()
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") if args.len() == 5 => generate(
            &args[2],
            args[3].parse().expect("CUSTOMERS"),
            args[4].parse().expect("LINES"),
        ),
        Some("run") if args.len() == 3 => run(&args[2]),
        _ => {
            eprintln!("usage: rfm_bench generate FILE CUSTOMERS LINES | rfm_bench run FILE");
            std::process::exit(2)
        }
    }
}
