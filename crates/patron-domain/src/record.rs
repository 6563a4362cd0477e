//! Canonical records (customer, order line, product) and the rules that clean raw rows into
//! them. A bad optional field drops that field and reports it; a bad required field rejects
//! the row. Either way the caller gets every problem back, so nothing disappears silently.

use crate::{
    check_len, non_empty, parse_date, parse_flag, parse_tags, parse_timestamp_in, Consent, Country,
    Currency, DateOrder, DateReading, Email, Gender, Invalid, Money, PersonName, Phone,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::borrow::Cow;

/// One input row as canonical column name → raw text, whatever file format it came from.
#[derive(Debug, Default, Clone)]
pub struct RawRow<'a> {
    fields: Vec<(&'a str, &'a str)>,
}

impl<'a> RawRow<'a> {
    /// Builds a row from (canonical column, value) pairs.
    pub fn new(fields: Vec<(&'a str, &'a str)>) -> Self {
        RawRow { fields }
    }

    /// The trimmed value of a column, `None` when absent or blank.
    pub fn get(&self, column: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(c, _)| *c == column)
            .and_then(|(_, v)| non_empty(v))
    }

    /// Whether the row has the column at all (a file with no such column, a JSON object
    /// without the key), blank or not.
    fn has(&self, column: &str) -> bool {
        self.fields.iter().any(|(c, _)| *c == column)
    }

    fn required(&self, column: &'static str) -> Result<&'a str, RowError> {
        let v = self.get(column).ok_or(RowError {
            field: column,
            value: String::new(),
            reason: "required value is missing".into(),
        })?;
        check_len(v).map_err(|e| RowError::new(column, v, e))?;
        Ok(v)
    }

    /// A required value parsed by `parse`; any failure rejects the row.
    fn parse<T>(
        &self,
        column: &'static str,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Result<T, RowError> {
        let v = self.required(column)?;
        parse(v).map_err(|e| RowError::new(column, v, e))
    }
}

/// Settings of the standardize stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct CleanConfig {
    /// The region assumed for phone numbers without a country code when the record has no
    /// country of its own.
    pub default_region: Option<Country>,
    /// How the file writes dates like `01/02/2024` (`--date-order`); otherwise birth dates
    /// are read the way the record's country writes them, and such order timestamps are
    /// rejected as ambiguous.
    pub date_order: Option<DateOrder>,
}

/// A problem with one optional field: the field was dropped, the rest of the record kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Canonical column name.
    pub field: &'static str,
    /// The raw value as given.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Why a whole row was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RowError {
    /// Canonical column name of the field that decided it.
    pub field: &'static str,
    /// The raw value as given.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl RowError {
    fn new(field: &'static str, value: &str, e: Invalid) -> Self {
        RowError {
            field,
            value: value.to_owned(),
            reason: e.0,
        }
    }
}

/// A postal address; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// Street line.
    pub line1: Option<String>,
    /// Second line (apartment, building).
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, province or region.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
}

/// The street line as identity resolution compares it: lower-case, punctuation as spaces, and
/// a common street-type abbreviation at its end written out, so `12 Main St.` and
/// `12 main street` agree exactly. Only the last word is expanded: `St Kilda Road` keeps its
/// saint.
pub fn street_key(line1: &str) -> String {
    const TYPES: [(&str, &str); 22] = [
        ("st", "street"),
        ("str", "street"),
        ("rd", "road"),
        ("ave", "avenue"),
        ("av", "avenue"),
        ("dr", "drive"),
        ("ln", "lane"),
        ("blvd", "boulevard"),
        ("ct", "court"),
        ("pl", "place"),
        ("cres", "crescent"),
        ("hwy", "highway"),
        ("pkwy", "parkway"),
        ("sq", "square"),
        ("tce", "terrace"),
        ("ter", "terrace"),
        ("cl", "close"),
        ("cct", "circuit"),
        ("cir", "circle"),
        ("pde", "parade"),
        ("gdns", "gardens"),
        ("esp", "esplanade"),
    ];
    let spaced: String = line1
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .to_lowercase();
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() > 1 {
        if let Some(last) = words.last_mut() {
            if let Some((_, full)) = TYPES.iter().find(|(short, _)| short == last) {
                *last = full;
            }
        }
    }
    words.join(" ")
}

/// The postal code as identity resolution compares it: lower-case, without spaces or dashes
/// (`SW1A 1AA` and `sw1a1aa` agree).
pub fn postal_key(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The city as identity resolution compares it: lower-case without accents (São Paulo =
/// sao paulo), and a city written in Chinese characters as its pinyin without the 市 ("city")
/// suffix, so 上海市, 上海, 上海 in traditional script and Shanghai agree exactly. Names that
/// differ between languages (München, Munich) stay different. Cities whose pinyin is the same
/// (苏州 and 宿州 are both `suzhou`) share this key; [`homophone_city`] tells them apart.
pub fn city_key(city: &str) -> String {
    if let Some(pinyin) = crate::name::han_pinyin(without_shi(city)) {
        return pinyin;
    }
    crate::name::fold_latin(&city.trim().to_lowercase())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn without_shi(city: &str) -> &str {
    let city = city.trim();
    city.strip_suffix('市')
        .filter(|c| !c.is_empty())
        .unwrap_or(city)
}

/// Chinese cities whose toneless pinyin another city shares, each with its spellings
/// (simplified, traditional). A list rather than the characters themselves: 蘇州 and 苏州 are
/// one city in two scripts, and no table of every character's two forms is kept here.
const HOMOPHONE_CITIES: &[&[&str]] = &[
    &["苏州", "蘇州"],
    &["宿州"],
    &["福州"],
    &["抚州", "撫州"],
    &["泰州"],
    &["台州", "臺州"],
    &["宜春"],
    &["伊春"],
    &["玉林"],
    &["榆林"],
    &["萍乡", "萍鄉"],
    &["凭祥", "憑祥"],
    &["滨州", "濱州"],
    &["彬州"],
    &["锦州", "錦州"],
    &["晋州", "晉州"],
    &["吉安"],
    &["集安"],
    &["惠州"],
    &["徽州"],
    &["阜阳", "阜陽"],
    &["富阳", "富陽"],
];

/// Which city of a shared pinyin key is meant, when the record wrote it in characters (苏州市
/// and 蘇州 → `苏州`, 宿州 → `宿州`); `None` for any other city, which its key alone tells.
pub fn homophone_city(city: &str) -> Option<&'static str> {
    let written: String = without_shi(city)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    HOMOPHONE_CITIES
        .iter()
        .find(|spellings| spellings.contains(&written.as_str()))
        .map(|spellings| spellings[0])
}

/// A cleaned customer record from one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRecord {
    /// The system the record came from (`web`, `pos`, `wechat`, ...).
    pub source: String,
    /// The record's id in that system.
    pub source_id: String,
    /// Full name.
    pub name: Option<PersonName>,
    /// Email address.
    pub email: Option<Email>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// Postal address.
    pub address: Address,
    /// Country of the address.
    pub country: Option<Country>,
    /// When the source created the record.
    pub created_at: Option<DateTime<Utc>>,
    /// A membership or loyalty card number the retailer gave the person, upper-case letters
    /// and digits only: the same id in two sources is the same person.
    pub loyalty_id: Option<String>,
    /// The retailer's labels (`vip`, `wholesale`), lower-case, without duplicates.
    pub tags: Vec<String>,
    /// What the record says about marketing consent per channel.
    pub consent: Consent,
}

impl CustomerRecord {
    /// A record that holds nothing but its source and id: a customer an order names whose
    /// own record has not been imported.
    pub fn known_by_id(source: &str, source_id: &str) -> CustomerRecord {
        CustomerRecord {
            source: source.to_owned(),
            source_id: source_id.to_owned(),
            name: None,
            email: None,
            phone: None,
            gender: None,
            birth_date: None,
            address: Address::default(),
            country: None,
            created_at: None,
            loyalty_id: None,
            tags: Vec::new(),
            consent: Consent::default(),
        }
    }
}

/// The columns a customer file may have.
pub const CUSTOMER_COLUMNS: &[&str] = &[
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
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "created_at",
    "loyalty_id",
    "tags",
    "email_consent",
    "sms_consent",
    "wechat_consent",
    "consent_at",
];

/// Cleans and standardizes one customer row.
pub fn clean_customer(
    row: &RawRow<'_>,
    cfg: &CleanConfig,
) -> Result<(CustomerRecord, FieldReport), RowError> {
    let source = row.required("source")?.to_owned();
    let source_id = row.required("source_id")?.to_owned();
    let mut issues = FieldReport::default();
    let country = field(row, "country", &mut issues, Country::parse);
    let region = country.or(cfg.default_region);
    let name = if row.get("name").is_some() {
        field(row, "name", &mut issues, PersonName::parse)
    } else {
        // Made of two columns, the value checked and stored is the joined name: it is counted
        // and quarantined as `name` (as `first_name` it read as if that column held it all).
        let (first, last) = (row.get("first_name"), row.get("last_name"));
        let joined = [first, last]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if joined.is_empty() {
            None
        } else {
            field_value("name", &joined, &mut issues, |_| {
                PersonName::from_parts(first, last)
            })
        }
    };
    // The file's date order when the import gave one, else the record's country's.
    let reading = cfg.date_order.map_or(
        DateReading::Likely(DateOrder::of(region)),
        DateReading::Given,
    );
    let timestamp = |v: &str| parse_timestamp_in(v, reading);
    let today = Utc::now().date_naive();
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");
    let record = CustomerRecord {
        name,
        email: field(row, "email", &mut issues, Email::parse),
        phone: field(row, "phone", &mut issues, |v| Phone::parse(v, region)),
        gender: field(row, "gender", &mut issues, Gender::parse).flatten(),
        birth_date: field(row, "birth_date", &mut issues, |v| {
            // A record without a country is read the way its region writes dates (a US
            // retailer's 03/04/1985 is 4 March).
            let d = parse_date(v, reading)?;
            if d > today || d < earliest {
                return Err(Invalid::new("birth date in the future or before 1900"));
            }
            Ok(d)
        }),
        created_at: field(row, "created_at", &mut issues, timestamp),
        loyalty_id: field(row, "loyalty_id", &mut issues, loyalty_id),
        tags: field(row, "tags", &mut issues, parse_tags).unwrap_or_default(),
        consent: Consent {
            email: field(row, "email_consent", &mut issues, parse_flag),
            sms: field(row, "sms_consent", &mut issues, parse_flag),
            wechat: field(row, "wechat_consent", &mut issues, parse_flag),
            at: field(row, "consent_at", &mut issues, timestamp),
        },
        address: Address {
            line1: field(row, "address_line1", &mut issues, text),
            line2: field(row, "address_line2", &mut issues, text),
            city: field(row, "city", &mut issues, text),
            region: field(row, "region", &mut issues, text),
            postal_code: field(row, "postal_code", &mut issues, text),
        },
        country,
        source,
        source_id,
    };
    Ok((record, issues))
}

impl CustomerRecord {
    /// Whether the record says anything about who the person is: a name, email, phone,
    /// loyalty id, birth date or address. One that does not would make an empty profile.
    pub fn says_who(&self) -> bool {
        let a = &self.address;
        self.name.is_some()
            || self.email.is_some()
            || self.phone.is_some()
            || self.loyalty_id.is_some()
            || self.birth_date.is_some()
            || [&a.line1, &a.city, &a.postal_code]
                .iter()
                .any(|v| v.is_some())
    }
}

/// A loyalty id as printed on cards and typed at tills: spaces, dashes and case do not
/// matter (`ab-123 45` is `AB12345`).
fn loyalty_id(v: &str) -> Result<String, Invalid> {
    let id: String = v
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect();
    if id.is_empty() {
        return Err(Invalid::new("a loyalty id needs letters or digits"));
    }
    if id.chars().count() > 64 {
        return Err(Invalid::new("a loyalty id is at most 64 letters or digits"));
    }
    Ok(id)
}

/// What the clean stage did to each field of one record, for import summaries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldReport {
    /// Fields that had a value.
    pub present: Vec<&'static str>,
    /// Fields whose value standardization changed (and kept).
    pub fixed: Vec<&'static str>,
    /// Fields whose value was rejected and dropped.
    pub issues: Vec<FieldIssue>,
}

/// The standardized text of a value, compared with the input to tell whether it was fixed.
trait Standard {
    fn text(&self) -> Cow<'_, str>;
}

impl Standard for String {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}
impl Standard for Email {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}
impl Standard for Phone {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}
impl Standard for PersonName {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}
impl Standard for Country {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.as_str())
    }
}
impl Standard for NaiveDate {
    fn text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_string())
    }
}
impl Standard for DateTime<Utc> {
    fn text(&self) -> Cow<'_, str> {
        Cow::Owned(self.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}
impl Standard for bool {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(if *self { "yes" } else { "no" })
    }
}
impl Standard for Vec<String> {
    fn text(&self) -> Cow<'_, str> {
        Cow::Owned(self.join(", "))
    }
}
impl Standard for Option<Gender> {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.map_or("", Gender::code))
    }
}

/// Parses one optional field; a failure becomes a [`FieldIssue`] and the field is dropped.
fn field<T: Standard>(
    row: &RawRow<'_>,
    column: &'static str,
    report: &mut FieldReport,
    parse: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Option<T> {
    let value = row.get(column)?;
    field_value(column, value, report, parse)
}

fn field_value<T: Standard>(
    column: &'static str,
    value: &str,
    report: &mut FieldReport,
    parse: impl FnOnce(&str) -> Result<T, Invalid>,
) -> Option<T> {
    report.present.push(column);
    match parse(value) {
        Ok(v) => {
            if v.text() != value {
                report.fixed.push(column);
            }
            Some(v)
        }
        Err(e) => {
            report.issues.push(FieldIssue {
                field: column,
                // A rejected value can be huge (that may be why it was rejected); keep enough to
                // recognize it.
                value: value.chars().take(256).collect(),
                reason: e.0,
            });
            None
        }
    }
}

/// Free text: whitespace collapsed, length-checked.
fn text(value: &str) -> Result<String, Invalid> {
    check_len(value)?;
    let tidy = !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
        && !value.contains(|c: char| c.is_whitespace() && c != ' ');
    if tidy {
        return Ok(value.to_owned());
    }
    Ok(value.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Placed and not reversed: paid, or on its way to being paid and delivered.
    Completed,
    /// Cancelled before fulfilment.
    Cancelled,
    /// Money returned to the customer.
    Refunded,
}

impl OrderStatus {
    /// Parses the status words shops and marketplaces export (`On-hold`, `partially
    /// shipped`, ...); blank means completed. An order still in progress (pending, processing,
    /// invoiced) counts as placed, as a later export that cancels it will say.
    pub fn parse(raw: &str) -> Result<OrderStatus, Invalid> {
        let word = raw.trim().to_lowercase().replace([' ', '-'], "_");
        Ok(match word.as_str() {
            ""
            | "completed"
            | "complete"
            | "paid"
            | "fulfilled"
            | "shipped"
            | "delivered"
            | "processing"
            | "pending"
            | "on_hold"
            | "approved"
            | "invoiced"
            | "created"
            | "open"
            | "placed"
            | "new"
            | "authorized"
            | "unfulfilled"
            | "partially_paid"
            | "partially_shipped"
            | "partially_fulfilled"
            | "partially_refunded"
            | "in_transit" => OrderStatus::Completed,
            "cancelled" | "canceled" | "voided" | "void" | "failed" | "declined" | "rejected"
            | "unavailable" => OrderStatus::Cancelled,
            "refunded" | "returned" => OrderStatus::Refunded,
            _ => {
                return Err(Invalid::new(
                    "unknown order status (known: completed, paid, shipped, delivered, \
                     pending, processing, on hold, cancelled, failed, refunded, returned, ...)",
                ))
            }
        })
    }

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
        }
    }
}

/// One line item of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The system the order came from.
    pub source: String,
    /// The order's id in that system.
    pub order_id: String,
    /// The buyer's customer id in the same system.
    pub customer_source_id: String,
    /// When the order was placed.
    pub placed_at: DateTime<Utc>,
    /// Order status.
    pub status: OrderStatus,
    /// The product bought.
    pub product_id: String,
    /// Units bought.
    pub quantity: i64,
    /// Price of one unit.
    pub unit_price: Money,
}

/// The columns an order file may have.
pub const ORDER_COLUMNS: &[&str] = &[
    "source",
    "order_id",
    "customer_source_id",
    "placed_at",
    "status",
    "currency",
    "product_id",
    "quantity",
    "unit_price",
];

/// The most units one order line may carry.
pub const MAX_QUANTITY: i64 = 100_000;
/// The largest unit price, in minor units (10 million in a two-decimal currency). Bounding
/// prices and quantities keeps every sum of order values far inside 64 bits, so one absurd
/// line cannot break the totals of a store.
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000;

fn bounded(m: Money) -> Result<Money, Invalid> {
    if m.minor.abs() > MAX_PRICE_MINOR {
        return Err(Invalid::new(format!(
            "more than {MAX_PRICE_MINOR} minor units; not a plausible price"
        )));
    }
    Ok(m)
}

/// Cleans one order line. Every field of an order line matters for revenue, so any bad field
/// rejects the row.
pub fn clean_order_line(row: &RawRow<'_>, config: &CleanConfig) -> Result<OrderLine, RowError> {
    let currency = row.parse("currency", Currency::parse)?;
    let status = row.get("status").unwrap_or("");
    Ok(OrderLine {
        source: row.required("source")?.to_owned(),
        order_id: row.required("order_id")?.to_owned(),
        customer_source_id: row.required("customer_source_id")?.to_owned(),
        placed_at: row.parse("placed_at", |v| {
            parse_timestamp_in(v, DateReading::given(config.date_order))
        })?,
        status: OrderStatus::parse(status).map_err(|e| RowError::new("status", status, e))?,
        product_id: row.required("product_id")?.to_owned(),
        // Without a quantity column each row is one unit (Olist's order items): the rows of
        // one product in one order add up.
        quantity: if !row.has("quantity") {
            1
        } else {
            row.parse("quantity", |v| match v.parse::<i64>() {
                Ok(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(q),
                // Exports write a return or a cancelled line (UCI's `C` invoices) as negative
                // units; the order's status says so instead.
                Ok(q) if q < 0 => Err(Invalid::new(
                    "a negative quantity (a return or cancellation): import the line with its \
                 units bought and status cancelled or refunded",
                )),
                Ok(_) => Err(Invalid::new(format!(
                    "must be between 1 and {MAX_QUANTITY}"
                ))),
                Err(_) => Err(Invalid::new("not a whole number")),
            })?
        },
        unit_price: row.parse("unit_price", |v| bounded(Money::parse(v, currency)?))?,
    })
}

/// A catalog product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product's id, as order lines refer to it.
    pub product_id: String,
    /// Stock-keeping unit.
    pub sku: Option<String>,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: Option<String>,
    /// Brand.
    pub brand: Option<String>,
    /// List price.
    pub price: Option<Money>,
    /// Whether it is still sold.
    pub active: bool,
    /// Units in stock, when the file says; 0 means out of stock (not recommended).
    pub stock: Option<i64>,
    /// Merchandising tags (comma-separated in the file), e.g. `new,eco`.
    pub tags: Option<String>,
}

/// The columns a product file may have.
pub const PRODUCT_COLUMNS: &[&str] = &[
    "product_id",
    "sku",
    "name",
    "category",
    "brand",
    "price",
    "currency",
    "active",
    "stock",
    "tags",
];

/// Cleans one product row.
pub fn clean_product(row: &RawRow<'_>) -> Result<Product, RowError> {
    let product_id = row.required("product_id")?.to_owned();
    let name = row.required("name")?.to_owned();
    let price = match (row.get("price"), row.get("currency")) {
        (None, _) => None,
        (Some(p), Some(c)) => {
            let currency = Currency::parse(c).map_err(|e| RowError::new("currency", c, e))?;
            Some(
                Money::parse(p, currency)
                    .and_then(bounded)
                    .map_err(|e| RowError::new("price", p, e))?,
            )
        }
        (Some(_), None) => {
            return Err(RowError::new(
                "currency",
                "",
                Invalid::new("a price needs a currency"),
            ))
        }
    };
    let active = match row.get("active").map(str::to_lowercase).as_deref() {
        None | Some("true" | "1" | "yes" | "y" | "active") => true,
        Some("false" | "0" | "no" | "n" | "inactive" | "archived") => false,
        Some(other) => {
            return Err(RowError::new(
                "active",
                other,
                Invalid::new("not true/false"),
            ))
        }
    };
    let stock = match row.get("stock") {
        None => None,
        Some(s) => Some(s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            RowError::new("stock", s, Invalid::new("not a whole number of units"))
        })?),
    };
    let tags = row.get("tags").map(|t| {
        let mut tags: Vec<String> = t
            .split(',')
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        tags.dedup();
        tags.join(",")
    });
    let opt = |c| row.get(c).map(str::to_owned);
    Ok(Product {
        product_id,
        sku: opt("sku"),
        name,
        category: opt("category"),
        brand: opt("brand"),
        price,
        active,
        stock,
        tags: tags.filter(|t| !t.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(pairs: &[(&'a str, &'a str)]) -> RawRow<'a> {
        RawRow::new(pairs.to_vec())
    }

    #[test]
    fn street_and_postal_keys() {
        for (raw, key) in [
            ("12 Main St.", "12 main street"),
            ("12 main street", "12 main street"),
            ("12, Main  Street", "12 main street"),
            ("Flat 3, 7 Wallaby Pl", "flat 3 7 wallaby place"),
            ("St Kilda Rd", "st kilda road"),
            ("7 St", "7 street"),
            ("St", "st"),
            ("O'Connell Ave", "o connell avenue"),
            ("上海市南京东路100号", "上海市南京东路100号"),
            ("", ""),
        ] {
            assert_eq!(street_key(raw), key, "{raw}");
        }
        for (raw, key) in [
            ("SW1A 1AA", "sw1a1aa"),
            ("12345-6789", "123456789"),
            ("2000", "2000"),
        ] {
            assert_eq!(postal_key(raw), key, "{raw}");
        }
        for (raw, key) in [
            ("Shanghai", "shanghai"),
            ("上海", "shanghai"),
            ("上海市", "shanghai"),
            ("São  Paulo", "sao paulo"),
            ("Saint-Étienne", "saint etienne"),
            ("München", "munchen"),
        ] {
            assert_eq!(city_key(raw), key, "{raw}");
        }
        // Homophones share the key; the list tells them apart, one city in either script.
        assert_eq!(city_key("宿州市"), city_key("苏州"));
        assert_eq!(city_key("蘇州"), city_key("苏州"));
        assert_eq!(homophone_city("苏州市"), Some("苏州"));
        assert_eq!(homophone_city(" 蘇 州 "), Some("苏州"));
        assert_eq!(homophone_city("宿州"), Some("宿州"));
        assert_eq!(homophone_city("上海"), None);
        assert_eq!(homophone_city("Suzhou"), None);
    }

    #[test]
    fn customer_keeps_good_fields_and_reports_bad_ones() {
        let r = row(&[
            ("source", "web"),
            ("source_id", "42"),
            ("first_name", "Ann"),
            ("last_name", "Lee"),
            ("email", "ANN@EXAMPLE.COM"),
            ("phone", "not a phone"),
            ("country", "United States"),
            ("birth_date", "02/01/1990"),
        ]);
        let (rec, report) = clean_customer(&r, &CleanConfig::default()).unwrap();
        // The name made of two columns is counted once, as the name it is.
        assert_eq!(
            report.present.iter().filter(|f| f.contains("name")).count(),
            1
        );
        assert!(report.present.contains(&"name"));
        let issues = report.issues;
        // Standardized and kept: the rest was already standard; the phone was rejected.
        assert_eq!(report.fixed, vec!["country", "email", "birth_date"]);
        assert_eq!(rec.name.unwrap().as_str(), "Ann Lee");
        assert_eq!(rec.email.unwrap().as_str(), "ann@example.com");
        assert_eq!(rec.country.unwrap().as_str(), "US");
        assert_eq!(rec.birth_date.unwrap().to_string(), "1990-02-01");
        assert_eq!(rec.phone, None);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].field, "phone");
    }

    #[test]
    fn customer_phone_uses_country_then_default_region() {
        let cfg = CleanConfig {
            default_region: Country::parse("CN").ok(),
            date_order: None,
        };
        let r = row(&[
            ("source", "pos"),
            ("source_id", "1"),
            ("phone", "138 0013 8000"),
        ]);
        let (rec, _) = clean_customer(&r, &cfg).unwrap();
        assert_eq!(rec.phone.unwrap().as_str(), "+8613800138000");
        let r = row(&[
            ("source", "pos"),
            ("source_id", "1"),
            ("country", "US"),
            ("phone", "(415) 555-2671"),
        ]);
        let (rec, _) = clean_customer(&r, &cfg).unwrap();
        assert_eq!(rec.phone.unwrap().as_str(), "+14155552671");
    }

    #[test]
    fn a_record_without_a_country_reads_dates_as_its_default_region_writes_them() {
        let birth = |region: &str| {
            let cfg = CleanConfig {
                default_region: Country::parse(region).ok(),
                date_order: None,
            };
            let r = row(&[
                ("source", "pos"),
                ("source_id", "1"),
                ("birth_date", "03/04/1985"),
            ]);
            clean_customer(&r, &cfg)
                .unwrap()
                .0
                .birth_date
                .unwrap()
                .to_string()
        };
        assert_eq!(birth("US"), "1985-03-04");
        assert_eq!(birth("GB"), "1985-04-03");
    }

    #[test]
    fn a_record_says_who_it_is_by_a_name_contact_id_birth_date_or_address() {
        let cfg = CleanConfig::default();
        let says = |fields: &[(&str, &str)]| {
            let mut all = vec![("source", "web"), ("source_id", "1")];
            all.extend_from_slice(fields);
            clean_customer(&row(&all), &cfg).unwrap().0.says_who()
        };
        assert!(!says(&[("name", "   ")]));
        assert!(!says(&[("gender", "F"), ("country", "NO")]));
        assert!(says(&[("city", "Oslo")]));
        assert!(says(&[("email", "a@b.co")]));
    }

    #[test]
    fn customer_without_source_id_is_rejected() {
        let r = row(&[("source", "web"), ("email", "a@b.co")]);
        let err = clean_customer(&r, &CleanConfig::default()).unwrap_err();
        assert_eq!(err.field, "source_id");
    }

    #[test]
    fn future_birth_date_is_an_issue() {
        let r = row(&[
            ("source", "web"),
            ("source_id", "1"),
            ("birth_date", "2999-01-01"),
        ]);
        let (rec, report) = clean_customer(&r, &CleanConfig::default()).unwrap();
        assert_eq!(rec.birth_date, None);
        assert_eq!(report.issues[0].field, "birth_date");
        assert_eq!(report.present, vec!["birth_date"]);
    }

    #[test]
    fn order_lines() {
        let good = [
            ("source", "web"),
            ("order_id", "o1"),
            ("customer_source_id", "42"),
            ("placed_at", "2024-05-01T12:00:00+08:00"),
            ("currency", "usd"),
            ("product_id", "p1"),
            ("quantity", "2"),
            ("unit_price", "9.99"),
        ];
        let cfg = CleanConfig::default();
        let line = clean_order_line(&row(&good), &cfg).unwrap();
        assert_eq!(line.unit_price.minor, 999);
        assert_eq!(line.status, OrderStatus::Completed);
        assert_eq!(line.placed_at.to_rfc3339(), "2024-05-01T04:00:00+00:00");
        let check_bad = |field: &str, value: &str| {
            let mut pairs = good.to_vec();
            pairs.retain(|(c, _)| *c != field);
            pairs.push((field, value));
            let err = clean_order_line(&row(&pairs), &cfg).unwrap_err();
            assert_eq!(err.field, field, "{field}={value}");
            err.reason
        };
        assert!(check_bad("quantity", "-2").contains("return or cancellation"));
        assert!(check_bad("placed_at", "01/02/2024").contains("--date-order"));
        check_bad("quantity", "0");
        check_bad("quantity", "");
        let mut one = good.to_vec();
        one.retain(|(c, _)| *c != "quantity");
        assert_eq!(clean_order_line(&row(&one), &cfg).unwrap().quantity, 1);
        check_bad("quantity", "100001");
        check_bad("unit_price", "92233720368547758.07");
        check_bad("quantity", "two");
        check_bad("unit_price", "9.999");
        check_bad("currency", "XXX");
        check_bad("placed_at", "last tuesday");
        check_bad("status", "lost in space");
        check_bad("order_id", "");
    }

    #[test]
    fn order_statuses_as_shops_and_marketplaces_write_them() {
        for (raw, status) in [
            ("", OrderStatus::Completed),
            ("Delivered", OrderStatus::Completed),
            ("On-hold", OrderStatus::Completed),
            ("partially shipped", OrderStatus::Completed),
            ("invoiced", OrderStatus::Completed),
            ("canceled", OrderStatus::Cancelled),
            ("Failed", OrderStatus::Cancelled),
            ("unavailable", OrderStatus::Cancelled),
            ("returned", OrderStatus::Refunded),
        ] {
            assert_eq!(OrderStatus::parse(raw), Ok(status), "{raw:?}");
        }
        assert!(OrderStatus::parse("lost in space").is_err());
    }

    #[test]
    fn products() {
        let p = clean_product(&row(&[
            ("product_id", "p1"),
            ("name", "Tea"),
            ("price", "12.50"),
            ("currency", "CNY"),
            ("active", "no"),
        ]))
        .unwrap();
        assert_eq!(p.price.unwrap().minor, 1250);
        assert!(!p.active);
        assert_eq!(
            clean_product(&row(&[
                ("product_id", "p1"),
                ("name", "Tea"),
                ("price", "1")
            ]))
            .unwrap_err()
            .field,
            "currency"
        );
    }
}
