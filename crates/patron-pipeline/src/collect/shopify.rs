//! Shopify's customer and order exports, recognized by their headers and mapped by column
//! name. The order export has one row per line item with the order-level columns only on an
//! order's first row, so rows are read in order and an order's values carried to its lines.
//! Each order also yields its buyer as a customer record (email, billing name and address),
//! so orders reach the buyer's profile through unify even without a customer id.

use super::ImportKind;

/// Which Shopify export a header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The customer export (current form with `Customer ID`, or the older one without).
    Customers,
    /// The order export, one row per line item.
    Orders,
}

/// The source name of Shopify records.
const SOURCE: &str = "shopify";

/// Recognizes a Shopify export of `kind` by its header.
pub fn detect(kind: ImportKind, header: &[String]) -> Option<Layout> {
    let has = |c: &str| header.iter().any(|h| h.eq_ignore_ascii_case(c));
    match kind {
        ImportKind::Customers
            if has("First Name")
                && has("Last Name")
                && has("Email")
                && has("Total Spent")
                && has("Total Orders") =>
        {
            Some(Layout::Customers)
        }
        ImportKind::Orders
            if has("Name")
                && has("Financial Status")
                && has("Lineitem quantity")
                && has("Lineitem price") =>
        {
            Some(Layout::Orders)
        }
        _ => None,
    }
}

/// Order-level values carried from an order's first row to its other lines.
#[derive(Debug, Default)]
pub struct State {
    order: Option<String>,
    head: Vec<(&'static str, String)>,
}

/// One input row in canonical columns, per kind of record it becomes.
pub type Mapped = Vec<(ImportKind, Vec<(&'static str, String)>)>;

/// Maps one Shopify row to canonical records. `pseudonym(kind, value)` turns an email or phone
/// into the id of a customer known only by it, so no personal value becomes an id in clear.
pub fn map_row(
    layout: Layout,
    header: &[String],
    values: &[&str],
    state: &mut State,
    pseudonym: &dyn Fn(&str, &str) -> String,
) -> Result<Mapped, String> {
    let get = |names: &[&str]| -> String {
        names
            .iter()
            .find_map(|n| {
                let i = header.iter().position(|h| h.eq_ignore_ascii_case(n))?;
                // Spreadsheet-safe exports prefix numbers with a quote ('+1 415…).
                let v = values.get(i)?.trim().trim_start_matches('\'').trim();
                (!v.is_empty()).then(|| v.to_owned())
            })
            .unwrap_or_default()
    };
    match layout {
        Layout::Customers => {
            let email = get(&["Email"]);
            let phone = get(&["Phone", "Default Address Phone"]);
            let source_id = match get(&["Customer ID"]) {
                id if !id.is_empty() => id,
                _ => buyer_key(&email, &phone, pseudonym)
                    .ok_or("no Customer ID, Email or Phone to identify the customer")?,
            };
            let record = vec![
                ("source", SOURCE.to_owned()),
                ("source_id", source_id),
                ("first_name", get(&["First Name"])),
                ("last_name", get(&["Last Name"])),
                ("email", email),
                ("phone", phone),
                (
                    "address_line1",
                    get(&["Default Address Address1", "Address1"]),
                ),
                (
                    "address_line2",
                    get(&["Default Address Address2", "Address2"]),
                ),
                ("city", get(&["Default Address City", "City"])),
                (
                    "region",
                    get(&["Default Address Province Code", "Province Code", "Province"]),
                ),
                (
                    "country",
                    get(&["Default Address Country Code", "Country Code", "Country"]),
                ),
                ("postal_code", get(&["Default Address Zip", "Zip"])),
                (
                    "email_consent",
                    get(&["Accepts Email Marketing", "Accepts Marketing"]),
                ),
                ("sms_consent", get(&["Accepts SMS Marketing"])),
                ("tags", get(&["Tags"])),
            ];
            Ok(vec![(ImportKind::Customers, record)])
        }
        Layout::Orders => {
            let name = get(&["Name"]);
            if name.is_empty() {
                return Err("no order Name".into());
            }
            let mut out = Mapped::new();
            if state.order.as_deref() != Some(name.as_str()) {
                let email = get(&["Email"]);
                let phone = get(&["Billing Phone", "Phone", "Shipping Phone"]);
                let buyer =
                    buyer_key(&email, &phone, pseudonym).unwrap_or_else(|| format!("guest:{name}"));
                let status = if !get(&["Cancelled at"]).is_empty() {
                    "cancelled"
                } else if get(&["Financial Status"]).eq_ignore_ascii_case("refunded") {
                    "refunded"
                } else {
                    "completed"
                };
                state.order = Some(name.clone());
                state.head = vec![
                    ("source", SOURCE.to_owned()),
                    ("order_id", name.clone()),
                    ("customer_source_id", buyer.clone()),
                    ("placed_at", get(&["Created at", "Paid at"])),
                    ("status", status.to_owned()),
                    ("currency", get(&["Currency"])),
                ];
                if !buyer.starts_with("guest:") {
                    out.push((
                        ImportKind::Customers,
                        vec![
                            ("source", SOURCE.to_owned()),
                            ("source_id", buyer),
                            ("name", get(&["Billing Name", "Shipping Name"])),
                            ("email", email),
                            ("phone", phone),
                            (
                                "address_line1",
                                get(&["Billing Address1", "Billing Street"]),
                            ),
                            ("address_line2", get(&["Billing Address2"])),
                            ("city", get(&["Billing City"])),
                            ("region", get(&["Billing Province"])),
                            ("postal_code", get(&["Billing Zip"])),
                            ("country", get(&["Billing Country"])),
                            ("created_at", get(&["Created at"])),
                        ],
                    ));
                }
            }
            let mut line = state.head.clone();
            let product = match get(&["Lineitem sku"]) {
                sku if !sku.is_empty() => sku,
                _ => get(&["Lineitem name"]),
            };
            line.extend([
                ("product_id", product),
                ("quantity", get(&["Lineitem quantity"])),
                ("unit_price", get(&["Lineitem price"])),
            ]);
            out.push((ImportKind::Orders, line));
            Ok(out)
        }
    }
}

/// Shopify order exports carry no customer id: a buyer is known by email, else phone.
fn buyer_key(email: &str, phone: &str, pseudonym: &dyn Fn(&str, &str) -> String) -> Option<String> {
    if !email.is_empty() {
        Some(pseudonym("email", email))
    } else if !phone.is_empty() {
        Some(pseudonym("phone", phone))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(s: &str) -> Vec<String> {
        s.split(',').map(str::to_owned).collect()
    }

    #[test]
    fn detects_exports_by_header() {
        let customers = header("Customer ID,First Name,Last Name,Email,Accepts Email Marketing,Default Address Company,Default Address Address1,Default Address Address2,Default Address City,Default Address Province Code,Default Address Country Code,Default Address Zip,Default Address Phone,Phone,Accepts SMS Marketing,Total Spent,Total Orders,Note,Tax Exempt,Tags");
        assert_eq!(
            detect(ImportKind::Customers, &customers),
            Some(Layout::Customers)
        );
        assert_eq!(detect(ImportKind::Orders, &customers), None);
        let old = header("First Name,Last Name,Email,Company,Address1,Address2,City,Province,Province Code,Country,Country Code,Zip,Phone,Accepts Marketing,Total Spent,Total Orders,Tags,Note,Tax Exempt");
        assert_eq!(detect(ImportKind::Customers, &old), Some(Layout::Customers));
        assert_eq!(
            detect(ImportKind::Customers, &header("source,source_id,email")),
            None
        );
    }

    #[test]
    fn order_values_carry_to_later_lines() {
        let h = header("Name,Email,Financial Status,Currency,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Billing Name,Cancelled at");
        let mut st = State::default();
        let pseudonym = |kind: &str, v: &str| format!("{kind}:<{}>", v.len());
        let first = map_row(
            Layout::Orders,
            &h,
            &[
                "#1001",
                "a@x.com",
                "paid",
                "USD",
                "2024-01-02 10:00:00 -0500",
                "2",
                "Tea",
                "9.50",
                "T-1",
                "Ann Lee",
                "",
            ],
            &mut st,
            &pseudonym,
        )
        .unwrap();
        assert_eq!(first.len(), 2, "the buyer and the line");
        let second = map_row(
            Layout::Orders,
            &h,
            &["#1001", "", "", "", "", "1", "Pot", "40.00", "", "", ""],
            &mut st,
            &pseudonym,
        )
        .unwrap();
        assert_eq!(second.len(), 1);
        let line = &second[0].1;
        let get = |k: &str| line.iter().find(|(c, _)| *c == k).unwrap().1.clone();
        assert_eq!(get("order_id"), "#1001");
        assert_eq!(get("currency"), "USD");
        assert_eq!(
            get("customer_source_id"),
            "email:<7>",
            "a pseudonym, never the address"
        );
        assert_eq!(get("product_id"), "Pot", "no SKU: the line item's name");
    }
}
