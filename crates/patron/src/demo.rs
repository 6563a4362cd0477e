//! `patron demo`: generate a retailer, run the whole pipeline on it, and serve it.

use crate::cli::{import, run_and_report, serve_until_stopped, Config, ServeArgs};
use patron_demo::{generate, DemoConfig};
use patron_domain::Role;
use patron_pipeline::{ImportKind, ReadOptions, Stage};
use patron_store::{NewEvent, NewTicket};
use rand::Rng;

/// A random 20-character password from an unambiguous alphabet.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// What `patron demo` was asked to do.
pub struct DemoOptions {
    pub people: usize,
    pub seed: u64,
    pub orders: bool,
    /// Write the files here and stop.
    pub generate_only: Option<std::path::PathBuf>,
    /// Serve afterwards.
    pub serve: Option<ServeArgs>,
}

pub async fn run(cfg: &Config, opts: DemoOptions) -> anyhow::Result<()> {
    let DemoOptions {
        people,
        seed,
        orders,
        generate_only,
        serve,
    } = opts;
    let dir = generate_only
        .clone()
        .unwrap_or_else(|| cfg.store.data_dir.join("demo"));
    let spinner =
        indicatif::ProgressBar::new_spinner().with_message(format!("generating {people} people"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let data = generate(
        &DemoConfig {
            people,
            seed,
            orders,
            ..DemoConfig::default()
        },
        &dir,
    )?;
    spinner.finish_and_clear();
    println!(
        "Generated {people} people: {} customer records, {} order lines, {} events, {} tickets in {}",
        data.customer_rows,
        data.order_lines,
        data.events.len(),
        data.tickets.len(),
        dir.display()
    );
    if generate_only.is_some() {
        return Ok(());
    }
    let store = cfg.open_store().await?;
    // Products first so order lines find their catalog entries; customers before orders.
    for (kind, path) in [
        (ImportKind::Products, &data.products_csv),
        (ImportKind::Customers, &data.customers_csv),
        (ImportKind::Orders, &data.orders_csv),
    ] {
        import(&store, cfg, kind, path, &ReadOptions::new(kind)).await?;
    }
    let events = data
        .events
        .into_iter()
        .map(|e| NewEvent {
            message_id: e.message_id,
            source: e.source,
            user_id: Some(e.user_id),
            anonymous_id: None,
            kind: "track".into(),
            name: Some(e.name),
            properties: Some(serde_json::json!({ "product_id": e.product_id }).to_string()),
            occurred_at: e.at_ms,
        })
        .collect();
    store.insert_events(events).await?;
    let tickets = data
        .tickets
        .into_iter()
        .map(|t| NewTicket {
            source: t.source,
            ticket_ref: t.ticket_ref,
            customer_source_id: t.customer_source_id,
            subject: t.subject,
            body: t.body,
            status: t.status,
            priority: t.priority,
            channel: t.channel,
            created_at: t.at_ms,
        })
        .collect();
    store.insert_tickets(tickets).await?;
    run_and_report(&store, cfg, &Stage::ALL).await?;
    let password = new_password();
    store.upsert_user("admin", &password, Role::Admin).await?;
    let key = store.create_api_key(Role::Admin, Some("demo")).await?;
    println!("Dashboard user: admin  password: {password}");
    println!("Admin API key:  {key}");
    match serve {
        Some(serve) => serve_until_stopped(cfg, store, &serve).await,
        None => {
            println!(
                "Data directory ready: {}. Start the server with: patron serve",
                cfg.store.data_dir.display()
            );
            store.close().await;
            Ok(())
        }
    }
}
