//! Collect: read a file of customers, orders or products (CSV or JSON Lines, gzip or not, any
//! usual encoding), clean every row, store the good ones and quarantine the bad ones, batch by
//! batch so memory stays bounded.

mod columns;
mod input;

pub use input::{open as open_input, Opened};
mod shopify;
mod truth;

pub use columns::ColumnMap;
pub use input::{parse_encoding, Format};
pub use truth::{read_truth, Truth, ENTITY_COLUMNS};

use anyhow::{bail, Context};
use indicatif::ProgressBar;
use patron_domain::{
    clean_customer, clean_order_line, clean_product, CleanConfig, RawRow, RowError,
    CUSTOMER_COLUMNS, ORDER_COLUMNS, PRODUCT_COLUMNS,
};
use patron_store::{QuarantineEntry, RecordBatch, Store};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::BufRead;
use std::path::Path;

/// Rows cleaned and written per transaction. The single writer is what bounds a large
/// import, and each commit writes again the pages the previous one wrote: at 1,000,000
/// customer rows 20,000 a transaction took 10.3–11.9 s against 12.6–12.9 s at 5,000 (peak
/// memory 400 MB against 265 MB); 50,000 was no faster and took 600 MB.
const BATCH_ROWS: usize = 20_000;

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
    /// Quarantined phones written without a country code in records without a country
    /// (read with a default region, they would be kept).
    pub phones_without_region: u64,
    /// Customer rows whose source and id an earlier row of the same file had: each replaced
    /// the earlier one, as a later import would.
    pub repeated_ids: u64,
    /// The first repeated `source:id`, to look for in the file.
    pub first_repeated_id: Option<String>,
    /// Rows rejected as not valid UTF-8 (a file in another encoding, read as UTF-8).
    pub not_utf8: u64,
    /// Header columns Patron does not know, ignored.
    pub unknown_columns: Vec<String>,
    /// Customer records taken from the buyers of an order export (Shopify).
    pub buyers: u64,
    /// Customers the order lines named that no customer record had, stored as records with
    /// their id alone so their orders reach a profile (`--customers-from-orders`).
    pub customers_known_by_id: u64,
    /// Customers the order lines named that no customer record has, left so: their orders
    /// wait for their record.
    pub customers_without_record: u64,
    /// How the file was read: format, delimiter, encoding, compression.
    pub read_as: String,
    /// Per field of the stored customer rows: how many had a value, how many values
    /// standardization changed, how many were quarantined.
    pub fields: BTreeMap<&'static str, FieldCounts>,
}

/// One field's counts in an import.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct FieldCounts {
    /// Rows with a value in the field.
    pub read: u64,
    /// Values changed by standardization and stored.
    pub fixed: u64,
    /// Values rejected and quarantined.
    pub quarantined: u64,
}

impl FieldCounts {
    /// Values stored (as given or fixed).
    pub fn stored(&self) -> u64 {
        self.read - self.quarantined
    }
}

/// How to read an input file.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Input column → canonical column.
    pub columns: ColumnMap,
    /// Forced text encoding; `None` detects it.
    pub encoding: Option<&'static encoding_rs::Encoding>,
    /// The source of rows without one of their own (a file without a `source` column).
    pub source: Option<String>,
    /// The currency of order lines and prices without one of their own (a file without a
    /// `currency` column), an ISO 4217 code.
    pub currency: Option<String>,
    /// How the file writes dates such as `01/02/2024` (`--date-order`).
    pub date_order: Option<patron_domain::DateOrder>,
    /// Whether each customer an orders file names without a customer record becomes a record
    /// of its own, holding its source and id alone (`--customers-from-orders`).
    pub customers_from_orders: bool,
}

impl ReadOptions {
    /// Canonical and commonly spelled columns, detected encoding.
    pub fn new(kind: ImportKind) -> ReadOptions {
        ReadOptions {
            columns: ColumnMap::new(kind, &[]).expect("no mappings cannot fail"),
            encoding: None,
            source: None,
            currency: None,
            date_order: None,
            customers_from_orders: false,
        }
    }

    /// The (column, value) pairs given on the command line for rows that lack them.
    fn supplied(&self) -> Vec<Supplied<'_>> {
        [("source", &self.source), ("currency", &self.currency)]
            .into_iter()
            .filter_map(|(c, v)| Some((c, v.as_deref()?)))
            .collect()
    }
}

/// A column's value given on the command line (`--source`, `--file-currency`) for the rows
/// of a file that have none.
type Supplied<'a> = (&'static str, &'a str);

/// One cleaned row, ready for the batch.
enum Cleaned {
    Customer(patron_store::PreparedCustomer, patron_domain::FieldReport),
    Order(patron_domain::OrderLine),
    Product(patron_domain::Product),
    /// The row's (source, id in the source), when it has them, so a fixed re-submission
    /// resolves the entry.
    Rejected(RowError, String, (Option<String>, Option<String>)),
}

/// One raw row as read, before any parsing.
enum RawItem {
    Csv(csv::Result<csv::ByteRecord>),
    Json(Vec<u8>),
    /// Rows of layouts that need reading in order (Shopify orders), mapped already.
    Mapped(Result<Vec<(ImportKind, InputRow)>, Unparsable>),
}

/// The rows of an opened file, in either format.
enum Rows {
    Csv {
        header: Vec<String>,
        columns: Vec<Option<&'static str>>,
        records: csv::ByteRecordsIntoIter<Box<dyn std::io::Read + Send>>,
    },
    Json(std::io::Split<std::io::BufReader<Box<dyn std::io::Read + Send>>>),
    Shopify {
        header: Vec<String>,
        layout: shopify::Layout,
        state: shopify::State,
        records: csv::ByteRecordsIntoIter<Box<dyn std::io::Read + Send>>,
        store: Store,
    },
}

impl Rows {
    /// The next `n` rows. A failure to read the file itself (a truncated gzip stream, a disk
    /// error) ends the import with an error: the rest of the file is not there to quarantine.
    fn next_chunk(&mut self, n: usize) -> std::io::Result<Vec<RawItem>> {
        fn io_error(rec: &csv::Result<csv::ByteRecord>) -> Option<std::io::Error> {
            match rec {
                Err(e) => match e.kind() {
                    csv::ErrorKind::Io(io) => Some(std::io::Error::new(io.kind(), io.to_string())),
                    _ => None,
                },
                Ok(_) => None,
            }
        }
        let mut items = Vec::with_capacity(n);
        match self {
            Rows::Csv { records, .. } => {
                for rec in records.by_ref().take(n) {
                    if let Some(e) = io_error(&rec) {
                        return Err(e);
                    }
                    items.push(RawItem::Csv(rec));
                }
            }
            Rows::Json(lines) => {
                for line in lines.by_ref().take(n) {
                    items.push(RawItem::Json(line?));
                }
            }
            Rows::Shopify {
                header,
                layout,
                state,
                records,
                store,
            } => {
                let pseudonym = |kind: &str, value: &str| pseudonym(store, kind, value);
                for rec in records.by_ref().take(n) {
                    if let Some(e) = io_error(&rec) {
                        return Err(e);
                    }
                    items.push(RawItem::Mapped(shopify_row(
                        header, *layout, state, rec, &pseudonym,
                    )));
                }
            }
        }
        Ok(items)
    }
}

/// Imports one file. Fails only for problems with the file as a whole (unreadable, no
/// header, a required column missing, a database error); bad rows are quarantined and counted.
pub async fn import_file(
    store: &Store,
    kind: ImportKind,
    path: &Path,
    opts: &ReadOptions,
    clean: &CleanConfig,
    progress: &ProgressBar,
) -> anyhow::Result<ImportSummary> {
    let clean = &CleanConfig {
        date_order: opts.date_order.or(clean.date_order),
        ..*clean
    };
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    progress.set_length(size);
    let opened = input::open(Box::new(progress.wrap_read(file)), opts.encoding)
        .with_context(|| format!("{}", path.display()))?;
    let mut summary = ImportSummary {
        read_as: format!(
            "{}, {}{}",
            match opened.format {
                Format::JsonLines => "JSON Lines".to_owned(),
                Format::Csv { delimiter: b'\t' } => "CSV (tab-separated)".to_owned(),
                Format::Csv { delimiter } => format!("CSV ('{}'-separated)", delimiter as char),
            },
            opened.encoding.name(),
            if opened.gzip { ", gzip" } else { "" }
        ),
        ..ImportSummary::default()
    };
    let mut rows = match opened.format {
        Format::JsonLines => Rows::Json(std::io::BufReader::new(opened.reader).split(b'\n')),
        Format::Csv { delimiter } => {
            let (reader, header) = csv_with_header(opened.reader, delimiter, path)?;
            if let Some(layout) = shopify::detect(kind, &header) {
                summary.read_as.push_str(match layout {
                    shopify::Layout::Customers => ", Shopify customer export",
                    shopify::Layout::Orders => ", Shopify order export",
                });
                Rows::Shopify {
                    header,
                    layout,
                    state: shopify::State::default(),
                    records: reader.into_byte_records(),
                    store: store.clone(),
                }
            } else {
                let columns = opts.columns.resolve_header(&header);
                check_columns(kind, &header, &columns, &opts.supplied())
                    .with_context(|| format!("{}", path.display()))?;
                summary.unknown_columns = header
                    .iter()
                    .zip(&columns)
                    .filter(|(h, c)| c.is_none() && !opts.columns.ignored(h))
                    .map(|(h, _)| h.clone())
                    .collect();
                Rows::Csv {
                    header,
                    columns,
                    records: reader.into_byte_records(),
                }
            }
        }
    };
    let mut row_no: i64 = 0;
    let mut read_chunk = |rows: &mut Rows| -> anyhow::Result<Vec<(i64, RawItem)>> {
        let items = rows.next_chunk(BATCH_ROWS).with_context(|| {
            format!(
                "{}: cannot read the file after row {row_no}",
                path.display()
            )
        })?;
        Ok(items
            .into_iter()
            .map(|item| {
                row_no += 1;
                (row_no, item)
            })
            .collect())
    };
    let (header, columns) = match &rows {
        Rows::Csv {
            header, columns, ..
        } => (header.clone(), columns.clone()),
        Rows::Json(_) | Rows::Shopify { .. } => (Vec::new(), Vec::new()),
    };
    // Three stages run at once: reading chunk N+1, cleaning chunk N on the rayon pool, and
    // writing earlier batches in file order on one task fed through a short queue, so that
    // neither core idles while the other reads or writes. The queue bounds memory.
    // The writer also turns cleaned rows into batches and counts them, off the cleaning path.
    let (to_writer, mut chunks) = tokio::sync::mpsc::channel::<(i64, Vec<CleanedRow>)>(2);
    let writer = {
        let store = store.clone();
        let mut assembler = Assembler {
            kind,
            file_name: path.display().to_string(),
            summary,
            unknown_keys: BTreeSet::new(),
            quantities: HashMap::new(),
            customer_ids: HashSet::new(),
            order_customers: (kind == ImportKind::Orders && !matches!(rows, Rows::Shopify { .. }))
                .then(HashSet::new),
        };
        tokio::spawn(async move {
            while let Some((upto, cleaned)) = chunks.recv().await {
                let batch = assembler.batch(cleaned);
                store.write_batch(batch).await.map_err(|e| (upto, e))?;
            }
            Ok::<_, (i64, patron_store::StoreError)>(assembler)
        })
    };
    let supplied = opts.supplied();
    let mut read_error = None;
    let mut next = read_chunk(&mut rows)?;
    while !next.is_empty() {
        let chunk = std::mem::take(&mut next);
        let upto = chunk.last().map_or(0, |(n, _)| *n);
        let clean_chunk = || -> Vec<CleanedRow> {
            chunk
                .into_par_iter()
                .filter_map(|(n, item)| {
                    let (rows, unknown) = match item {
                        RawItem::Csv(rec) => {
                            (csv_row(&header, rec).map(|r| vec![(kind, r)]), Vec::new())
                        }
                        RawItem::Json(line) => match String::from_utf8(line) {
                            // Blank lines between JSON objects are not rows.
                            Ok(l) if l.trim().is_empty() => return None,
                            Ok(l) => {
                                let (row, unknown) = json_row(&l, &opts.columns);
                                (row.map(|r| vec![(kind, r)]), unknown)
                            }
                            Err(e) => (
                                Err(Unparsable {
                                    reason: NOT_UTF8.into(),
                                    // Kept (lossily) so the line can be recognized and fixed.
                                    raw: Some(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                                }),
                                Vec::new(),
                            ),
                        },
                        RawItem::Mapped(rows) => (rows, Vec::new()),
                    };
                    let outcomes = match rows {
                        Ok(rows) => rows
                            .into_iter()
                            .map(|(k, r)| {
                                let read = (&header[..], &columns[..], &supplied[..]);
                                (k, Ok(clean_row(store, k, &r, read, clean)))
                            })
                            .collect(),
                        Err(e) => vec![(kind, Err(e))],
                    };
                    Some((n, outcomes, unknown))
                })
                .collect()
        };
        let (read, cleaned) = rayon::join(|| read_chunk(&mut rows), clean_chunk);
        // A file that fails part-way still has this chunk's rows stored before the error.
        match read {
            Ok(rows) => next = rows,
            Err(e) => read_error = Some(e),
        }
        if to_writer.send((upto, cleaned)).await.is_err() {
            // The writer stopped on an error, which joining it reports.
            break;
        }
    }
    drop(to_writer);
    let assembler = writer
        .await
        .context("the storage task stopped")?
        .map_err(|(upto, e)| {
            anyhow::Error::new(e).context(format!(
                "{}: cannot store rows up to {upto}",
                path.display()
            ))
        })?;
    if let Some(e) = read_error {
        return Err(e);
    }
    progress.finish_and_clear();
    let mut summary = assembler.summary;
    if let Some(customers) = assembler.order_customers {
        let absent: Vec<(String, String)> = store
            .customers_only_in_orders()
            .await?
            .into_iter()
            .filter(|(source, id)| customers.contains(&fxhash(&(source, id))))
            .collect();
        if opts.customers_from_orders {
            add_customers_known_by_id(store, &absent).await?;
            summary.customers_known_by_id = absent.len() as u64;
        } else {
            summary.customers_without_record = absent.len() as u64;
        }
    }
    // JSON rows name their own keys; report those no column matched, once.
    summary.unknown_columns.extend(assembler.unknown_keys);
    Ok(summary)
}

/// Set once records were made from orders (`--customers-from-orders`): only then is a
/// customer import worth checking for records it filled in.
pub const RECORDS_FROM_ORDERS_SETTING: &str = "records_from_orders";

/// Stores a record with its id alone for each of the `absent` customers (source, id) that
/// orders name and no customer record has (an orders-only export such as UCI's Online
/// Retail), so that their orders reach a profile. A customer file of the same source and ids
/// fills them in later; an existing record is never replaced.
async fn add_customers_known_by_id(
    store: &Store,
    absent: &[(String, String)],
) -> anyhow::Result<()> {
    for chunk in absent.chunks(10_000) {
        let batch = RecordBatch {
            absent_customers: chunk
                .iter()
                .map(|(source, id)| {
                    store.prepare_customer(
                        &patron_domain::CustomerRecord::known_by_id(source, id),
                        None,
                    )
                })
                .collect(),
            ..RecordBatch::default()
        };
        store.write_batch(batch).await?;
    }
    if !absent.is_empty() {
        store.put_setting(RECORDS_FROM_ORDERS_SETTING, b"1").await?;
    }
    Ok(())
}

/// A data row's number, what its cleaning produced (a Shopify order row may also yield its
/// buyer), and the JSON keys no column matched.
type CleanedRow = (
    i64,
    Vec<(ImportKind, Result<Cleaned, Unparsable>)>,
    Vec<String>,
);

/// Turns cleaned rows into write batches, counting them into the import's summary.
struct Assembler {
    kind: ImportKind,
    file_name: String,
    summary: ImportSummary,
    unknown_keys: BTreeSet<String>,
    /// Quantity per (source, order, product) so far in this file: a product listed twice in
    /// one order is one line with the summed quantity, even across batches.
    quantities: HashMap<(String, String, String), i64>,
    /// Hashes of the customer (source, id) pairs stored so far from this file.
    customer_ids: HashSet<u64>,
    /// Hashes of the customers (source, id) this file's order lines name, when the file says
    /// nothing else of them (not a Shopify export, whose buyers are records already or guests
    /// known by name only).
    order_customers: Option<HashSet<u64>>,
}

impl Assembler {
    fn batch(&mut self, cleaned: Vec<CleanedRow>) -> RecordBatch {
        let mut batch = RecordBatch::default();
        for (n, outcomes, unknown) in cleaned {
            self.unknown_keys.extend(unknown);
            self.summary.read += 1;
            for (row_kind, c) in outcomes {
                let entry = |field: &str,
                             value: Option<String>,
                             reason: String,
                             whole: bool,
                             raw: Option<String>| {
                    QuarantineEntry {
                        kind: row_kind.name(),
                        file: self.file_name.clone(),
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
                        self.summary.rejected += 1;
                        if reason == NOT_UTF8 {
                            self.summary.not_utf8 += 1;
                        }
                        *self
                            .summary
                            .quarantined_by_field
                            .entry("(row)".into())
                            .or_default() += 1;
                        batch
                            .quarantine
                            .push(entry("(row)", None, reason, true, raw));
                    }
                    Ok(Cleaned::Rejected(e, raw, (source, source_id))) => {
                        self.summary.rejected += 1;
                        *self
                            .summary
                            .quarantined_by_field
                            .entry(e.field.into())
                            .or_default() += 1;
                        let mut q = entry(e.field, Some(e.value), e.reason, true, Some(raw));
                        q.source = source;
                        q.source_id = source_id;
                        batch.quarantine.push(q);
                    }
                    Ok(Cleaned::Customer(rec, report)) => {
                        // A buyer taken from an order export is not one of the file's rows.
                        if self.kind == ImportKind::Customers {
                            self.summary.stored += 1;
                            let id = (rec.source(), rec.source_id());
                            if !self.customer_ids.insert(fxhash(&id)) {
                                self.summary.repeated_ids += 1;
                                self.summary
                                    .first_repeated_id
                                    .get_or_insert_with(|| format!("{}:{}", id.0, id.1));
                            }
                        } else {
                            self.summary.buyers += 1;
                        }
                        if !report.issues.is_empty() {
                            self.summary.with_field_issues += 1;
                        }
                        for f in report.present {
                            self.summary.fields.entry(f).or_default().read += 1;
                        }
                        for f in report.fixed {
                            self.summary.fields.entry(f).or_default().fixed += 1;
                        }
                        for i in report.issues {
                            self.summary.fields.entry(i.field).or_default().quarantined += 1;
                            if i.reason == patron_domain::NO_REGION {
                                self.summary.phones_without_region += 1;
                            }
                            *self
                                .summary
                                .quarantined_by_field
                                .entry(i.field.into())
                                .or_default() += 1;
                            let mut q = entry(i.field, Some(i.value), i.reason, false, None);
                            q.source = Some(rec.source().to_owned());
                            q.source_id = Some(rec.source_id().to_owned());
                            batch.quarantine.push(q);
                        }
                        batch.customers.push(rec);
                    }
                    Ok(Cleaned::Order(line)) => {
                        self.summary.stored += 1;
                        let mut line = line;
                        let key = (
                            line.source.clone(),
                            line.order_id.clone(),
                            line.product_id.clone(),
                        );
                        let total = self.quantities.entry(key).or_default();
                        *total = total.saturating_add(line.quantity);
                        line.quantity = *total;
                        if let Some(customers) = &mut self.order_customers {
                            customers.insert(fxhash(&(&line.source, &line.customer_source_id)));
                        }
                        batch.order_lines.push(line);
                    }
                    Ok(Cleaned::Product(p)) => {
                        self.summary.stored += 1;
                        batch.products.push(p);
                    }
                }
            }
        }
        batch
    }
}

/// The reason a row is rejected when its bytes are not UTF-8.
const NOT_UTF8: &str = "not valid UTF-8";

fn fxhash(value: &impl std::hash::Hash) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(value)
}

/// A CSV row as a JSON object of header → value: the lineage kept with stored records and
/// the form rejected rows are exported in for fixing.
fn raw_json(header: &[String], values: &[&str]) -> String {
    let map: BTreeMap<&str, &str> = header
        .iter()
        .map(String::as_str)
        .zip(values.iter().copied())
        .collect();
    serde_json::to_string(&map).expect("a map of strings serializes")
}

/// A stable id for a customer known only by an email or phone that is not itself personal:
/// the keyed blind index of the normalized value (so the same buyer always gets the same id).
fn pseudonym(store: &Store, kind: &str, value: &str) -> String {
    let normalized = match kind {
        "email" => patron_domain::Email::parse(value)
            .map(|e| e.match_key())
            .unwrap_or_else(|_| value.trim().to_lowercase()),
        _ => patron_domain::Phone::parse(value, None)
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|_| value.chars().filter(char::is_ascii_digit).collect()),
    };
    let hash: String = store
        .vault()
        .blind(kind, &normalized)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{kind}:{hash}")
}

/// Decodes one row of a Shopify export and maps it, in file order.
fn shopify_row(
    header: &[String],
    layout: shopify::Layout,
    state: &mut shopify::State,
    rec: csv::Result<csv::ByteRecord>,
    pseudonym: &dyn Fn(&str, &str) -> String,
) -> Result<Vec<(ImportKind, InputRow)>, Unparsable> {
    let rec = rec.map_err(|e| Unparsable {
        reason: format!("malformed CSV: {e}"),
        raw: None,
    })?;
    let values: Vec<&str> = rec
        .iter()
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()
        .map_err(|_| Unparsable {
            reason: "not valid UTF-8".into(),
            raw: None,
        })?;
    let raw = raw_json(header, &values);
    let mapped = shopify::map_row(layout, header, &values, state, pseudonym).map_err(|reason| {
        Unparsable {
            reason,
            raw: Some(raw.clone()),
        }
    })?;
    Ok(mapped
        .into_iter()
        .map(|(kind, fields)| {
            (
                kind,
                InputRow::Mapped {
                    fields,
                    raw: raw.clone(),
                },
            )
        })
        .collect())
}

/// A row that could not even be read as text.
struct Unparsable {
    reason: String,
    raw: Option<String>,
}

/// A row as read: a CSV record, kept whole so that reading it copies nothing (its columns
/// are named by the file's header and column map), or canonical (column, value) pairs taken
/// from a JSON object or a Shopify row, with that input as received.
enum InputRow {
    /// A record whose fields were checked to be UTF-8 and whose length matches the header.
    Csv(csv::StringRecord),
    Mapped {
        fields: Vec<(&'static str, String)>,
        raw: String,
    },
}

impl InputRow {
    /// The row's (canonical column, value) pairs; `columns` is the CSV file's column map.
    fn fields<'a>(&'a self, columns: &[Option<&'static str>]) -> Vec<(&'static str, &'a str)> {
        match self {
            InputRow::Csv(rec) => columns
                .iter()
                .zip(rec.iter())
                .filter_map(|(c, v)| c.map(|c| (c, v)))
                .collect(),
            InputRow::Mapped { fields, .. } => {
                fields.iter().map(|(c, v)| (*c, v.as_str())).collect()
            }
        }
    }

    /// The input as received, as text (a JSON object for CSV records, named by `header`).
    /// Built only when it is kept: for rejected rows and records with quarantined fields.
    fn raw(&self, header: &[String]) -> String {
        match self {
            InputRow::Csv(rec) => raw_json(header, &rec.iter().collect::<Vec<_>>()),
            InputRow::Mapped { raw, .. } => raw.clone(),
        }
    }
}

fn csv_row(header: &[String], rec: csv::Result<csv::ByteRecord>) -> Result<InputRow, Unparsable> {
    let rec = rec.map_err(|e| Unparsable {
        reason: format!("malformed CSV: {e}"),
        raw: None,
    })?;
    let lossy = |rec: &csv::ByteRecord| {
        Some(
            rec.iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        )
    };
    if rec.len() != header.len() {
        // A quote left open swallows the lines after it into one field.
        let open_quote = if rec.iter().any(|f| f.contains(&b'\n')) {
            ": a field runs over several lines, so a quote (\") may be left open"
        } else {
            ""
        };
        return Err(Unparsable {
            reason: format!(
                "{} fields where the header has {}{open_quote}",
                rec.len(),
                header.len()
            ),
            raw: lossy(&rec),
        });
    }
    csv::StringRecord::from_byte_record(rec)
        .map(InputRow::Csv)
        .map_err(|e| Unparsable {
            reason: NOT_UTF8.into(),
            raw: lossy(&e.into_byte_record()),
        })
}

/// Parses one JSON Lines row; nested objects are flattened to `parent.child` keys so they can
/// be mapped (`--map address.city=city`). Returns the keys no column matched.
fn json_row(line: &str, map: &ColumnMap) -> (Result<InputRow, Unparsable>, Vec<String>) {
    // Editors on Windows start a UTF-8 file with a byte order mark.
    let line = line.trim_start_matches('\u{feff}');
    let value: serde_json::Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => {
            let err = Unparsable {
                reason: format!("malformed JSON: {e}"),
                raw: Some(line.to_owned()),
            };
            return (Err(err), Vec::new());
        }
    };
    let serde_json::Value::Object(object) = value else {
        let err = Unparsable {
            reason: "a JSON Lines row must be an object".into(),
            raw: Some(line.to_owned()),
        };
        return (Err(err), Vec::new());
    };
    let mut flat = Vec::new();
    flatten("", &object, &mut flat);
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    let mut held_by: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    // Keys holding null count for which key holds a field (a null `customer_id` keeps `id`
    // from standing in for it, as a blank CSV cell would), then are left out as absent.
    let keys: Vec<String> = flat.iter().map(|(key, _)| key.clone()).collect();
    let present = flat
        .into_iter()
        .zip(map.resolve_header(&keys))
        .filter_map(|((key, value), column)| Some(((key, value?), column)));
    for ((key, value), column) in present {
        match column {
            // Two keys holding one field (`phone` and `mobile`): a blank one gives way, two
            // values are refused, as a CSV header with two such columns is.
            Some(c) => match fields.iter().position(|(f, _)| *f == c) {
                None => {
                    fields.push((c, value));
                    held_by.push(key);
                }
                Some(i) if fields[i].1.trim().is_empty() => {
                    fields[i].1 = value;
                    held_by[i] = key;
                }
                Some(i) if value.trim().is_empty() || value.trim() == fields[i].1.trim() => {}
                Some(i) => {
                    let err = Unparsable {
                        reason: format!(
                            "keys {:?} and {key:?} both hold {c}, and a record keeps one value \
                             per field: drop one, or ignore one with --map '{key}=-'",
                            held_by[i]
                        ),
                        raw: Some(line.to_owned()),
                    };
                    return (Err(err), unknown);
                }
            },
            None if !map.ignored(&key) => unknown.push(key),
            None => {}
        }
    }
    (
        Ok(InputRow::Mapped {
            fields,
            raw: line.to_owned(),
        }),
        unknown,
    )
}

fn flatten(
    prefix: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<(String, Option<String>)>,
) {
    for (k, v) in object {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            serde_json::Value::Object(inner) => flatten(&key, inner, out),
            serde_json::Value::Null => out.push((key, None)),
            serde_json::Value::String(s) => out.push((key, Some(s.clone()))),
            other => out.push((key, Some(other.to_string()))),
        }
    }
}

/// A CSV reader over a decoded input stream.
type CsvReader = csv::Reader<Box<dyn std::io::Read + Send>>;

/// A CSV reader past its header row, and the header's names (trimmed, without a byte-order
/// mark). Rows may have any number of fields: a row that does not fit the header is reported,
/// not fatal.
fn csv_with_header(
    stream: Box<dyn std::io::Read + Send>,
    delimiter: u8,
    path: &Path,
) -> anyhow::Result<(CsvReader, Vec<String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(stream);
    let header = reader
        .byte_headers()
        .with_context(|| format!("{}: cannot read the header row", path.display()))?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_owned()
        })
        .collect();
    Ok((reader, header))
}

/// Fails when the header lacks a column every row needs.
fn check_columns(
    kind: ImportKind,
    header: &[String],
    columns: &[Option<&'static str>],
    supplied: &[Supplied<'_>],
) -> anyhow::Result<()> {
    if header.iter().all(String::is_empty) {
        bail!("the file is empty or has no header row");
    }
    // A field keeps one value: of two columns holding it, one would be dropped unseen.
    for (i, c) in columns.iter().enumerate() {
        let Some(c) = c else { continue };
        if let Some(j) = columns[i + 1..].iter().position(|d| *d == Some(*c)) {
            let (a, b) = (&header[i], &header[i + 1 + j]);
            let fix = if a.eq_ignore_ascii_case(b) {
                "rename or drop one of them in the file".to_owned()
            } else {
                format!("drop one from the file, or have one ignored with --map '{b}=-'")
            };
            bail!(
                "columns {} and {} both hold {c}, and a record keeps one value per field: {fix}",
                i + 1,
                i + 2 + j
            );
        }
    }
    for required in kind.required() {
        let given = supplied.iter().any(|(c, _)| c == required);
        if !given && !columns.contains(&Some(required)) {
            let hint = if *required == "source" {
                "; name the system the rows come from with --source (e.g. --source pos), or map a column with --map 'COLUMN=source'".to_owned()
            } else if *required == "currency" {
                "; give the currency of the file's prices with --file-currency (e.g. --file-currency GBP), or map a column with --map 'COLUMN=currency'".to_owned()
            } else {
                format!("; map one with --map 'COLUMN={required}'")
            };
            bail!(
                "missing required column '{required}' for {} (columns found: {}{hint})",
                kind.name(),
                header.join(", ")
            );
        }
    }
    if kind == ImportKind::Customers
        && !["name", "first_name", "last_name", "email", "phone"]
            .iter()
            .any(|c| columns.contains(&Some(c)))
    {
        bail!("a customer file needs at least one of name, first_name, last_name, email, phone");
    }
    Ok(())
}

/// Cleans one row; customer records are also sealed here, on the parallel path, so the
/// writer only binds values.
fn clean_row(
    store: &Store,
    kind: ImportKind,
    input: &InputRow,
    (header, columns, supplied): (&[String], &[Option<&'static str>], &[Supplied<'_>]),
    clean: &CleanConfig,
) -> Cleaned {
    let mut fields = input.fields(columns);
    // A value given on the command line (`--source`, `--currency`) fills a row's blank.
    let injected: Vec<Supplied<'_>> = supplied
        .iter()
        .filter(|(column, _)| {
            !fields
                .iter()
                .any(|(c, v)| c == column && !v.trim().is_empty())
        })
        .copied()
        .collect();
    for &(column, value) in &injected {
        fields.retain(|(c, _)| *c != column);
        fields.push((column, value));
    }
    // The input as kept for fixing, with the values given on the command line, so that the
    // exported row imports again on its own.
    let raw = || {
        let raw = input.raw(header);
        match serde_json::from_str(&raw) {
            Ok(serde_json::Value::Object(mut object)) if !injected.is_empty() => {
                for &(column, value) in &injected {
                    // The row's own blank column for it goes, or the fixed row would hold
                    // the field twice and be refused again.
                    let blank: Vec<&String> = header
                        .iter()
                        .zip(columns)
                        .filter(|(_, c)| **c == Some(column))
                        .map(|(h, _)| h)
                        .collect();
                    object.retain(|k, _| !blank.contains(&k) && !k.eq_ignore_ascii_case(column));
                    object.insert(column.into(), value.into());
                }
                serde_json::Value::Object(object).to_string()
            }
            _ => raw,
        }
    };
    let row = RawRow::new(fields.clone());
    let cleaned = match kind {
        ImportKind::Customers => clean_customer(&row, clean)
            .and_then(|(r, report)| {
                // A file row with nothing that says who it is would be an empty profile. One
                // whose values were all quarantined is kept: fixing them fills it in.
                if r.says_who() || !report.issues.is_empty() {
                    Ok((r, report))
                } else {
                    Err(RowError {
                        field: "name",
                        value: String::new(),
                        reason: "the row has no name, email, phone, loyalty id, birth date or \
                                 address"
                            .into(),
                    })
                }
            })
            .map(|(r, report)| {
                let raw = (!report.issues.is_empty()).then(raw);
                Cleaned::Customer(store.prepare_customer(&r, raw.as_deref()), report)
            }),
        ImportKind::Orders => clean_order_line(&row, clean).map(Cleaned::Order),
        ImportKind::Products => clean_product(&row).map(Cleaned::Product),
    };
    cleaned.unwrap_or_else(|e| {
        let value = |column: &str| {
            fields
                .iter()
                .find(|(c, v)| *c == column && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_owned())
        };
        let key = match kind {
            ImportKind::Customers => (value("source"), value("source_id")),
            ImportKind::Orders => (value("source"), value("order_id")),
            ImportKind::Products => (None, value("product_id")),
        };
        Cleaned::Rejected(e, raw(), key)
    })
}
