//! Rule segments: created from a rule in the engine's expression language, previewed,
//! listed and re-evaluated after every segment or predict run, with membership history.

use patron_domain::Channel;
use patron_engine::rules::{self, Column, RuleError};
use patron_store::{SegmentFacts, SegmentInfo, Store, StoreError};
use std::collections::HashMap;

/// Why a segment could not be made or found.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The rule does not parse or type-check; `column` points into `rule`.
    #[error("rule: {error}\n  {rule}\n  {caret}^", caret = " ".repeat(error.column.saturating_sub(1)))]
    Rule {
        /// The rule as given.
        rule: String,
        /// What is wrong, and where.
        error: RuleError,
    },
    /// A segment of that name exists, or none does.
    #[error("{0}")]
    Name(String),
    /// No such segment.
    #[error("no segment named '{0}'")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<StoreError> for SegmentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => SegmentError::Name(m),
            e => SegmentError::Store(e.into()),
        }
    }
}

type Result<T> = std::result::Result<T, SegmentError>;

/// The columns rules can use, by name, over `facts`.
pub fn columns(facts: &[SegmentFacts]) -> HashMap<String, Column> {
    let num = |f: fn(&SegmentFacts) -> Option<f64>| Column::Number(facts.iter().map(f).collect());
    let text = |f: fn(&SegmentFacts) -> Option<String>| {
        // Equal values share one allocation, which evaluation also uses to compare each
        // distinct value once.
        let mut shared: HashMap<String, std::sync::Arc<str>> = HashMap::new();
        Column::Text(
            facts
                .iter()
                .map(|x| {
                    f(x).map(|v| {
                        shared
                            .entry(v)
                            .or_insert_with_key(|k| std::sync::Arc::from(k.as_str()))
                            .clone()
                    })
                })
                .collect(),
        )
    };
    HashMap::from([
        ("country".into(), text(|f| f.country.clone())),
        ("city".into(), text(|f| f.city.clone())),
        ("gender".into(), text(|f| f.gender.clone())),
        ("records".into(), num(|f| Some(f.records))),
        (
            "sources".into(),
            Column::List(facts.iter().map(|f| f.sources.clone()).collect()),
        ),
        (
            "tags".into(),
            Column::List(facts.iter().map(|f| f.tags.clone()).collect()),
        ),
        (
            "consents".into(),
            Column::List(facts.iter().map(|f| f.consents.clone()).collect()),
        ),
        (
            "days_since_last_order".into(),
            num(|f| f.days_since_last_order),
        ),
        ("orders".into(), num(|f| f.orders)),
        ("total_spent".into(), num(|f| f.total_spent)),
        ("r".into(), num(|f| f.rfm[0])),
        ("f".into(), num(|f| f.rfm[1])),
        ("m".into(), num(|f| f.rfm[2])),
        ("rfm_segment".into(), text(|f| f.rfm_segment.clone())),
        (
            "expected_purchases_90d".into(),
            num(|f| f.expected_purchases_90d),
        ),
        ("clv_12m".into(), num(|f| f.clv_12m)),
        ("p_alive".into(), num(|f| f.p_alive)),
        ("churn_risk".into(), text(|f| f.churn_risk.clone())),
        ("cluster".into(), text(|f| f.cluster.clone())),
    ])
}

/// The profiles `rule` selects now.
async fn evaluate(store: &Store, rule: &str) -> Result<Vec<i64>> {
    let facts = store.segment_facts().await?;
    let table = columns(&facts);
    let parsed =
        rules::parse(rule, &rules::schema(&table)).map_err(|error| SegmentError::Rule {
            rule: rule.to_owned(),
            error,
        })?;
    let selected = rules::evaluate(&parsed, &table, facts.len());
    Ok(facts
        .iter()
        .zip(selected)
        .filter(|(_, s)| *s)
        .map(|(f, _)| f.customer_id)
        .collect())
}

/// What a rule would select, without storing anything.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    /// Profiles it selects.
    pub members: usize,
    /// The first of them, by id.
    pub sample: Vec<i64>,
}

/// Counts and samples the profiles `rule` selects.
pub async fn preview(store: &Store, rule: &str) -> Result<Preview> {
    let members = evaluate(store, rule).await?;
    Ok(Preview {
        members: members.len(),
        sample: members.iter().take(10).copied().collect(),
    })
}

/// Creates a rule segment and fills it; the rule is checked before anything is stored.
pub async fn create(store: &Store, name: &str, rule: &str, actor: &str) -> Result<SegmentInfo> {
    let name = name.trim();
    if name.is_empty() {
        return Err(SegmentError::Name("a segment needs a name".into()));
    }
    let members = evaluate(store, rule).await?;
    let id = store.create_rule_segment(name, rule.trim()).await?;
    store.set_segment_members(id, &members).await?;
    store
        .audit(actor, "segment.create", Some(&id.to_string()), Some(name))
        .await?;
    find(store, name).await
}

/// The segment called `name`.
pub async fn find(store: &Store, name: &str) -> Result<SegmentInfo> {
    store
        .segments()
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| SegmentError::NotFound(name.to_owned()))
}

/// What a campaign export wrote and left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CampaignExport {
    /// Members written: consent granted on the channel, and a contact for it.
    pub written: u64,
    /// Members left out because no record grants consent on the channel, or the latest
    /// statement withdraws it.
    pub without_consent: u64,
    /// Members with consent but no email (email) or phone (SMS) to reach them by.
    pub without_contact: u64,
}

/// Writes the members of segment `name` who may be contacted on `channel` as CSV
/// (customer_id, name, email, phone, city, country, consent_source, consent_at).
/// Consent is the latest statement among each profile's records; none stated is no consent.
pub async fn export_for_campaign(
    store: &Store,
    name: &str,
    channel: Channel,
    out: impl std::io::Write,
) -> Result<CampaignExport> {
    let segment = find(store, name).await?;
    let members = store
        .segment_members(segment.segment_id, i64::MAX, 0)
        .await?;
    let consents = store.consents(None).await?;
    let slot = Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .expect("every channel is in ALL");
    let mut report = CampaignExport {
        written: 0,
        without_consent: 0,
        without_contact: 0,
    };
    let mut granted = HashMap::new();
    for id in members {
        match consents.get(&id).and_then(|c| c[slot].clone()) {
            Some(s) if s.granted => {
                granted.insert(id, s);
            }
            _ => report.without_consent += 1,
        }
    }
    let only = granted.keys().copied().collect();
    let mut w = csv::Writer::from_writer(out);
    let io = std::io::Error::other;
    w.write_record([
        "customer_id",
        "name",
        "email",
        "phone",
        "city",
        "country",
        "consent_source",
        "consent_at",
    ])
    .map_err(|e| anyhow::anyhow!(e))?;
    store
        .export_profiles(Some(&only), |p| {
            let reachable = match channel {
                Channel::Email => p.email.is_some(),
                Channel::Sms => p.phone.is_some(),
                // WeChat is reached through the profile's WeChat record, not a field here.
                Channel::Wechat => true,
            };
            if !reachable {
                report.without_contact += 1;
                return Ok(());
            }
            let s = &granted[&p.customer_id];
            let at = chrono::DateTime::from_timestamp_millis(s.at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            report.written += 1;
            w.serialize((
                p.customer_id,
                p.name,
                p.email,
                p.phone,
                p.city,
                p.country,
                &s.source,
                at,
            ))
            .map_err(io)
        })
        .await?;
    w.flush().map_err(|e| anyhow::anyhow!(e))?;
    Ok(report)
}

/// Re-evaluates every rule segment on the current data. Returns (segments, entered, left).
pub async fn refresh(store: &Store) -> Result<(u64, u64, u64)> {
    let (mut n, mut entered, mut left) = (0, 0, 0);
    for s in store
        .segments()
        .await?
        .into_iter()
        .filter(|s| s.kind == "rule")
    {
        let rule = s.definition.unwrap_or_default();
        let members = evaluate(store, &rule).await?;
        let (e, l) = store.set_segment_members(s.segment_id, &members).await?;
        n += 1;
        entered += e;
        left += l;
    }
    Ok((n, entered, left))
}
