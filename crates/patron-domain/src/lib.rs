//! Patron's domain: the types every later stage relies on, and the clean + standardize stage
//! that makes them out of raw input.
//!
//! Everything here is pure: strings in, typed values or field-level problems out. Nothing in
//! this crate reads a file, opens a socket or touches a database, so every rule is testable
//! with a one-line table entry. Values are made only by parsing (`Email::parse`,
//! `Phone::parse`, ...): once a value exists it is standardized.

mod consent;
mod country;
mod date;
mod email;
mod gender;
pub mod mask;
mod money;
mod name;
mod phone;
mod record;

pub use consent::{parse_flag, parse_tags, Channel, Consent, Standing};
pub use country::Country;
pub use date::{parse_date, parse_timestamp, parse_timestamp_in, DateOrder, DateReading};
pub use email::Email;
pub use gender::Gender;
pub use money::{Currency, Money};
pub use name::PersonName;
pub use phone::{warm_phone_rules, Phone, NO_REGION};
pub use record::{city_key, homophone_city, postal_key, street_key};
pub use record::{
    clean_customer, clean_order_line, clean_product, Address, CleanConfig, CustomerRecord,
    FieldIssue, FieldReport, OrderLine, OrderStatus, Product, RawRow, RowError, CUSTOMER_COLUMNS,
    ORDER_COLUMNS, PRODUCT_COLUMNS,
};

/// Why one value could not be standardized. The message is meant for a data team reading a
/// quarantine report, so it names the rule that failed, never an internal detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Invalid(msg.into())
    }
}

/// The longest value any single text field may hold, in bytes. Longer input is rejected rather
/// than truncated: a 200 KB "name" is a broken export, not a person.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Trims `raw` and returns `None` when nothing is left, so "  " and "" both mean "missing".
pub fn non_empty(raw: &str) -> Option<&str> {
    let t = raw.trim();
    (!t.is_empty()).then_some(t)
}

fn check_len(value: &str) -> Result<(), Invalid> {
    if value.len() > MAX_FIELD_BYTES {
        return Err(Invalid::new(format!(
            "longer than {MAX_FIELD_BYTES} bytes ({} bytes)",
            value.len()
        )));
    }
    Ok(())
}

/// What a user or API key may do. The permission table lives in the server; the roles are
/// domain vocabulary shared by the CLI, storage and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything.
    Admin,
    /// Segments, metrics and pseudonymous exports; personal fields masked.
    Analyst,
    /// Customer look-up, the 360° view, tickets.
    Agent,
    /// Writes events only; reads nothing.
    Ingest,
}

impl Role {
    /// Every role, for tables and help texts.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Agent, Role::Ingest];

    /// Parses a role name (`admin`, `analyst`, `agent`, `ingest`).
    pub fn parse(raw: &str) -> Result<Role, Invalid> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| Invalid::new("unknown role; expected admin, analyst, agent or ingest"))
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Agent => "agent",
            Role::Ingest => "ingest",
        }
    }
}
