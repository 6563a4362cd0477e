//! Which input column is which canonical column: the user's `--map` first, then the canonical
//! name itself, then common spellings other systems export (`E-mail`, `Mobile`, `Zip`, ...).
//! Columns are always matched by name, never by position.

use super::ImportKind;
use anyhow::{bail, Context};

/// Common header spellings, normalized (lower case, runs of non-alphanumerics as `_`), per
/// canonical column. Only unambiguous names: a bare `id` could be anything.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "email",
        &["e_mail", "email_address", "mail", "emailaddress"],
    ),
    (
        "phone",
        &[
            "mobile",
            "mobile_phone",
            "mobile_number",
            "phone_number",
            "cell",
            "cellphone",
            "tel",
            "telephone",
            "phonenumber",
        ],
    ),
    (
        "source_id",
        &[
            "customer_id",
            "customer_no",
            "customer_number",
            "customer_code",
        ],
    ),
    (
        "customer_source_id",
        &[
            "customer_id",
            "customer_no",
            "customer_number",
            "customer_code",
        ],
    ),
    ("first_name", &["firstname", "given_name", "forename"]),
    ("last_name", &["lastname", "surname", "family_name"]),
    ("name", &["full_name", "fullname", "customer_name"]),
    (
        "birth_date",
        &["dob", "date_of_birth", "birthday", "birthdate"],
    ),
    ("gender", &["sex"]),
    (
        "postal_code",
        &["zip", "zip_code", "zipcode", "postcode", "post_code"],
    ),
    ("region", &["province", "state", "state_province"]),
    (
        "address_line1",
        &["address", "address1", "street", "street_address"],
    ),
    ("address_line2", &["address2"]),
    ("country", &["country_code", "nation"]),
    ("created_at", &["created", "signup_date", "registered_at"]),
    (
        "loyalty_id",
        &[
            "loyalty_number",
            "loyalty_card",
            "member_id",
            "member_number",
            "membership_id",
            "membership_number",
        ],
    ),
    ("tags", &["customer_tags", "labels"]),
    (
        "email_consent",
        &[
            "accepts_email_marketing",
            "accepts_marketing",
            "email_opt_in",
            "email_optin",
            "email_marketing",
            "email_subscribed",
            "newsletter_opt_in",
        ],
    ),
    (
        "sms_consent",
        &[
            "accepts_sms_marketing",
            "sms_opt_in",
            "sms_optin",
            "sms_marketing",
        ],
    ),
    ("wechat_consent", &["wechat_opt_in", "wechat_marketing"]),
    (
        "consent_at",
        &[
            "consent_date",
            "consented_at",
            "opt_in_date",
            "consent_updated_at",
        ],
    ),
    ("unit_price", &["price_each", "item_price"]),
    ("placed_at", &["order_date", "ordered_at"]),
    ("quantity", &["qty"]),
];

/// Spellings that hold a canonical column only when no other column of the file does (by its
/// own name, `--map` or [`ALIASES`]): a file with `address` and `address_1`, or `customer_id`
/// and `rec_id`, imports as it did before these were known. Of two such columns for one
/// field, the spelling listed first holds it (a shop's billing address before its shipping
/// address).
const FALLBACK_ALIASES: &[(&str, &[&str])] = &[
    ("source_id", &["record_id", "rec_id"]),
    (
        "address_line1",
        &[
            "address_1",
            "address_line_1",
            "billing_address_1",
            "billing_address",
            "billing_street",
            "shipping_address_1",
            "shipping_address",
            "shipping_street",
        ],
    ),
    (
        "address_line2",
        &[
            "address_2",
            "address_line_2",
            "billing_address_2",
            "shipping_address_2",
        ],
    ),
    (
        "city",
        &[
            "suburb",
            "town",
            "locality",
            "billing_city",
            "shipping_city",
        ],
    ),
    // Shop, CRM and marketplace customer exports (WooCommerce, Magento, HubSpot, ...).
    (
        "email",
        &[
            "billing_email",
            "customer_email",
            "contact_email",
            "email_1",
            "email1",
            "primary_email",
            "personal_email",
            "work_email",
        ],
    ),
    (
        "phone",
        &[
            "billing_phone",
            "mobile_phone_number",
            "primary_phone",
            "customer_phone",
            "contact_phone",
            "shipping_phone",
            "phone_1",
            "phone1",
            "home_phone",
            "work_phone",
        ],
    ),
    (
        "first_name",
        &[
            "givenname",
            "fname",
            "first",
            "billing_first_name",
            "billing_firstname",
            "shipping_first_name",
            "shipping_firstname",
        ],
    ),
    (
        "last_name",
        &[
            "familyname",
            "lname",
            "last",
            "billing_last_name",
            "billing_lastname",
            "shipping_last_name",
            "shipping_lastname",
        ],
    ),
    (
        "postal_code",
        &[
            "billing_postcode",
            "billing_zip",
            "billing_postal_code",
            "shipping_postcode",
            "shipping_zip",
            "shipping_postal_code",
        ],
    ),
    (
        "region",
        &["state_region", "billing_state", "shipping_state"],
    ),
    (
        "country",
        &["country_region", "billing_country", "shipping_country"],
    ),
    (
        "created_at",
        &[
            "customer_since",
            "date_registered",
            "registration_date",
            "date_created",
            "created_date",
            "create_date",
        ],
    ),
    // Order exports' own names (UCI's Online Retail, Olist, shop and till systems): a file
    // that also has a column of the canonical name or a spelling above keeps that one.
    ("source_id", &["customerid"]),
    (
        "customer_source_id",
        &["customerid", "buyer_id", "client_id"],
    ),
    (
        "order_id",
        &[
            "orderid",
            "order",
            "order_no",
            "order_number",
            "invoice",
            "invoiceno",
            "invoice_no",
            "invoice_number",
            "invoice_id",
        ],
    ),
    (
        "product_id",
        &[
            "productid",
            "product_code",
            "stockcode",
            "stock_code",
            "item_code",
        ],
    ),
    ("unit_price", &["unitprice", "price"]),
    (
        "placed_at",
        &[
            "orderdate",
            "invoicedate",
            "invoice_date",
            "purchase_date",
            "transaction_date",
            "order_purchase_timestamp",
            "date",
        ],
    ),
    ("quantity", &["quantity_ordered", "units"]),
    ("currency", &["currency_code"]),
    ("status", &["order_status"]),
    ("birth_date", &["dateofbirth"]),
    // A record's id under other names (Splink's example data, CRMs' contact exports, a bare
    // `Id`): in a customers file the customer's, and only when no column above says so.
    (
        "source_id",
        &[
            "unique_id",
            "contact_id",
            "client_id",
            "customer_key",
            "uid",
            "id",
        ],
    ),
];

/// Resolves input column names to canonical ones for one kind of file.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    kind: ImportKind,
    /// (input column, lower-cased and trimmed; canonical column, or `None` to ignore it).
    user: Vec<(String, Option<&'static str>)>,
}

impl ColumnMap {
    /// Builds a map from `Input=canonical` specs; every target must be a column of `kind`,
    /// or `-` to ignore the input column.
    pub fn new(kind: ImportKind, specs: &[String]) -> anyhow::Result<ColumnMap> {
        let mut user = Vec::new();
        for spec in specs {
            let (from, to) = spec.split_once('=').with_context(|| {
                format!("--map {spec:?}: expected INPUT_COLUMN=canonical_column")
            })?;
            let to = to.trim().to_lowercase();
            if to == "-" {
                user.push((from.trim().to_lowercase(), None));
                continue;
            }
            let Some(canonical) = kind.columns().iter().copied().find(|c| *c == to) else {
                bail!(
                    "--map {spec:?}: '{to}' is not a {} column (expected one of: {})",
                    kind.name(),
                    kind.columns().join(", ")
                );
            };
            user.push((from.trim().to_lowercase(), Some(canonical)));
        }
        Ok(ColumnMap { kind, user })
    }

    /// Reads `Input=canonical` lines from a mapping file (blank lines and `#` comments skipped).
    pub fn specs_from_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read mapping file {}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect())
    }

    /// What `--map` said of an input column: `Some(None)` when it is to be ignored.
    fn user_map(&self, h: &str) -> Option<Option<&'static str>> {
        self.user
            .iter()
            .find(|(from, _)| from == h)
            .map(|(_, c)| *c)
    }

    /// Whether `--map 'COLUMN=-'` ignores this input column (it is then not unknown).
    pub fn ignored(&self, header: &str) -> bool {
        self.user_map(&key(header)) == Some(None)
    }

    /// The canonical column each column of a file's header holds; a column known only by a
    /// [`FALLBACK_ALIASES`] spelling is unknown when another column holds its field, or an
    /// earlier-listed spelling does.
    pub fn resolve_header(&self, header: &[String]) -> Vec<Option<&'static str>> {
        let keys: Vec<String> = header.iter().map(|h| key(h)).collect();
        let first: Vec<Option<&'static str>> = keys.iter().map(|h| self.resolve_first(h)).collect();
        let fallbacks: Vec<Option<(&'static str, usize)>> = keys
            .iter()
            .zip(&first)
            .map(|(h, c)| c.is_none().then(|| self.fallback(h)).flatten())
            .collect();
        let outranked = |(field, rank): (&str, usize)| {
            first.contains(&Some(field))
                || fallbacks
                    .iter()
                    .flatten()
                    .any(|&(f, r)| f == field && r < rank)
        };
        first
            .iter()
            .zip(&fallbacks)
            .map(|(c, f)| c.or_else(|| f.filter(|&f| !outranked(f)).map(|(f, _)| f)))
            .collect()
    }

    /// The canonical column an input column holds by `--map`, its own name or an alias.
    fn resolve_first(&self, h: &str) -> Option<&'static str> {
        if let Some(c) = self.user_map(h) {
            return c;
        }
        let columns = self.kind.columns();
        let normalized = normalize(h);
        if let Some(c) = columns
            .iter()
            .copied()
            .find(|c| *c == h || *c == normalized)
        {
            return Some(c);
        }
        spelt(ALIASES, columns, &normalized)
    }

    /// The canonical column a [`FALLBACK_ALIASES`] spelling names (not a `--map`ped column),
    /// with the spelling's place in the list: the lower, the stronger its claim.
    fn fallback(&self, h: &str) -> Option<(&'static str, usize)> {
        if self.user_map(h).is_some() {
            return None;
        }
        let normalized = normalize(h);
        FALLBACK_ALIASES
            .iter()
            .filter(|(c, _)| self.kind.columns().contains(c))
            .flat_map(|(c, spellings)| spellings.iter().map(move |s| (*c, *s)))
            .enumerate()
            .find(|(_, (_, s))| *s == normalized)
            .map(|(rank, (c, _))| (c, rank))
    }
}

/// The canonical column of `columns` that `aliases` spell `normalized`.
fn spelt(
    aliases: &[(&'static str, &[&str])],
    columns: &[&'static str],
    normalized: &str,
) -> Option<&'static str> {
    aliases
        .iter()
        .filter(|(c, _)| columns.contains(c))
        .find(|(_, spellings)| spellings.contains(&normalized))
        .map(|(c, _)| *c)
}

/// A header as `--map` names it: trimmed, without a byte-order mark, lower-cased.
fn key(header: &str) -> String {
    header.trim().trim_start_matches('\u{feff}').to_lowercase()
}

/// Lower case with every run of characters other than letters and digits as one `_`.
pub(super) fn normalize(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    for ch in h.chars() {
        if ch.is_alphanumeric() {
            out.extend(ch.to_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_user_maps_canonical_names_and_aliases() {
        let map = ColumnMap::new(
            ImportKind::Customers,
            &[
                "Handy=phone".into(),
                "Kunden-Nr=source_id".into(),
                "Home Phone=-".into(),
            ],
        )
        .unwrap();
        let check = |h: &str, expected: Option<&str>| {
            assert_eq!(map.resolve_header(&[h.to_owned()])[0], expected, "{h:?}")
        };
        check("Handy", Some("phone"));
        check("KUNDEN-NR", Some("source_id"));
        check("email", Some("email"));
        check("\u{feff}Source", Some("source"));
        check("E-mail", Some("email"));
        check("Mobile Phone", Some("phone"));
        check("First Name", Some("first_name"));
        check("Date of Birth", Some("birth_date"));
        check("Zip", Some("postal_code"));
        check("favourite colour", None);
        check("qty", None); // an order column, not a customer one
        check("Home Phone", None);
        check("Customer No.", Some("source_id"));
        // FEBRL's and other exports' spellings, which hold a field only when no other column
        // does; two columns holding it otherwise are left for the import to refuse, as before.
        check("rec_id", Some("source_id"));
        check("Address Line 1", Some("address_line1"));
        check("address_2", Some("address_line2"));
        check("Suburb", Some("city"));
        check("unique_id", Some("source_id"));
        check("Id", Some("source_id"));
        check("GivenName", Some("first_name"));
        check("DateOfBirth", Some("birth_date"));
        check("Phone 1", Some("phone"));
        // Splink's example data: `unique_id` is the record's id; a file with a customer id
        // keeps that one, and a bare `Id` gives way to any named id.
        let header = |h: &[&str]| h.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            map.resolve_header(&header(&[
                "unique_id",
                "first_name",
                "surname",
                "dob",
                "city",
                "email",
                "cluster"
            ])),
            [
                Some("source_id"),
                Some("first_name"),
                Some("last_name"),
                Some("birth_date"),
                Some("city"),
                Some("email"),
                None
            ]
        );
        assert_eq!(
            map.resolve_header(&header(&["Id", "Contact ID", "First", "Last"])),
            [
                None,
                Some("source_id"),
                Some("first_name"),
                Some("last_name")
            ]
        );
        assert_eq!(
            map.resolve_header(&header(&["id", "customer_id"])),
            [None, Some("source_id")]
        );
        assert_eq!(
            map.resolve_header(&header(&["Id", "CustomerID", "unique_id", "rec_id"])),
            [None, None, None, Some("source_id")]
        );
        assert_eq!(
            map.resolve_header(&header(&["Id", "CustomerID", "Email"])),
            [None, Some("source_id"), Some("email")]
        );
        // Short spellings give way to the usual ones: a file with both imports as before.
        assert_eq!(
            map.resolve_header(&header(&["First Name", "FName", "DOB", "DateOfBirth"])),
            [Some("first_name"), None, Some("birth_date"), None]
        );
        assert_eq!(
            map.resolve_header(&header(&[
                "city",
                "Suburb",
                "Address",
                "address_1",
                "rec_id"
            ])),
            [
                Some("city"),
                None,
                Some("address_line1"),
                None,
                Some("source_id")
            ]
        );
        assert_eq!(
            map.resolve_header(&header(&[
                "Suburb",
                "Handy",
                "mobile",
                "customer_id",
                "rec_id"
            ])),
            [
                Some("city"),
                Some("phone"),
                Some("phone"),
                Some("source_id"),
                None
            ]
        );
        // A shop's customer export (WooCommerce's column names): billing before shipping.
        let plain = ColumnMap::new(ImportKind::Customers, &[]).unwrap();
        assert_eq!(
            plain.resolve_header(&header(&[
                "Email",
                "Billing First Name",
                "Billing Last Name",
                "Shipping Address 1",
                "Billing Address 1",
                "Billing City",
                "Shipping City",
                "Billing Postcode",
                "Billing Country",
                "Billing Phone",
                "Date Registered",
            ])),
            [
                Some("email"),
                Some("first_name"),
                Some("last_name"),
                None,
                Some("address_line1"),
                Some("city"),
                None,
                Some("postal_code"),
                Some("country"),
                Some("phone"),
                Some("created_at"),
            ]
        );
        // A CRM's (HubSpot's): the mobile number gives way to the phone number.
        assert_eq!(
            plain.resolve_header(&header(&[
                "Phone Number",
                "Mobile Phone Number",
                "Street Address",
                "State/Region",
                "Country/Region",
                "Create Date",
            ])),
            [
                Some("phone"),
                None,
                Some("address_line1"),
                Some("region"),
                Some("country"),
                Some("created_at"),
            ]
        );
        // Ignored as asked, so not reported as unknown; a column nobody named is.
        assert!(map.ignored(" home phone"));
        assert!(!map.ignored("favourite colour"));
        assert!(!map.ignored("Handy"));
        let orders = ColumnMap::new(ImportKind::Orders, &[]).unwrap();
        assert_eq!(
            orders.resolve_header(&["Customer ID".to_owned()]),
            [Some("customer_source_id")]
        );
        // UCI's Online Retail files (both editions) and Olist's orders.
        assert_eq!(
            orders.resolve_header(&header(&[
                "InvoiceNo",
                "StockCode",
                "Description",
                "Quantity",
                "InvoiceDate",
                "UnitPrice",
                "CustomerID",
            ])),
            [
                Some("order_id"),
                Some("product_id"),
                None,
                Some("quantity"),
                Some("placed_at"),
                Some("unit_price"),
                Some("customer_source_id")
            ]
        );
        assert_eq!(
            orders.resolve_header(&header(&["Invoice", "Price", "order_purchase_timestamp"])),
            [Some("order_id"), Some("unit_price"), Some("placed_at")]
        );
        // `Price` and `Date` hold the line's unit price and the order's date only when no
        // other column does, and of two such names the one listed first wins.
        assert_eq!(
            orders.resolve_header(&header(&["Date", "InvoiceDate"])),
            [None, Some("placed_at")]
        );
        assert_eq!(
            orders.resolve_header(&header(&["Date", "Price", "Order Date", "Unit Price"])),
            [None, None, Some("placed_at"), Some("unit_price")]
        );
    }

    #[test]
    fn rejects_unknown_targets() {
        let err = ColumnMap::new(ImportKind::Customers, &["Mobile=telephone".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("'telephone' is not a customers column"),
            "{err}"
        );
        assert!(ColumnMap::new(ImportKind::Orders, &["nonsense".into()]).is_err());
    }
}
