//! Collect: read a CSV file of customers, orders or products, clean every row, and store the
//! good ones and quarantine the bad ones, batch by batch so memory stays bounded.

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use patron_domain::{
    clean_customer, clean_order_line, clean_product, CleanConfig, RawRow, RowError,
    CUSTOMER_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS,
};
use patron_store::{QuarantineEntry, RecordBatch, Store};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Rows cleaned and written per transaction.
const BATCH_ROWS: usize = 5_000;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// Customer records.
    Customers,
    /// Order lines.
    Orders,
    /// Catalog products.
    Products,
}

impl ImportKind {
    /// The kind's name as used on the command line and in quarantine entries.
    pub fn name(self) -> &'static str {
        match self {
            ImportKind::Customers => "customers",
            ImportKind::Orders => "orders",
            ImportKind::Products => "products",
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            ImportKind::Customers => CUSTOMER_COLUMNS,
            ImportKind::Orders => ORDER_COLUMNS,
            ImportKind::Products => PRODUCT_COLUMNS,
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            ImportKind::Customers => &["source", "source_id"],
            ImportKind::Orders => &[
                "source",
                "order_id",
                "customer_source_id",
                "placed_at",
                "currency",
                "product_id",
                "quantity",
                "unit_price",
            ],
            ImportKind::Products => &["product_id", "name"],
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportSummary {
    /// Data rows read.
    pub read: u64,
    /// Rows stored (possibly with some fields dropped).
    pub stored: u64,
    /// Rows rejected whole.
    pub rejected: u64,
    /// Stored rows that lost at least one bad field.
    pub with_field_issues: u64,
    /// Quarantined values per field.
    pub quarantined_by_field: BTreeMap<String, u64>,
    /// Header columns Patron does not know, ignored.
    pub unknown_columns: Vec<String>,
}

/// One cleaned row, ready for the batch.
enum Cleaned {
    Customer(
        Box<patron_domain::CustomerRecord>,
        String,
        Vec<patron_domain::FieldIssue>,
    ),
    Order(patron_domain::OrderLine),
    Product(patron_domain::Product),
    Rejected(RowError, String),
}

/// Imports one CSV file. Fails only for problems with the file as a whole (unreadable, no
/// header, a required column missing, a database error); bad rows are quarantined and counted.
pub async fn import_file(
    store: &Store,
    kind: ImportKind,
    path: &Path,
    clean: &CleanConfig,
    progress: &ProgressBar,
) -> anyhow::Result<ImportSummary> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    progress.set_length(size);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(progress.wrap_read(file));
    let header = reader
        .byte_headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .clone();
    let header: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = String::from_utf8_lossy(h);
            // A UTF-8 byte-order mark is common in spreadsheet exports.
            let h = if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                &h
            };
            h.trim().to_lowercase()
        })
        .collect();
    if header.iter().all(String::is_empty) {
        bail!("{}: the file is empty or has no header row", path.display());
    }
    let known = kind.columns();
    let mut summary = ImportSummary {
        unknown_columns: header
            .iter()
            .filter(|h| !known.contains(&h.as_str()))
            .cloned()
            .collect(),
        ..ImportSummary::default()
    };
    for required in kind.required() {
        if !header.iter().any(|h| h == required) {
            bail!(
                "{}: missing required column '{required}' for {} (columns found: {})",
                path.display(),
                kind.name(),
                header.join(", ")
            );
        }
    }
    if kind == ImportKind::Customers
        && !["name", "first_name", "last_name", "email", "phone"]
            .iter()
            .any(|c| header.iter().any(|h| h == c))
    {
        bail!(
            "{}: a customer file needs at least one of name, first_name, last_name, email, phone",
            path.display()
        );
    }
    // Canonical column per header position, `None` for unknown columns.
    let columns: Vec<Option<&'static str>> = header
        .iter()
        .map(|h| known.iter().copied().find(|k| k == h))
        .collect();
    let file_name = path.display().to_string();
    let mut line_numbers: HashMap<(String, String), i64> = HashMap::new();
    let mut row_no: i64 = 0;
    let mut records = reader.byte_records();
    loop {
        let mut chunk = Vec::with_capacity(BATCH_ROWS);
        for rec in records.by_ref().take(BATCH_ROWS) {
            row_no += 1;
            chunk.push((row_no, rec));
        }
        if chunk.is_empty() {
            break;
        }
        let cleaned: Vec<(i64, Result<Cleaned, Unparsable>)> = chunk
            .into_par_iter()
            .map(|(n, rec)| (n, clean_row(kind, &header, &columns, rec, clean)))
            .collect();
        let mut batch = RecordBatch::default();
        for (n, c) in cleaned {
            summary.read += 1;
            let entry = |field: &str,
                         value: Option<String>,
                         reason: String,
                         whole: bool,
                         raw: Option<String>| {
                QuarantineEntry {
                    kind: kind.name(),
                    file: file_name.clone(),
                    row_no: n,
                    source: None,
                    source_id: None,
                    field: field.to_owned(),
                    value,
                    reason,
                    whole_row: whole,
                    raw,
                }
            };
            match c {
                Err(Unparsable { reason, raw }) => {
                    summary.rejected += 1;
                    *summary
                        .quarantined_by_field
                        .entry("(row)".into())
                        .or_default() += 1;
                    batch
                        .quarantine
                        .push(entry("(row)", None, reason, true, raw));
                }
                Ok(Cleaned::Rejected(e, raw)) => {
                    summary.rejected += 1;
                    *summary
                        .quarantined_by_field
                        .entry(e.field.into())
                        .or_default() += 1;
                    batch
                        .quarantine
                        .push(entry(e.field, Some(e.value), e.reason, true, Some(raw)));
                }
                Ok(Cleaned::Customer(rec, raw, issues)) => {
                    summary.stored += 1;
                    if !issues.is_empty() {
                        summary.with_field_issues += 1;
                    }
                    for i in issues {
                        *summary
                            .quarantined_by_field
                            .entry(i.field.into())
                            .or_default() += 1;
                        let mut q = entry(i.field, Some(i.value), i.reason, false, None);
                        q.source = Some(rec.source.clone());
                        q.source_id = Some(rec.source_id.clone());
                        batch.quarantine.push(q);
                    }
                    batch.customers.push((*rec, raw));
                }
                Ok(Cleaned::Order(line)) => {
                    summary.stored += 1;
                    let counter = line_numbers
                        .entry((line.source.clone(), line.order_id.clone()))
                        .or_default();
                    *counter += 1;
                    batch.order_lines.push((line, *counter));
                }
                Ok(Cleaned::Product(p)) => {
                    summary.stored += 1;
                    batch.products.push(p);
                }
            }
        }
        store
            .write_batch(batch)
            .await
            .with_context(|| format!("{}: cannot store rows up to {row_no}", path.display()))?;
    }
    progress.finish_and_clear();
    Ok(summary)
}

/// A row that could not even be read as text.
struct Unparsable {
    reason: String,
    raw: Option<String>,
}

fn clean_row(
    kind: ImportKind,
    header: &[String],
    columns: &[Option<&'static str>],
    rec: csv::Result<csv::ByteRecord>,
    clean: &CleanConfig,
) -> Result<Cleaned, Unparsable> {
    let rec = rec.map_err(|e| Unparsable {
        reason: format!("malformed CSV: {e}"),
        raw: None,
    })?;
    let lossy = || {
        Some(
            rec.iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    if rec.len() != header.len() {
        return Err(Unparsable {
            reason: format!("{} fields where the header has {}", rec.len(), header.len()),
            raw: lossy(),
        });
    }
    let mut values = Vec::with_capacity(rec.len());
    for f in rec.iter() {
        values.push(std::str::from_utf8(f).map_err(|_| Unparsable {
            reason: "not valid UTF-8".into(),
            raw: lossy(),
        })?);
    }
    let row = RawRow::new(
        columns
            .iter()
            .zip(&values)
            .filter_map(|(c, v)| c.map(|c| (c, *v)))
            .collect(),
    );
    // The raw row as header → value, kept with stored records (lineage) and rejected rows
    // (so they can be fixed and re-submitted).
    let raw = || {
        let map: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(&values)
            .map(|(h, v)| (h.clone(), serde_json::Value::from(*v)))
            .collect();
        serde_json::Value::Object(map).to_string()
    };
    let cleaned = match kind {
        ImportKind::Customers => clean_customer(&row, clean)
            .map(|(r, issues)| Cleaned::Customer(Box::new(r), raw(), issues)),
        ImportKind::Orders => clean_order_line(&row).map(Cleaned::Order),
        ImportKind::Products => clean_product(&row).map(Cleaned::Product),
    };
    Ok(cleaned.unwrap_or_else(|e| Cleaned::Rejected(e, raw())))
}
