//! Identity resolution over stored records: the unify run, explanations, and people's
//! corrections (merge, unmerge, never-merge, review). A correction takes effect at once, on
//! the profiles it touches only, and is stored as a decision about record pairs that every
//! later run obeys.

use crate::stages::StageSummary;
use patron_domain::{Email, PersonName};
use patron_engine::matching::{self, MatchRecord};
use patron_engine::unify;
use patron_store::{
    field_name, Decision, FieldValue, GoldenRow, Merge, Placement, Profiles, RecordRef, Store,
    Unification, UnifyRecord, Vault, GOLDEN_FIELDS,
};
use rayon::prelude::*;
use std::collections::HashMap;

/// Why an explanation or a correction could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A named profile, record or queued pair does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The request does not fit the profiles as they are (already one profile, nothing to
    /// undo).
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<patron_store::StoreError> for IdentityError {
    fn from(e: patron_store::StoreError) -> Self {
        match e {
            // What is stored changed under the request (a record erased meanwhile): the
            // message says what to do.
            patron_store::StoreError::Stale(m) => IdentityError::Refused(m),
            e => IdentityError::Store(e.into()),
        }
    }
}

type Result<T> = std::result::Result<T, IdentityError>;

fn not_found<T>(message: String) -> Result<T> {
    Err(IdentityError::NotFound(message))
}

fn refused<T>(message: String) -> Result<T> {
    Err(IdentityError::Refused(message))
}

/// Where the fitted matching model is kept, for explanations and review.
pub const MODEL_SETTING: &str = "unify_model";

/// The review queue keeps at most this many pairs, the most uncertain ones: more than a team
/// works through between two runs.
const REVIEW_LIMIT: usize = 10_000;

/// Decisions that split a profile record by record are capped, so unmerging a giant profile
/// cannot write millions of rows; the pairs beyond the cap are decided by the next run.
const SPLIT_DECISIONS: usize = 100_000;

pub(crate) async fn unify_stage(store: &Store) -> anyhow::Result<StageSummary> {
    let mut clock = Phases::default();
    let rules = match_rules(store).await?;
    let featurizing = rules.clone();
    let (records, matches) = store
        .unify_snapshot_with(move |vault, r| match_record(vault, r, &featurizing))
        .await?;
    clock.lap("read, open and featurize records");
    let index: HashMap<i64, u32> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.record_id, i as u32))
        .collect();
    let mut decisions = matching::Decisions::default();
    for (a, b, d) in store.decisions().await? {
        // Decisions about records erased since are skipped.
        if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) {
            match d {
                Decision::Same => decisions.same.push((i, j)),
                Decision::Different => decisions.different.push((i, j)),
            }
        }
    }
    // Tracking's alias calls are deterministic links, like a person's decision.
    let aliases = if rules.aliases {
        store.alias_links().await?
    } else {
        Vec::new()
    };
    for (a, b) in &aliases {
        if let (Some(&i), Some(&j)) = (index.get(a), index.get(b)) {
            // Like the identifier rules: not from an untrusted source, not over a person's
            // never-merge.
            if !matches[i as usize].untrusted && !matches[j as usize].untrusted {
                decisions.links.push((i, j));
            }
        }
    }
    let keys: Vec<_> = matches
        .par_iter()
        .map(|f| place_key(store.vault(), f))
        .collect();
    let matching::Resolution {
        clustering,
        model,
        candidate_pairs,
        linked_pairs,
        linked_outright,
        uncertain,
    } = matching::resolve(matches, &rules.settings(), &decisions);
    clock.lap("resolve (block, compare, estimate, cluster)");
    store
        .put_setting(MODEL_SETTING, &serde_json::to_vec(&model)?)
        .await?;
    let prior: Vec<Option<i64>> = records.iter().map(|r| r.customer_id).collect();
    let ids = unify::assign_ids(&clustering, &prior, store.max_customer_id().await? + 1);
    let profile_of: Vec<i64> = clustering
        .cluster_of
        .iter()
        .map(|&c| ids[c as usize])
        .collect();
    let (mut new, mut moved) = (0u64, 0u64);
    for (r, &id) in records.iter().zip(&profile_of) {
        match r.customer_id {
            None => new += 1,
            Some(old) if old != id => moved += 1,
            Some(_) => {}
        }
    }
    let rules = survivorship(store).await?;
    let review: Vec<(i64, i64, f64)> = uncertain
        .iter()
        .take(REVIEW_LIMIT)
        .map(|&(i, j, w)| {
            (
                records[i as usize].record_id,
                records[j as usize].record_id,
                w,
            )
        })
        .collect();
    let read = records.len() as u64;
    let (mut profiles_made, mut merges_made) = (0u64, 0u64);
    // SQLite writes the placement (assignments, lookup tables) while survivorship runs on the
    // other core.
    store
        .write_unification(None, placement(&records, &profile_of, keys), || {
            let p = Profiles {
                golden: golden(store.vault(), &records, &profile_of, &rules),
                merges: merges(&records, &profile_of),
                undone: Vec::new(),
                actor: "unify".into(),
            };
            (profiles_made, merges_made) = (p.golden.len() as u64, p.merges.len() as u64);
            clock.lap("survivorship");
            // The sealed records are not needed for writing the rest.
            drop(records);
            p
        })
        .await?;
    clock.lap("write profiles");
    attribute_activity(store).await?;
    clock.lap("attribute activity");
    store.replace_review_queue(review).await?;
    clock.lap("review queue");
    Ok(StageSummary {
        stage: "unify",
        counts: vec![
            ("records", read),
            ("candidate pairs", candidate_pairs as u64),
            ("pairs linked by weight", linked_pairs as u64),
            ("pairs linked outright", linked_outright as u64),
            ("EM iterations", model.iterations as u64),
            ("profiles", profiles_made),
            ("new records placed", new),
            ("records moved between profiles", moved),
            ("profiles merged into others", merges_made),
            ("pairs for review", uncertain.len().min(REVIEW_LIMIT) as u64),
            (
                "decisions and alias links obeyed",
                (decisions.same.len() + decisions.different.len() + decisions.links.len()) as u64,
            ),
        ],
        notes: Vec::new(),
    })
}

/// Wall time per phase of a stage, logged at debug level (`RUST_LOG=patron_pipeline=debug`)
/// so a slow run shows where its time went.
struct Phases(std::time::Instant);

impl Default for Phases {
    fn default() -> Self {
        Phases(std::time::Instant::now())
    }
}

impl Phases {
    fn lap(&mut self, phase: &str) {
        tracing::debug!(
            phase,
            seconds = self.0.elapsed().as_secs_f64(),
            "unify phase"
        );
        self.0 = std::time::Instant::now();
    }
}

/// Where the deterministic matching rules are kept.
pub const MATCH_RULES_SETTING: &str = "match_rules";

/// Which links unify makes outright, before weighing (`patron match-rules`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MatchRules {
    /// The same email, phone or loyalty id.
    pub links: matching::LinkRules,
    /// Tracking `alias` calls (previousId → userId) join the two ids' records.
    pub aliases: bool,
    /// Sources whose records the identifier rules never join (they are still weighed): a
    /// marketplace that relays emails, tills that type the store's own phone.
    pub untrusted_sources: Vec<String>,
}

impl Default for MatchRules {
    fn default() -> Self {
        MatchRules {
            links: matching::LinkRules::default(),
            aliases: true,
            untrusted_sources: Vec::new(),
        }
    }
}

impl MatchRules {
    /// Whether records of `source` are kept out of the identifier rules.
    pub fn untrusted(&self, source: &str) -> bool {
        self.untrusted_sources
            .iter()
            .any(|s| s.eq_ignore_ascii_case(source))
    }

    /// The matching settings these rules make.
    pub fn settings(&self) -> matching::Settings {
        matching::Settings {
            rules: self.links,
            ..matching::Settings::default()
        }
    }

    /// Sets the deterministic rules from a list of `email`, `phone`, `loyalty`, `aliases`
    /// (or `none`).
    pub fn set_deterministic(&mut self, names: &[String]) -> std::result::Result<(), String> {
        let mut on = (false, false, false, false);
        for n in names {
            match n.trim().to_ascii_lowercase().as_str() {
                "email" => on.0 = true,
                "phone" => on.1 = true,
                "loyalty" => on.2 = true,
                "aliases" => on.3 = true,
                "none" | "" => {}
                other => {
                    return Err(format!(
                        "unknown rule '{other}' (email, phone, loyalty, aliases or none)"
                    ))
                }
            }
        }
        self.links = matching::LinkRules {
            email: on.0,
            phone: on.1,
            loyalty: on.2,
        };
        self.aliases = on.3;
        Ok(())
    }
}

/// Attributes unattributed activity to profiles, following alias calls if the rules do.
pub async fn attribute_activity(store: &Store) -> Result<()> {
    let aliases = match_rules(store).await?.aliases;
    store.attribute_activity(aliases).await?;
    Ok(())
}

/// The stored matching rules (the default when none were set).
pub async fn match_rules(store: &Store) -> Result<MatchRules> {
    json_setting(store, MATCH_RULES_SETTING).await
}

/// Stores matching rules; they apply from the next unify run and to online matching at once.
pub async fn set_match_rules(store: &Store, rules: &MatchRules, actor: &str) -> Result<()> {
    put_json_setting(store, MATCH_RULES_SETTING, rules, actor, "match_rules.set").await
}

/// A setting stored as JSON, or its default when none was set.
async fn json_setting<T: serde::de::DeserializeOwned + Default>(
    store: &Store,
    name: &str,
) -> Result<T> {
    match store.setting(name).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| IdentityError::Store(e.into())),
        None => Ok(T::default()),
    }
}

/// Stores a setting as JSON and audits the change with the new value.
async fn put_json_setting<T: serde::Serialize>(
    store: &Store,
    name: &str,
    value: &T,
    actor: &str,
    action: &str,
) -> Result<()> {
    let json = serde_json::to_vec(value).map_err(|e| IdentityError::Store(e.into()))?;
    store.put_setting(name, &json).await?;
    let detail = String::from_utf8_lossy(&json).into_owned();
    store.audit(actor, action, None, Some(&detail)).await?;
    Ok(())
}

/// Where the survivorship rules are kept.
pub const SURVIVORSHIP_SETTING: &str = "survivorship";

/// Per golden field, how its value is chosen, and the order in which sources are trusted.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Survivorship {
    /// Field (as [`patron_store::field_name`] names it) → rule; fields not named use
    /// `most_recent`.
    pub rules: std::collections::BTreeMap<String, unify::Rule>,
    /// Sources, most trusted first, for `most_trusted`; sources not listed come after them.
    pub trust: Vec<String>,
}

impl Survivorship {
    /// The rule of each golden field, in [`GOLDEN_FIELDS`] order.
    pub fn field_rules(&self) -> [unify::Rule; 8] {
        GOLDEN_FIELDS.map(|col| {
            self.rules
                .get(field_name(col))
                .copied()
                .unwrap_or(unify::Rule::MostRecent)
        })
    }

    /// Sets one field's rule from `FIELD=RULE`.
    pub fn set_rule(&mut self, spec: &str) -> std::result::Result<(), String> {
        let (field, rule) = spec
            .split_once('=')
            .ok_or_else(|| format!("'{spec}': give FIELD=RULE, e.g. name=longest"))?;
        let field = field.trim().to_ascii_lowercase();
        if !GOLDEN_FIELDS.iter().any(|c| field_name(c) == field) {
            let names: Vec<&str> = GOLDEN_FIELDS.iter().map(|c| field_name(c)).collect();
            return Err(format!(
                "unknown field '{field}' (one of: {})",
                names.join(", ")
            ));
        }
        self.rules.insert(field, unify::Rule::parse(rule)?);
        Ok(())
    }
}

/// The stored survivorship rules (the default when none were set).
pub async fn survivorship(store: &Store) -> Result<Survivorship> {
    json_setting(store, SURVIVORSHIP_SETTING).await
}

/// Stores survivorship rules; they apply from the next unify run or correction.
pub async fn set_survivorship(store: &Store, rules: &Survivorship, actor: &str) -> Result<()> {
    put_json_setting(
        store,
        SURVIVORSHIP_SETTING,
        rules,
        actor,
        "survivorship.set",
    )
    .await
}

/// The golden records (survivorship) of the profiles `records` make up when record `i`
/// belongs to `profile_of[i]`.
fn golden(
    vault: &Vault,
    records: &[UnifyRecord],
    profile_of: &[i64],
    rules: &Survivorship,
) -> Vec<GoldenRow> {
    let mut number: HashMap<i64, u32> = HashMap::new();
    let mut ids = Vec::new();
    let cluster_of: Vec<u32> = profile_of
        .iter()
        .map(|&p| {
            *number.entry(p).or_insert_with(|| {
                ids.push(p);
                ids.len() as u32 - 1
            })
        })
        .collect();
    let clustering = unify::Clustering {
        cluster_of,
        clusters: ids.len(),
    };
    let field_rules = rules.field_rules();
    let values: Vec<Option<unify::Candidate>> = records
        .par_iter()
        .flat_map_iter(|r| candidates(vault, r, &field_rules))
        .collect();
    let trust: Vec<u32> = records
        .iter()
        .map(|r| {
            let rank = rules.trust.iter().position(|s| *s == r.source);
            rank.unwrap_or(rules.trust.len()) as u32
        })
        .collect();
    let recency: Vec<i64> = records.iter().map(|r| r.recency).collect();
    let facts = unify::Facts {
        recency: &recency,
        trust: &trust,
        values: &values,
    };
    let winners = unify::survivors(&clustering, facts, &field_rules);
    let mut sizes = vec![0i64; clustering.clusters];
    let mut created = vec![i64::MAX; clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        sizes[c as usize] += 1;
        created[c as usize] = created[c as usize].min(records[i].received_at);
    }
    winners
        .iter()
        .enumerate()
        .map(|(c, fields)| GoldenRow {
            customer_id: ids[c],
            fields: std::array::from_fn(|f| fields[f].and_then(|i| records[i].fields[f].clone())),
            records: sizes[c],
            created_at: created[c],
            sources: std::array::from_fn(|f| fields[f].map(|i| records[i].source.clone())),
        })
        .collect()
}

/// Where each record went (`profile_of[i]` is record `i`'s profile), with the lookup rows of
/// those profiles: each record's identities, and its name tokens with its [`place_key`]
/// (`keys[i]`).
fn placement(records: &[UnifyRecord], profile_of: &[i64], keys: Vec<Option<Vec<u8>>>) -> Placement {
    // In parallel: the SQLite write starts only once this is made (at 200,000 records 0.1 s
    // on one core, mostly copying 700,000 hashes).
    let placed = || records.par_iter().zip(profile_of);
    Placement {
        assignments: placed().map(|(r, &id)| (r.record_id, id)).collect(),
        identities: placed()
            .flat_map_iter(|(r, &id)| {
                [
                    ("email", &r.email_hash),
                    ("phone", &r.phone_hash),
                    ("loyalty", &r.loyalty_hash),
                ]
                .into_iter()
                .filter_map(move |(kind, h)| Some((id, kind, h.clone()?)))
            })
            .collect(),
        // The place key shares the name index's narrow rows: in `identities`, with a kind per
        // row, it made the write of 1,000,000 records 3.5 s longer (rows and their index by
        // profile), here 0.7 s.
        name_tokens: placed()
            .zip(keys)
            .flat_map_iter(|((r, &id), key)| {
                r.name_tokens
                    .iter()
                    .flat_map(|t| t.chunks(16))
                    .map(<[u8]>::to_vec)
                    .chain(key)
                    .map(move |t| (id, t))
            })
            .collect(),
    }
}

/// The kind of blind index [`place_key`] makes (kept in the name index's table).
const PLACE_KEY: &str = "birth_place";

/// The blind index that finds a record's profile online besides its email, phone, loyalty id
/// and name: its birth date with its postal code (one of the full run's blocking rules).
/// Without it a duplicate with a misspelt name and no email or phone waited for the next full
/// run: online, FEBRL4's second file found 2,731 of its 5,000 originals through the name
/// alone. (The birth date with the city as well found 257 more there, but cost a 200,000-record
/// run another 134,000 lookup rows, and a big city holds too many people born on one day.)
fn place_key(vault: &Vault, f: &MatchRecord) -> Option<Vec<u8>> {
    let (birth, postal) = (f.birth.as_ref()?, f.postal.as_ref()?);
    Some(vault.blind(PLACE_KEY, &format!("{birth}|{postal}")))
}

/// The whole of a unification of `records` in `scope`, by `actor`.
fn unification(
    vault: &Vault,
    records: &[UnifyRecord],
    profile_of: &[i64],
    rules: &Survivorship,
    scope: Vec<i64>,
    actor: &str,
) -> Unification {
    Unification {
        scope: Some(scope),
        placement: placement(
            records,
            profile_of,
            match_records(vault, records, &MatchRules::default())
                .iter()
                .map(|f| place_key(vault, f))
                .collect(),
        ),
        profiles: Profiles {
            golden: golden(vault, records, profile_of, rules),
            actor: actor.to_owned(),
            ..Profiles::default()
        },
    }
}

/// Profiles whose records all went into other profiles: each old id that no profile keeps,
/// with the profile that took (most of) its records.
fn merges(records: &[UnifyRecord], profile_of: &[i64]) -> Vec<Merge> {
    let live: std::collections::HashSet<i64> = profile_of.iter().copied().collect();
    let mut moved: std::collections::BTreeMap<(i64, i64), Vec<i64>> = Default::default();
    for (r, &id) in records.iter().zip(profile_of) {
        if let Some(old) = r
            .customer_id
            .filter(|old| *old != id && !live.contains(old))
        {
            moved.entry((old, id)).or_default().push(r.record_id);
        }
    }
    // An old profile split over several survivors resolves to the one with most of it.
    let mut best: HashMap<i64, Merge> = HashMap::new();
    for ((merged, survivor), records) in moved {
        let slot = best.entry(merged).or_insert(Merge {
            survivor,
            merged,
            records: Vec::new(),
        });
        if records.len() > slot.records.len() {
            *slot = Merge {
                survivor,
                merged,
                records,
            };
        }
    }
    let mut out: Vec<Merge> = best.into_values().collect();
    out.sort_by_key(|m| m.merged);
    out
}

/// Explains the match weight of two stored records named `SOURCE:ID`, with the model the
/// last unify run fitted.
pub async fn explain(store: &Store, a: &str, b: &str) -> Result<matching::Explanation> {
    let Some(model) = store.setting(MODEL_SETTING).await? else {
        return refused("no matching model yet: run `patron run unify` first".into());
    };
    let mut model: matching::Model =
        serde_json::from_slice(&model).map_err(|e| IdentityError::Store(e.into()))?;
    let records = store.unify_snapshot().await?;
    let find = |name: &str| -> Result<usize> {
        let (source, id) = split_ref(name)?;
        match records
            .iter()
            .position(|r| r.source == source && r.source_id == id)
        {
            Some(i) => Ok(i),
            None => not_found(format!("no record {name}")),
        }
    };
    let (i, j) = (find(a)?, find(b)?);
    let rules = match_rules(store).await?;
    let matches = match_records(store.vault(), &records, &rules);
    model.count_term_frequencies(&matches);
    let (a, b) = (&matches[i], &matches[j]);
    Ok(rules.links.explain(&model, a, b))
}

fn split_ref(name: &str) -> Result<(&str, &str)> {
    name.split_once(':')
        .ok_or_else(|| IdentityError::Invalid(format!("'{name}': name a record as SOURCE:ID")))
}

/// The record named `SOURCE:ID`.
pub async fn record(store: &Store, name: &str) -> Result<RecordRef> {
    let (source, id) = split_ref(name)?;
    match store.record_ref(source, id).await? {
        Some(r) => Ok(r),
        None => not_found(format!("no record {name}")),
    }
}

/// The live profile an id names, following merges.
async fn live(store: &Store, id: i64) -> Result<i64> {
    if store.profile_exists(id).await? {
        return Ok(id);
    }
    match store.alias_of(id).await? {
        Some(to) => Ok(to),
        None => not_found(format!("no profile {id}")),
    }
}

/// The live profile `id` names now: itself, or the profile its records were merged into.
pub async fn resolve_profile(store: &Store, id: i64) -> Result<Option<i64>> {
    if store.profile_exists(id).await? {
        return Ok(Some(id));
    }
    Ok(store.alias_of(id).await?)
}

/// What a correction did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Correction {
    /// The profile that holds the records now (merge) or that they left (unmerge, split).
    pub profile: i64,
    /// The other profile: merged away, restored or created.
    pub other: i64,
    /// Records that moved.
    pub records_moved: usize,
}

/// Merges profile `merged` into `survivor` now, and decides that their records are one person
/// so later runs keep them together. `unmerge(merged)` undoes it.
pub async fn merge(store: &Store, survivor: i64, merged: i64, actor: &str) -> Result<Correction> {
    let (s, m) = (live(store, survivor).await?, live(store, merged).await?);
    if s == m {
        return refused(format!(
            "profiles {survivor} and {merged} are already one profile ({s})"
        ));
    }
    let records = store.profile_records(&[s, m]).await?;
    let first = |p: i64| records.iter().find(|r| r.customer_id == Some(p));
    if let (Some(a), Some(b)) = (first(s), first(m)) {
        store
            .decide(&[(a.record_id, b.record_id)], Decision::Same, actor)
            .await?;
    }
    let moving: Vec<i64> = records
        .iter()
        .filter(|r| r.customer_id == Some(m))
        .map(|r| r.record_id)
        .collect();
    let profile_of = vec![s; records.len()];
    let rules = survivorship(store).await?;
    let mut u = unification(
        store.vault(),
        &records,
        &profile_of,
        &rules,
        vec![s, m],
        actor,
    );
    u.profiles.merges = vec![Merge {
        survivor: s,
        merged: m,
        records: moving.clone(),
    }];
    store.apply_unification(u).await?;
    attribute_activity(store).await?;
    Ok(Correction {
        profile: s,
        other: m,
        records_moved: moving.len(),
    })
}

/// Undoes the latest merge that took profile `merged`'s records away (a person's or a unify
/// run's): the records it moved go back to `merged`, their orders with them, and they are
/// decided to be different persons from the rest of the profile they were in.
pub async fn unmerge(store: &Store, merged: i64, actor: &str) -> Result<Correction> {
    if store.profile_exists(merged).await? {
        return refused(format!(
            "profile {merged} was not merged away; to take one record out of a profile, \
             use `patron unmerge --record SOURCE:ID`"
        ));
    }
    let Some(entry) = store.merge_to_undo(merged).await? else {
        return not_found(format!("no merge of profile {merged} to undo"));
    };
    let holder = live(store, entry.merge.survivor).await?;
    let records = store.profile_records(&[holder]).await?;
    let moving: std::collections::HashSet<i64> = entry.merge.records.iter().copied().collect();
    let profile_of: Vec<i64> = records
        .iter()
        .map(|r| {
            if moving.contains(&r.record_id) {
                merged
            } else {
                holder
            }
        })
        .collect();
    let moved = profile_of.iter().filter(|&&p| p == merged).count();
    if moved == 0 || moved == records.len() {
        return refused(format!(
            "the records of profile {merged} have moved on since; nothing to unmerge"
        ));
    }
    keep_apart(store, &records, &profile_of, merged, actor).await?;
    let rules = survivorship(store).await?;
    let scope = vec![holder, merged];
    let mut u = unification(store.vault(), &records, &profile_of, &rules, scope, actor);
    u.profiles.undone = vec![entry.merge_id];
    store.apply_unification(u).await?;
    attribute_activity(store).await?;
    let target = format!("{holder} -> {merged}");
    let detail = format!("{moved} records");
    store
        .audit(actor, "profile.unmerge", Some(&target), Some(&detail))
        .await?;
    Ok(Correction {
        profile: holder,
        other: merged,
        records_moved: moved,
    })
}

/// Takes one record out of its profile into a new profile of its own, decided to be a
/// different person from the profile's other records.
pub async fn split(store: &Store, record: &RecordRef, actor: &str) -> Result<Correction> {
    let name = format!("{}:{}", record.source, record.source_id);
    let Some(holder) = record.customer_id else {
        return refused(format!(
            "record {name} has no profile yet: run `patron run unify`"
        ));
    };
    let records = store.profile_records(&[holder]).await?;
    if records.len() < 2 {
        return refused(format!(
            "record {name} is already alone in profile {holder}"
        ));
    }
    let new = store.max_customer_id().await? + 1;
    let profile_of: Vec<i64> = records
        .iter()
        .map(|r| {
            if r.record_id == record.record_id {
                new
            } else {
                holder
            }
        })
        .collect();
    keep_apart(store, &records, &profile_of, new, actor).await?;
    let rules = survivorship(store).await?;
    let scope = vec![holder, new];
    let u = unification(store.vault(), &records, &profile_of, &rules, scope, actor);
    store.apply_unification(u).await?;
    attribute_activity(store).await?;
    let target = format!("{holder} -> {new}");
    store
        .audit(actor, "profile.split", Some(&target), Some(&name))
        .await?;
    Ok(Correction {
        profile: holder,
        other: new,
        records_moved: 1,
    })
}

/// Decides that the records going to `apart` are different persons from the others.
async fn keep_apart(
    store: &Store,
    records: &[UnifyRecord],
    profile_of: &[i64],
    apart: i64,
    actor: &str,
) -> Result<()> {
    let (going, staying): (Vec<_>, Vec<_>) = records
        .iter()
        .zip(profile_of)
        .partition(|(_, &p)| p == apart);
    let pairs: Vec<(i64, i64)> = going
        .iter()
        .flat_map(|(a, _)| staying.iter().map(|(b, _)| (a.record_id, b.record_id)))
        .take(SPLIT_DECISIONS)
        .collect();
    store.decide(&pairs, Decision::Different, actor).await?;
    Ok(())
}

/// Decides that two profiles are different persons: no later run merges them.
pub async fn never_merge(store: &Store, a: i64, b: i64, actor: &str) -> Result<()> {
    let (pa, pb) = (live(store, a).await?, live(store, b).await?);
    if pa == pb {
        return refused(format!(
            "profiles {a} and {b} are one profile ({pa}); split it first with \
             `patron unmerge` or `patron unmerge --record SOURCE:ID`"
        ));
    }
    let records = store.profile_records(&[pa, pb]).await?;
    let profile_of: Vec<i64> = records.iter().filter_map(|r| r.customer_id).collect();
    keep_apart(store, &records, &profile_of, pb, actor).await?;
    let pairs: Vec<(i64, i64)> = records
        .iter()
        .filter(|r| r.customer_id == Some(pa))
        .flat_map(|x| {
            records
                .iter()
                .filter(|r| r.customer_id == Some(pb))
                .map(|y| (x.record_id, y.record_id))
        })
        .collect();
    store.review_remove(&pairs).await?;
    store
        .audit(
            actor,
            "profile.never_merge",
            Some(&format!("{pa},{pb}")),
            None,
        )
        .await?;
    Ok(())
}

/// Accepts a queued pair as one person: stores the decision and merges their profiles.
pub async fn review_accept(store: &Store, review_id: i64, actor: &str) -> Result<()> {
    let (a, b) = review_decide(store, review_id, Decision::Same, actor).await?;
    if let (Some(pa), Some(pb)) = (a.customer_id, b.customer_id) {
        if pa != pb {
            merge(store, pa.min(pb), pa.max(pb), actor).await?;
        }
    }
    Ok(())
}

/// Rejects a queued pair: stores that they are different persons and, if the last run put
/// them in one profile, takes the second record out of it.
pub async fn review_reject(store: &Store, review_id: i64, actor: &str) -> Result<()> {
    let (a, b) = review_decide(store, review_id, Decision::Different, actor).await?;
    if a.customer_id.is_some() && a.customer_id == b.customer_id {
        split(store, &b, actor).await?;
    }
    Ok(())
}

/// Takes a pair off the queue with a person's decision, audited; returns its two records.
async fn review_decide(
    store: &Store,
    review_id: i64,
    decision: Decision,
    actor: &str,
) -> Result<(RecordRef, RecordRef)> {
    let Some(item) = store.review_item(review_id).await? else {
        return not_found(format!("no pair {review_id} in the review queue"));
    };
    let pair = (item.a.record_id, item.b.record_id);
    store.decide(&[pair], decision, actor).await?;
    store.review_remove(&[pair]).await?;
    let action = match decision {
        Decision::Same => "review.accept",
        Decision::Different => "review.reject",
    };
    store
        .audit(actor, action, Some(&review_id.to_string()), None)
        .await?;
    Ok((item.a, item.b))
}

/// Candidate profiles looked up per key when matching online. A name shared by more people
/// than this cannot decide a match on its own anyway (a name-only link needs a single
/// candidate); emails and phones are rarely shared by so many.
const ONLINE_CANDIDATES: i64 = 20;

/// Imports that add more new records than this are placed by the next `patron run unify`
/// instead: at that size a full run (which also re-estimates the model) is faster than
/// record-by-record placement.
pub const ONLINE_LIMIT: usize = 20_000;

/// A record to match against the stored profiles: its comparison features and the blind
/// indexes that find its candidates.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Comparison features (in memory only).
    pub features: MatchRecord,
    /// The record's source, for the untrusted-sources rule.
    source: Option<String>,
    /// Blind indexes of the email, phone and loyalty id.
    identities: Vec<Vec<u8>>,
    /// Blind indexes of the whole-name keys (any word order, pinyin) and the [`place_key`],
    /// looked up in the name index.
    names: Vec<Vec<u8>>,
}

impl Probe {
    /// The probe of a stored record.
    fn of_stored(vault: &Vault, r: &UnifyRecord) -> Probe {
        // Untrusted is decided when the probe is matched, under the rules of that moment.
        let features = match_record(vault, r, &MatchRules::default());
        let identities = [&r.email_hash, &r.phone_hash, &r.loyalty_hash]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        Probe::new(vault, features, identities, Some(r.source.clone()))
    }

    /// The probe of a cleaned record that is not stored (a lookup).
    pub fn of_record(vault: &Vault, r: &patron_domain::CustomerRecord) -> Probe {
        let features = MatchRecord {
            names: r.name.as_ref().map(|n| n.match_keys()).unwrap_or_default(),
            email: r.email.as_ref().map(|e| e.match_key()),
            phone: r.phone.as_ref().map(|p| p.as_str().to_owned()),
            birth: r.birth_date.map(|d| d.format("%Y%m%d").to_string()),
            address: r.address.line1.as_deref().map(patron_domain::street_key),
            postal: r
                .address
                .postal_code
                .as_deref()
                .map(patron_domain::postal_key),
            city: r.address.city.as_deref().map(patron_domain::city_key),
            city_homophone: r
                .address
                .city
                .as_deref()
                .and_then(patron_domain::homophone_city),
            gender: r.gender.map(|g| g.code().to_owned()),
            loyalty: r
                .loyalty_id
                .as_ref()
                .map(|id| hex(&vault.blind("loyalty", id))),
            untrusted: false,
        };
        let mut identities = Vec::new();
        if let Some(id) = &r.loyalty_id {
            identities.push(vault.blind("loyalty", id));
        }
        if let Some(e) = &r.email {
            identities.push(vault.blind("email", &e.match_key()));
        }
        if let Some(p) = &r.phone {
            identities.push(vault.blind("phone", p.as_str()));
        }
        Probe::new(vault, features, identities, Some(r.source.clone()))
    }

    fn new(
        vault: &Vault,
        features: MatchRecord,
        identities: Vec<Vec<u8>>,
        source: Option<String>,
    ) -> Probe {
        let names = features
            .names
            .iter()
            .map(|k| vault.blind("name", k))
            .chain(place_key(vault, &features))
            .collect();
        Probe {
            features,
            source,
            identities,
            names,
        }
    }
}

/// A stored profile a record may belong to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProfileCandidate {
    /// The profile.
    pub customer_id: i64,
    /// Best match weight (log2 odds) with one of its records.
    pub weight: f64,
    /// Its probability.
    pub probability: f64,
    /// Linked by the same email or phone.
    pub deterministic: bool,
    /// Whether the record would join it.
    pub links: bool,
}

/// The model the last unify run fitted, if any, and the matching rules, read together (one
/// round trip for an online lookup).
async fn model_and_rules(store: &Store) -> Result<(Option<matching::Model>, MatchRules)> {
    let json = |e: serde_json::Error| IdentityError::Store(e.into());
    let [model, rules]: [Option<Vec<u8>>; 2] = store
        .settings(&[MODEL_SETTING, MATCH_RULES_SETTING])
        .await?
        .try_into()
        .expect("one value per setting asked for");
    let model = model
        .map(|m| serde_json::from_slice(&m))
        .transpose()
        .map_err(json)?;
    let rules = rules
        .map(|r| serde_json::from_slice(&r))
        .transpose()
        .map_err(json)?;
    Ok((model, rules.unwrap_or_default()))
}

/// Scores `probe` against its candidate profiles; returns them with their records.
async fn match_probe(
    store: &Store,
    model: &matching::Model,
    probe: &Probe,
    rules: &MatchRules,
) -> Result<(Vec<i64>, matching::Placement, Vec<UnifyRecord>)> {
    let records = store
        .candidate_records(&probe.identities, &probe.names, ONLINE_CANDIDATES)
        .await?;
    let mut ids: Vec<i64> = records.iter().filter_map(|r| r.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let features: Vec<MatchRecord> = records
        .iter()
        .map(|r| match_record(store.vault(), r, rules))
        .collect();
    let groups: Vec<Vec<&MatchRecord>> = ids
        .iter()
        .map(|id| {
            records
                .iter()
                .zip(&features)
                .filter(|(r, _)| r.customer_id == Some(*id))
                .map(|(_, f)| f)
                .collect()
        })
        .collect();
    let mut own = probe.features.clone();
    own.untrusted = probe.source.as_deref().is_some_and(|s| rules.untrusted(s));
    let placement = matching::place(model, &rules.settings(), &own, &groups);
    Ok((ids, placement, records))
}

/// The stored profiles a record could belong to, best first, scored with the model of the
/// last unify run (without term-frequency adjustment).
pub async fn find_matches(store: &Store, probe: &Probe) -> Result<Vec<ProfileCandidate>> {
    let (Some(model), rules) = model_and_rules(store).await? else {
        return refused("no matching model yet: run `patron run unify` first".into());
    };
    let (ids, placement, _) = match_probe(store, &model, probe, &rules).await?;
    Ok(placement
        .matches
        .iter()
        .map(|m| ProfileCandidate {
            customer_id: ids[m.profile],
            weight: m.weight,
            probability: m.probability,
            deterministic: m.deterministic,
            links: m.links,
        })
        .collect())
}

/// What online placement did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Placed {
    /// New records that joined an existing profile.
    pub joined: usize,
    /// New records that started a profile of their own.
    pub new_profiles: usize,
    /// New records left for the next `patron run unify` (no model yet, or too many).
    pub waiting: usize,
}

/// Places every record no profile holds yet (imported since the last run) into a profile,
/// one by one, without a full run: each is matched against the profiles its email, phone,
/// loyalty id, birth date + postal code or name finds, with the last run's model, joins the one it links to or starts its own, and
/// that profile's golden record is rewritten. Left for the next full run when there is no
/// model yet or more than [`ONLINE_LIMIT`] records wait.
pub async fn place_new_records(store: &Store, progress: &indicatif::ProgressBar) -> Result<Placed> {
    // Counted first: a large import waiting for a run must not be read on every API call.
    let count = store.unplaced_count().await? as usize;
    let (model, match_rules) = match model_and_rules(store).await? {
        (Some(model), rules) if count > 0 && count <= ONLINE_LIMIT => (model, rules),
        _ => {
            return Ok(Placed {
                waiting: count,
                ..Placed::default()
            })
        }
    };
    let waiting = store.unplaced_records().await?;
    let rules = survivorship(store).await?;
    let mut placed = Placed::default();
    let mut next_id = store.max_customer_id().await? + 1;
    progress.set_length(waiting.len() as u64);
    progress.set_message("placing new records");
    for record in waiting {
        let probe = Probe::of_stored(store.vault(), &record);
        let (ids, placement, candidates) = match_probe(store, &model, &probe, &match_rules).await?;
        let joins = placement.joins.is_some();
        let (target, mut members) = match placement.joins {
            Some(k) => {
                let id = ids[k];
                let members: Vec<UnifyRecord> = candidates
                    .into_iter()
                    .filter(|r| r.customer_id == Some(id))
                    .collect();
                (id, members)
            }
            None => {
                next_id += 1;
                (next_id - 1, Vec::new())
            }
        };

        members.push(record);
        let profile_of = vec![target; members.len()];
        let scope = vec![target];
        let u = unification(
            store.vault(),
            &members,
            &profile_of,
            &rules,
            scope,
            "online",
        );
        match store.apply_unification(u).await {
            Ok(()) if joins => placed.joined += 1,
            Ok(()) => placed.new_profiles += 1,
            // The profile's records (or this one) were erased since they were read: nothing
            // was written, and the record, if it is still there, waits unplaced for the next
            // placement or run.
            Err(patron_store::StoreError::Stale(_)) => placed.waiting += 1,
            Err(e) => return Err(e.into()),
        }
        progress.inc(1);
    }
    attribute_activity(store).await?;
    Ok(placed)
}

/// The comparison features of stored records: personal fields are opened in memory only, in
/// parallel, and never written anywhere.
pub fn match_records(
    vault: &Vault,
    records: &[UnifyRecord],
    rules: &MatchRules,
) -> Vec<MatchRecord> {
    records
        .par_iter()
        .map(|r| match_record(vault, r, rules))
        .collect()
}

fn match_record(vault: &Vault, r: &UnifyRecord, rules: &MatchRules) -> MatchRecord {
    let open = |i: usize| match &r.fields[i] {
        Some(FieldValue::Sealed(s)) => vault.open_str(s).ok(),
        Some(FieldValue::Plain(p)) => Some(p.clone()),
        None => None,
    };
    let address: Option<serde_json::Value> = open(4).and_then(|a| serde_json::from_str(&a).ok());
    let city = open(6);
    let part = |key: &str| {
        address
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(serde_json::Value::as_str)
            .map(str::to_lowercase)
    };
    MatchRecord {
        names: open(0)
            .and_then(|n| PersonName::parse(&n).ok())
            .map(|n| n.match_keys())
            .unwrap_or_default(),
        email: open(1)
            .and_then(|e| Email::parse(&e).ok())
            .map(|e| e.match_key()),
        phone: open(2),
        birth: open(3).map(|d| d.replace('-', "")),
        address: part("line1").map(|l| patron_domain::street_key(&l)),
        postal: part("postal_code").map(|p| patron_domain::postal_key(&p)),
        city: city.as_deref().map(patron_domain::city_key),
        city_homophone: city.as_deref().and_then(patron_domain::homophone_city),
        gender: open(5),
        loyalty: r.loyalty_hash.as_deref().map(hex),
        untrusted: rules.untrusted(&r.source),
    }
}

/// A blind index as text, the form matching keys take.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What survivorship may know of a record's golden fields: which it has, and, for fields
/// whose rule compares values, a hash and the length of the value (opened in memory only).
fn candidates<'a>(
    vault: &'a Vault,
    r: &'a UnifyRecord,
    rules: &'a [unify::Rule; 8],
) -> impl Iterator<Item = Option<unify::Candidate>> + 'a {
    r.fields.iter().zip(rules).map(|(v, rule)| {
        let text = match v {
            Some(FieldValue::Plain(s)) if s.is_empty() => return None,
            None => return None,
            Some(_) if !rule.reads_values() => return Some(unify::Candidate::default()),
            Some(FieldValue::Plain(s)) => s.clone(),
            Some(FieldValue::Sealed(s)) => vault.open_str(s).ok()?,
        };
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        Some(unify::Candidate {
            key: h.finish(),
            len: text.chars().count() as u32,
        })
    })
}
