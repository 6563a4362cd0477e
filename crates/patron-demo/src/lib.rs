//! A seeded generator of a believable retailer: people in several countries, each known to
//! one to three source systems with the dirt real exports have (formats, typos, missing and
//! invalid fields), a catalog, two years of seasonal orders driven by each person's latent
//! tastes, behavioural events and service tickets.
//!
//! It writes the canonical CSV files `patron import` reads, plus `truth.csv` mapping every
//! source record to the person it belongs to, so unification quality can be measured. The
//! same seed always gives the same files.

mod names;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use names::*;
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use std::io;
use std::path::{Path, PathBuf};

/// Generator settings.
#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    /// Number of real people.
    pub people: usize,
    /// Number of catalog products.
    pub products: usize,
    /// Random seed: the same seed gives the same data.
    pub seed: u64,
    /// Whether to generate orders and events (off for customer-only benchmarks).
    pub orders: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            people: 20_000,
            products: 1_000,
            seed: 42,
            orders: true,
        }
    }
}

/// A behavioural event of a known source user.
#[derive(Debug, Clone)]
pub struct DemoEvent {
    /// Unique, stable id.
    pub message_id: String,
    /// Source system.
    pub source: String,
    /// The user's id in that source.
    pub user_id: String,
    /// Event name.
    pub name: String,
    /// Product the event is about.
    pub product_id: String,
    /// When, ms since epoch.
    pub at_ms: i64,
}

/// A service ticket.
#[derive(Debug, Clone)]
pub struct DemoTicket {
    /// Ticket id in the help desk.
    pub ticket_ref: String,
    /// Source system of the customer.
    pub source: String,
    /// Customer id in that source.
    pub customer_source_id: String,
    /// Subject line.
    pub subject: String,
    /// Body text.
    pub body: String,
    /// `open`, `pending` or `closed`.
    pub status: String,
    /// `low`, `normal` or `high`.
    pub priority: String,
    /// Contact channel.
    pub channel: String,
    /// When, ms since epoch.
    pub at_ms: i64,
}

/// What the generator produced.
#[derive(Debug)]
pub struct DemoData {
    /// `customers.csv`.
    pub customers_csv: PathBuf,
    /// `products.csv`.
    pub products_csv: PathBuf,
    /// `orders.csv`.
    pub orders_csv: PathBuf,
    /// `truth.csv`: source, source_id, person.
    pub truth_csv: PathBuf,
    /// Customer rows written.
    pub customer_rows: usize,
    /// Order lines written.
    pub order_lines: usize,
    /// Events.
    pub events: Vec<DemoEvent>,
    /// Tickets.
    pub tickets: Vec<DemoTicket>,
}

struct Person {
    country: &'static str,
    first: String,
    last: String,
    /// The name as a Chinese customer writes it in Chinese systems, if any.
    hanzi: Option<String>,
    email: String,
    phone_national: String,
    gender: &'static str,
    birth: NaiveDate,
    city: &'static str,
    /// Source records: (source, source_id).
    records: Vec<(&'static str, String)>,
    /// Preferred categories with weights.
    tastes: Vec<(usize, f64)>,
    /// Mean orders over the window.
    activity: f64,
    /// First active day offset and active span in days.
    start: i64,
    span: i64,
}

const SOURCES: &[&str] = &["web", "app", "pos", "wechat", "marketplace"];
const WINDOW_DAYS: i64 = 730;

fn window_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 11, 1).expect("valid date")
}

fn pick<'a, T: ?Sized>(rng: &mut impl Rng, items: &'a [&'a T]) -> &'a T {
    items[rng.gen_range(0..items.len())]
}

fn lookup<T: Copy>(table: &[(&str, T)], key: &str) -> T {
    table.iter().find(|(k, _)| *k == key).expect("known key").1
}

/// Generates the demo data set into `dir`.
pub fn generate(cfg: &DemoConfig, dir: &Path) -> io::Result<DemoData> {
    std::fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let people: Vec<Person> = (0..cfg.people).map(|i| person(&mut rng, i)).collect();
    let catalog = write_products(&mut rng, cfg.products, &dir.join("products.csv"))?;
    let customer_rows = write_customers(&mut rng, &people, dir)?;
    let buyers: &[Person] = if cfg.orders { &people } else { &[] };
    let (order_lines, events) = write_orders(&mut rng, buyers, &catalog, &dir.join("orders.csv"))?;
    let tickets = tickets(&mut rng, &people);
    Ok(DemoData {
        customers_csv: dir.join("customers.csv"),
        products_csv: dir.join("products.csv"),
        orders_csv: dir.join("orders.csv"),
        truth_csv: dir.join("truth.csv"),
        customer_rows,
        order_lines,
        events,
        tickets,
    })
}

fn person(rng: &mut ChaCha8Rng, i: usize) -> Person {
    let countries = ["CN", "US", "GB", "DE", "FR", "JP", "SG", "AU"];
    let weights = [40, 20, 10, 10, 5, 5, 5, 5];
    let country = countries[WeightedIndex::new(weights).expect("weights").sample(rng)];
    let gender = if rng.gen_bool(0.5) { "F" } else { "M" };
    let (first, last, hanzi) = match country {
        "CN" | "SG" if country == "CN" || rng.gen_bool(0.6) => {
            let (sh, sp) = CN_SURNAMES[rng.gen_range(0..CN_SURNAMES.len())];
            let n = if rng.gen_bool(0.6) { 2 } else { 1 };
            let given: Vec<(&str, &str)> = (0..n)
                .map(|_| CN_GIVEN[rng.gen_range(0..CN_GIVEN.len())])
                .collect();
            let gh: String = given.iter().map(|g| g.0).collect();
            let gp: String = given.iter().map(|g| g.1.to_lowercase()).collect::<String>();
            let gp = capitalize(&gp);
            (gp, sp.to_owned(), Some(format!("{sh}{gh}")))
        }
        "DE" => (
            pick(rng, DE_FIRST).to_owned(),
            pick(rng, DE_LAST).to_owned(),
            None,
        ),
        "FR" => (
            pick(rng, FR_FIRST).to_owned(),
            pick(rng, FR_LAST).to_owned(),
            None,
        ),
        "JP" => (
            pick(rng, JP_FIRST).to_owned(),
            pick(rng, JP_LAST).to_owned(),
            None,
        ),
        _ => (
            pick(rng, EN_FIRST).to_owned(),
            pick(rng, EN_LAST).to_owned(),
            None,
        ),
    };
    let local = ascii_fold(&format!("{}.{}{}", first, last, rng.gen_range(1..999))).to_lowercase();
    let email = format!("{local}@{}", pick(rng, lookup(DOMAINS, country)));
    let n_records = *[1, 1, 1, 1, 1, 1, 2, 2, 2, 3]
        .choose(rng)
        .expect("non-empty");
    let mut sources: Vec<&'static str> = SOURCES.to_vec();
    sources.shuffle(rng);
    if country == "CN" {
        // WeChat is where Chinese customers are found first.
        sources.retain(|s| *s != "wechat");
        sources.insert(0, "wechat");
    } else {
        sources.retain(|s| *s != "wechat");
    }
    let records = sources
        .into_iter()
        .take(n_records)
        .map(|s| (s, source_id(rng, s, i)))
        .collect();
    let n_tastes = rng.gen_range(1..=3);
    let tastes = (0..n_tastes)
        .map(|_| (rng.gen_range(0..CATEGORIES.len()), rng.gen_range(0.2..1.0)))
        .collect();
    // A few heavy buyers, many occasional ones, some who never buy.
    let activity = if rng.gen_bool(0.12) {
        0.0
    } else {
        (rng.gen::<f64>().powf(2.2) * 70.0) + 1.5
    };
    let start = rng.gen_range(0..WINDOW_DAYS - 30);
    let span = rng.gen_range(30..=WINDOW_DAYS - start);
    Person {
        phone_national: national_phone(rng, country),
        country,
        first,
        last,
        hanzi,
        email,
        gender,
        birth: NaiveDate::from_ymd_opt(
            rng.gen_range(1950..2006),
            rng.gen_range(1..=12),
            rng.gen_range(1..=28),
        )
        .expect("valid date"),
        city: pick(rng, lookup(CITIES, country)),
        records,
        tastes,
        activity,
        start,
        span,
    }
}

fn source_id(rng: &mut ChaCha8Rng, source: &str, i: usize) -> String {
    match source {
        "web" => format!("W{:07}", i * 7 + 3),
        "app" => format!("A-{:06}", i),
        "pos" => format!("P{:08}", i * 13 + 1),
        "wechat" => format!(
            "o{}",
            (0..20)
                .map(
                    |_| *b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
                        .choose(rng)
                        .expect("non-empty") as char
                )
                .collect::<String>()
        ),
        _ => format!("MK{}", 100_000 + i),
    }
}

/// A valid national number for the country, as digits without the trunk prefix.
fn national_phone(rng: &mut ChaCha8Rng, country: &str) -> String {
    let digits = |rng: &mut ChaCha8Rng, n: usize| {
        (0..n)
            .map(|_| char::from(b'0' + rng.gen_range(0..10)))
            .collect::<String>()
    };
    match country {
        "CN" => format!(
            "{}{}",
            ["138", "139", "150", "186", "188", "137", "158"]
                .choose(rng)
                .expect("non-empty"),
            digits(rng, 8)
        ),
        "US" => format!(
            "{}{}{}",
            ["415", "212", "646", "312", "206", "713"]
                .choose(rng)
                .expect("non-empty"),
            rng.gen_range(200..999),
            digits(rng, 4)
        ),
        // Mobile ranges libphonenumber accepts: not UK pagers (76), French 69x, Japanese 900.
        "GB" => format!(
            "7{}{}",
            [1, 2, 3, 4, 5, 7, 8, 9].choose(rng).expect("non-empty"),
            digits(rng, 8)
        ),
        "DE" => format!("15{}{}", rng.gen_range(1..=2), digits(rng, 8)),
        "FR" => format!(
            "6{}{}",
            [0, 1, 2, 4, 5, 6, 7, 8].choose(rng).expect("non-empty"),
            digits(rng, 7)
        ),
        "JP" => format!("90{}{}", rng.gen_range(1..=9), digits(rng, 7)),
        "SG" => format!(
            "{}{}{}",
            rng.gen_range(8..=9),
            rng.gen_range(1..=8),
            digits(rng, 6)
        ),
        _ => format!("4{}{}", rng.gen_range(0..=3), digits(rng, 7)),
    }
}

fn calling_code(country: &str) -> &'static str {
    match country {
        "CN" => "86",
        "US" => "1",
        "GB" => "44",
        "DE" => "49",
        "FR" => "33",
        "JP" => "81",
        "SG" => "65",
        _ => "61",
    }
}

/// The phone as one source writes it: international, national, with `00`, spaced, dashed.
fn phone_variant(rng: &mut ChaCha8Rng, p: &Person) -> String {
    let cc = calling_code(p.country);
    let n = &p.phone_national;
    let trunk = if matches!(p.country, "US" | "SG" | "CN") {
        ""
    } else {
        "0"
    };
    match rng.gen_range(0..6) {
        0 => format!("+{cc}{n}"),
        1 => format!("+{cc} {}", spaced(n)),
        2 => format!("00{cc}{n}"),
        3 if p.country == "CN" => format!("(+86){n}"),
        4 => format!("{trunk}{}", spaced(n)),
        _ => format!(
            "{trunk}{}",
            n.chars()
                .collect::<Vec<_>>()
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        ),
    }
}

fn spaced(n: &str) -> String {
    let c: Vec<char> = n.chars().collect();
    let (a, rest) = c.split_at(3.min(c.len()));
    let (b, d) = rest.split_at(4.min(rest.len()));
    [a, b, d]
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn ascii_fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ä' => 'a',
            'ö' => 'o',
            'ü' => 'u',
            'é' | 'è' | 'É' => 'e',
            'ï' => 'i',
            'ë' => 'e',
            'Ä' => 'A',
            'Ö' => 'O',
            'Ü' => 'U',
            'ç' => 'c',
            'ß' => 's',
            c => c,
        })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect()
}

fn typo(rng: &mut ChaCha8Rng, s: &str) -> String {
    let mut c: Vec<char> = s.chars().collect();
    if c.len() > 3 {
        let i = rng.gen_range(1..c.len() - 1);
        c.swap(i, i + 1);
    }
    c.into_iter().collect()
}

fn write_customers(rng: &mut ChaCha8Rng, people: &[Person], dir: &Path) -> io::Result<usize> {
    let mut w = csv::Writer::from_path(dir.join("customers.csv"))?;
    let mut truth = csv::Writer::from_path(dir.join("truth.csv"))?;
    truth.write_record(["source", "source_id", "person"])?;
    w.write_record([
        "source",
        "source_id",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "gender",
        "birth_date",
        "address_line1",
        "city",
        "postal_code",
        "country",
        "created_at",
        "loyalty_tier",
        "tags",
        "accepts_marketing",
        "sms_opt_in",
        "wechat_opt_in",
    ])?;
    let mut rows = 0;
    for (pi, p) in people.iter().enumerate() {
        for (source, sid) in &p.records {
            truth.write_record([source, sid.as_str(), &pi.to_string()])?;
            let (mut name, mut first, mut last) = (String::new(), String::new(), String::new());
            match (&p.hanzi, rng.gen_range(0..4)) {
                (Some(h), 0..=1) => name = h.clone(),
                (Some(_), 2) => name = format!("{} {}", p.last.to_uppercase(), p.first),
                (_, 3) if *source != "pos" => {
                    first = p.first.clone();
                    last = p.last.clone();
                }
                _ => name = format!("{} {}", p.first, p.last),
            }
            if rng.gen_bool(0.03) {
                name = typo(rng, &name);
            }
            if rng.gen_bool(0.15) {
                name = format!("  {}  ", name.to_lowercase());
            }
            // Stores and WeChat often lack an email; the web shop always has one.
            let has_email = match *source {
                "web" | "app" => true,
                "pos" => rng.gen_bool(0.3),
                _ => rng.gen_bool(0.5),
            };
            let mut email = if has_email {
                let e = if rng.gen_bool(0.2) {
                    p.email.to_uppercase()
                } else {
                    p.email.clone()
                };
                if rng.gen_bool(0.1) {
                    format!(" {e} ")
                } else {
                    e
                }
            } else {
                String::new()
            };
            let mut phone = if rng.gen_bool(0.85) {
                phone_variant(rng, p)
            } else {
                String::new()
            };
            // The dirt that must be quarantined, not stored.
            match rng.gen_range(0..1000) {
                0..=9 => email = email.replace('@', " at "),
                10..=17 => phone = "12345".into(),
                18..=19 if !email.is_empty() => email = typo(rng, &email),
                _ => {}
            }
            let gender = match (p.gender, rng.gen_range(0..5)) {
                (_, 0) => "",
                ("F", 1) if p.country == "CN" => "女",
                ("M", 1) if p.country == "CN" => "男",
                ("F", 2) => "female",
                ("M", 2) => "male",
                (g, _) => g,
            };
            let b = p.birth;
            let birth = match rng.gen_range(0..8) {
                0 => String::new(),
                1 if p.country == "CN" => format!("{}年{}月{}日", b.year(), b.month(), b.day()),
                2 if p.country == "US" => b.format("%m/%d/%Y").to_string(),
                2 => b.format("%d/%m/%Y").to_string(),
                3 => b.format("%Y%m%d").to_string(),
                4 => format!("{}/{}/{}", b.year(), b.month(), b.day()),
                5 if rng.gen_bool(0.05) => format!("{}-02-30", b.year()),
                _ => b.to_string(),
            };
            let country = pick(rng, lookup(COUNTRY_SPELLINGS, p.country));
            let created = NaiveDateTime::new(window_start(), Default::default())
                + Duration::days(p.start)
                - Duration::days(rng.gen_range(0..400))
                + Duration::seconds(rng.gen_range(0..86_400));
            let sid = if rng.gen_bool(0.001) {
                String::new()
            } else {
                sid.clone()
            };
            let tier = ["", "silver", "gold"].choose(rng).expect("non-empty");
            let tags = match (*tier, rng.gen_range(0..10)) {
                ("gold", 0..=5) => "VIP",
                ("gold", 6) => "vip; Newsletter",
                (_, 0) => "newsletter",
                (_, 1) if *source == "pos" => "Wholesale",
                _ => "",
            };
            // Each channel's consent is stated by the sources that collect it, and not always.
            let mut flag = |asks: bool, yes: f64| match (asks, rng.gen_range(0.0..1.0)) {
                (false, _) => "",
                (true, x) if x < yes => ["yes", "true", "1"][(x * 1e6) as usize % 3],
                (true, x) if x < 0.9 => ["no", "false", "0"][(x * 1e6) as usize % 3],
                _ => "",
            };
            let email_consent = flag(matches!(*source, "web" | "app"), 0.55);
            let sms_consent = flag(*source == "pos", 0.4);
            let wechat_consent = flag(*source == "wechat", 0.5);
            w.write_record([
                *source,
                &sid,
                &name,
                &first,
                &last,
                &email,
                &phone,
                gender,
                &birth,
                &format!("{} Main Street", rng.gen_range(1..300)),
                p.city,
                &rng.gen_range(10_000..99_999).to_string(),
                if rng.gen_bool(0.03) { "" } else { country },
                &created.format("%Y-%m-%d %H:%M:%S").to_string(),
                tier,
                tags,
                email_consent,
                sms_consent,
                wechat_consent,
            ])?;
            rows += 1;
        }
    }
    w.flush()?;
    truth.flush()?;
    Ok(rows)
}

struct CatalogItem {
    id: String,
    category: usize,
    price_cents: i64,
}

fn write_products(rng: &mut ChaCha8Rng, n: usize, path: &Path) -> io::Result<Vec<CatalogItem>> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "product_id",
        "sku",
        "name",
        "category",
        "brand",
        "price",
        "currency",
        "active",
    ])?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % CATEGORIES.len();
        let (cat, brands, typical) = CATEGORIES[c];
        let brand = pick(rng, brands);
        let noun = pick(rng, lookup(NOUNS, cat));
        let name = format!("{brand} {} {noun}", pick(rng, ADJECTIVES));
        let price =
            (typical * (rng.gen::<f64>() * 1.2 + 0.4) * 100.0).round() as i64 / 100 * 100 - 1;
        let id = format!("P{:05}", i + 1);
        w.write_record([
            id.as_str(),
            &format!("SKU-{}-{:05}", &cat[..3].to_uppercase(), i + 1),
            &name,
            cat,
            brand,
            &format!("{}.{:02}", price / 100, price % 100),
            "USD",
            if rng.gen_bool(0.03) { "false" } else { "true" },
        ])?;
        out.push(CatalogItem {
            id,
            category: c,
            price_cents: price,
        });
    }
    w.flush()?;
    Ok(out)
}

/// Relative order volume per month: the November–December peak and China's mid-year 618.
const MONTH_WEIGHT: [f64; 12] = [
    0.9, 0.75, 0.9, 0.95, 1.0, 1.25, 0.95, 0.9, 1.0, 1.05, 1.6, 1.8,
];

fn write_orders(
    rng: &mut ChaCha8Rng,
    people: &[Person],
    catalog: &[CatalogItem],
    path: &Path,
) -> io::Result<(usize, Vec<DemoEvent>)> {
    let mut by_category: Vec<Vec<usize>> = vec![Vec::new(); CATEGORIES.len()];
    for (i, item) in catalog.iter().enumerate() {
        by_category[item.category].push(i);
    }
    let mut w = csv::Writer::from_path(path)?;
    w.write_record([
        "source",
        "order_id",
        "customer_source_id",
        "placed_at",
        "status",
        "currency",
        "product_id",
        "quantity",
        "unit_price",
    ])?;
    let mut lines = 0;
    let mut events = Vec::new();
    let mut order_no = 0u64;
    for p in people {
        if p.activity == 0.0 {
            continue;
        }
        let n_orders = poisson(rng, p.activity * p.span as f64 / WINDOW_DAYS as f64).max(1);
        let taste_weights: Vec<f64> = p.tastes.iter().map(|t| t.1).collect();
        let taste = WeightedIndex::new(&taste_weights).expect("positive weights");
        for _ in 0..n_orders {
            let day = loop {
                let d = p.start + rng.gen_range(0..p.span);
                let date = window_start() + Duration::days(d);
                if rng.gen::<f64>() * 1.8 < MONTH_WEIGHT[date.month0() as usize] {
                    break date;
                }
            };
            let at = NaiveDateTime::new(day, Default::default())
                + Duration::seconds(rng.gen_range(8 * 3600..23 * 3600));
            let (source, sid) = p.records.choose(rng).expect("at least one record");
            order_no += 1;
            let order_id = format!("{}-{order_no:07}", &source[..2].to_uppercase());
            let status = match rng.gen_range(0..100) {
                0..=2 => "refunded",
                3..=4 => "cancelled",
                _ => "completed",
            };
            let n_lines = 1 + poisson(rng, 1.5);
            for _ in 0..n_lines {
                let cat = if rng.gen_bool(0.85) {
                    p.tastes[taste.sample(rng)].0
                } else {
                    rng.gen_range(0..CATEGORIES.len())
                };
                let items = &by_category[cat];
                // Zipf-like popularity inside a category.
                let k = ((rng.gen::<f64>().powf(2.5)) * items.len() as f64) as usize;
                let item = &catalog[items[k.min(items.len() - 1)]];
                let qty = if rng.gen_bool(0.85) {
                    1
                } else {
                    rng.gen_range(2..5)
                };
                w.write_record([
                    *source,
                    order_id.as_str(),
                    sid.as_str(),
                    &format!("{}+00:00", at.format("%Y-%m-%dT%H:%M:%S")),
                    status,
                    "USD",
                    &item.id,
                    &qty.to_string(),
                    &format!("{}.{:02}", item.price_cents / 100, item.price_cents % 100),
                ])?;
                lines += 1;
                if matches!(*source, "web" | "app") && rng.gen_bool(0.5) {
                    events.push(DemoEvent {
                        message_id: format!("demo-{}", events.len()),
                        source: (*source).to_owned(),
                        user_id: sid.clone(),
                        name: if rng.gen_bool(0.7) {
                            "Product Viewed"
                        } else {
                            "Product Added"
                        }
                        .to_owned(),
                        product_id: item.id.clone(),
                        at_ms: (at - Duration::minutes(rng.gen_range(1..600)))
                            .and_utc()
                            .timestamp_millis(),
                    });
                }
            }
        }
    }
    w.flush()?;
    Ok((lines, events))
}

fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    // Knuth's method; means here are small.
    let l = (-mean.min(60.0)).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.gen::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

fn tickets(rng: &mut ChaCha8Rng, people: &[Person]) -> Vec<DemoTicket> {
    let n = (people.len() / 60).max(1);
    (0..n)
        .map(|i| {
            let p = &people[rng.gen_range(0..people.len())];
            let (source, sid) = p.records.choose(rng).expect("at least one record");
            let day = window_start() + Duration::days(rng.gen_range(0..WINDOW_DAYS));
            let subject = *TICKET_SUBJECTS.choose(rng).expect("non-empty");
            DemoTicket {
                ticket_ref: format!("T{:05}", i + 1),
                source: (*source).to_owned(),
                customer_source_id: sid.clone(),
                subject: subject.to_owned(),
                body: format!(
                    "Hello, this is {} {}. {subject} Please call me back.",
                    p.first, p.last
                ),
                status: ["open", "pending", "closed", "closed"]
                    .choose(rng)
                    .expect("non-empty")
                    .to_string(),
                priority: ["low", "normal", "normal", "high"]
                    .choose(rng)
                    .expect("non-empty")
                    .to_string(),
                channel: ["email", "chat", "phone", "wechat"]
                    .choose(rng)
                    .expect("non-empty")
                    .to_string(),
                at_ms: NaiveDateTime::new(day, Default::default())
                    .and_utc()
                    .timestamp_millis(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_files() {
        let cfg = DemoConfig {
            people: 300,
            products: 50,
            seed: 7,
            orders: true,
        };
        let (a, b) = (tempfile_dir("a"), tempfile_dir("b"));
        generate(&cfg, &a).unwrap();
        generate(&cfg, &b).unwrap();
        for f in ["customers.csv", "orders.csv", "products.csv", "truth.csv"] {
            assert_eq!(
                std::fs::read(a.join(f)).unwrap(),
                std::fs::read(b.join(f)).unwrap(),
                "{f}"
            );
        }
        let other = tempfile_dir("c");
        generate(&DemoConfig { seed: 8, ..cfg }, &other).unwrap();
        assert_ne!(
            std::fs::read(a.join("customers.csv")).unwrap(),
            std::fs::read(other.join("customers.csv")).unwrap()
        );
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("patron-demo-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
