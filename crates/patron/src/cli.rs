//! Command-line flags (raw, as clap parses them) and their conversion into a validated
//! configuration, then one function per command.

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use patron_domain::{CleanConfig, Country, Currency, DateOrder, Role};
use patron_engine::recommend::Model;
use patron_pipeline::export::{export, ExportKind};
use patron_pipeline::identity;
use patron_pipeline::{
    import_file, parse_encoding, run_stages, ColumnMap, ImportKind, ImportSummary,
    PurchaseModelKind, ReadOptions, RunConfig, Stage, RECORDS_FROM_ORDERS_SETTING,
};
use patron_server::{AppState, TlsSetting};
use patron_store::{Rotation, RotationOptions, Store, StoreConfig};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Patron: a self-hosted customer data platform for retailers.
#[derive(Debug, Parser)]
#[command(name = "patron", version, about)]
pub struct Args {
    /// Directory for the embedded database, the master key and TLS material.
    #[arg(
        long,
        env = "PATRON_DATA_DIR",
        default_value = "patron-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Use this PostgreSQL database (postgres://user:pass@host/db) instead of the embedded one.
    #[arg(
        long,
        env = "PATRON_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Master key (64 hex characters), or a ring `1:HEX,2:HEX,index:HEX`, instead of
    /// DATA_DIR/master.key.
    #[arg(long, env = "PATRON_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,
    /// Region for phone numbers written without a country code, when the record has no
    /// country (ISO 3166 code, e.g. CN, US).
    #[arg(long, env = "PATRON_DEFAULT_REGION", global = true)]
    pub default_region: Option<String>,
    /// Reporting currency for RFM monetary values (ISO 4217).
    #[arg(long, env = "PATRON_CURRENCY", default_value = "USD", global = true)]
    pub currency: String,
    /// Behaviour clusters `patron run segment` makes: a number from 2 to 20, or `auto` (the
    /// k from 2 to 8 with the best silhouette).
    #[arg(long, env = "PATRON_CLUSTERS", default_value = "auto", global = true)]
    pub clusters: String,
    /// The purchase model `run predict` fits: bg-nbd or pareto-nbd (Gamma-Gamma gives spend).
    #[arg(
        long,
        env = "PATRON_CLV_MODEL",
        default_value = "bg-nbd",
        global = true
    )]
    pub clv_model: String,
    /// The model `run recommend` ranks with: als, item-to-item, blend or popularity.
    #[arg(long, env = "PATRON_REC_MODEL", default_value = "blend", global = true)]
    pub rec_model: String,
    /// Products of one category in one customer's recommendations (diversity).
    #[arg(
        long,
        env = "PATRON_REC_MAX_PER_CATEGORY",
        default_value_t = 4,
        global = true
    )]
    pub rec_max_per_category: usize,
    /// Categories bought again and again (consumables), comma-separated: recommended again
    /// `--rec-repurchase-days` after the customer last bought them; other bought products
    /// never are.
    #[arg(
        long,
        env = "PATRON_REC_CONSUMABLES",
        value_delimiter = ',',
        global = true
    )]
    pub rec_consumables: Vec<String>,
    /// Days before a consumable is recommended again.
    #[arg(
        long,
        env = "PATRON_REC_REPURCHASE_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub rec_repurchase_days: i64,
    /// Multiply the score of products with a tag: TAG=FACTOR (repeatable, e.g. new=1.5).
    #[arg(long, global = true)]
    pub rec_boost: Vec<String>,
    /// ALS latent factors for `run recommend`.
    #[arg(long, env = "PATRON_REC_FACTORS", default_value_t = 16, global = true)]
    pub rec_factors: usize,
    /// ALS iterations for `run recommend`.
    #[arg(
        long,
        env = "PATRON_REC_ITERATIONS",
        default_value_t = 15,
        global = true
    )]
    pub rec_iterations: usize,
    /// ALS regularization for `run recommend`.
    #[arg(
        long,
        env = "PATRON_REC_REGULARIZATION",
        default_value_t = 1.0,
        global = true
    )]
    pub rec_regularization: f32,
    /// ALS confidence slope for `run recommend` (an interaction of weight w counts 1 + alpha·w).
    #[arg(long, env = "PATRON_REC_ALPHA", default_value_t = 1.0, global = true)]
    pub rec_alpha: f32,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a believable retailer's data, run the whole pipeline on it, and serve it.
    Demo {
        /// Number of real people to generate (each gives one to three source records).
        #[arg(long, default_value_t = 20_000)]
        customers: usize,
        /// Random seed; the same seed gives the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Build the data directory and exit instead of serving.
        #[arg(long)]
        no_serve: bool,
        /// Only write the generated CSV files into DIR (no database, no server), e.g. for
        /// benchmarks.
        #[arg(long, value_name = "DIR")]
        generate_only: Option<PathBuf>,
        /// Generate customers and products only, no orders, events or tickets.
        #[arg(long)]
        no_orders: bool,
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Serve the API and dashboard.
    Serve(ServeArgs),
    /// Import a file of customers, orders or products (CSV or JSON Lines, optionally gzip).
    Import {
        /// What the file holds.
        kind: ImportKindArg,
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        read: ReadArgs,
        /// The system the rows come from (web, pos, wechat, ...), for a file without a
        /// `source` column; a row's own non-empty `source` wins.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// The currency (ISO 4217) of the prices in an orders or products file without a
        /// `currency` column; a row's own non-empty `currency` wins.
        #[arg(long, value_name = "CODE")]
        file_currency: Option<String>,
        /// How the file writes dates such as 01/02/2024: dmy (day first) or mdy (month
        /// first). Without it, such birth dates are read the way the record's country writes
        /// them, and such order dates are rejected as ambiguous.
        #[arg(long, value_name = "dmy|mdy")]
        date_order: Option<String>,
        /// Make each customer an orders file names without a customer record a record of its
        /// own, holding its source and id alone (an orders-only export); without it their
        /// orders wait for the customer's record.
        #[arg(long)]
        customers_from_orders: bool,
    },
    /// Run pipeline stages over the stored data (all when none is named).
    Run {
        /// Stages to run.
        stages: Vec<StageArg>,
    },
    /// Export results as CSV.
    Export {
        /// What to export.
        kind: ExportKindArg,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Work through rejected values and rows.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Explain why two source records are (or are not) the same person: each field's
    /// comparison level and weight, the total match weight and probability. Records are named
    /// SOURCE:ID (e.g. web:W0000024). Prints JSON.
    Explain {
        /// The first record.
        a: String,
        /// The second record.
        b: String,
    },
    /// Merge profile MERGED into SURVIVOR now; later runs keep them together.
    Merge {
        /// The profile that keeps its id.
        survivor: i64,
        /// The profile whose records move; its id resolves to SURVIVOR afterwards.
        merged: i64,
    },
    /// Undo the latest merge of a merged-away profile (by a person or a unify run), or take
    /// one record out of its profile with --record; later runs keep them apart.
    Unmerge {
        /// The merged-away profile id to restore.
        #[arg(required_unless_present = "record", conflicts_with = "record")]
        profile: Option<i64>,
        /// Take this record (SOURCE:ID) out of its profile into a new one instead.
        #[arg(long)]
        record: Option<String>,
    },
    /// Decide that two profiles are different persons; later runs never merge them.
    NeverMerge {
        /// One profile.
        a: i64,
        /// The other.
        b: i64,
    },
    /// RFM scoring: bins per score and the score map that names segments.
    Rfm {
        #[command(subcommand)]
        command: RfmCommand,
    },
    /// Write a consistent, encrypted, checksummed backup of the whole database while it is
    /// in use (SQLite: VACUUM INTO; PostgreSQL: pg_dump).
    Backup {
        /// The backup file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a backup whole (checksum, encryption, integrity) and, only then, replace the
    /// database with it. Stop the server first; the master key must be the one it was made
    /// with.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Data subject requests: export everything about a person, or erase them.
    Subject {
        #[command(subcommand)]
        command: SubjectCommand,
    },
    /// The audit log: verify its hash chain, or list the newest entries.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Reports over the stored data, as CSV.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Rule segments: create, list, show, preview and export.
    Segments {
        #[command(subcommand)]
        command: SegmentsCommand,
    },
    /// How golden profiles choose each field's value among their records.
    Survivorship {
        #[command(subcommand)]
        command: SurvivorshipCommand,
    },
    /// Which identifiers link records outright before weighing, and from which sources.
    MatchRules {
        #[command(subcommand)]
        command: MatchRulesCommand,
    },
    /// Pairs the last unify run was unsure about, for a person to decide.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
    /// Measure a stage's quality against known answers.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum RfmCommand {
    /// Print the bins and score map as JSON.
    Show,
    /// Change them; they apply from the next `patron run segment`.
    Set {
        /// Bins per score (5: quintiles), 2 to 10; another count than 5 needs --map.
        #[arg(long)]
        bins: Option<u8>,
        /// A CSV score map, `r_from,r_to,f_from,f_to,segment` per line, first match wins;
        /// it must name every R and F pair.
        #[arg(long)]
        map: Option<PathBuf>,
        /// Start from the defaults (quintiles and the customary segments).
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Everything stored about the person as JSON (GDPR Art. 15/20): profile, source
    /// records, orders, events, tickets, consent, segments and their history, forecasts.
    Export {
        /// The person's profile id (a merged-away id finds the profile it went into).
        customer: i64,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase the person (GDPR Art. 17): records, profile, identities, events, tickets,
    /// quarantined rows and derived data are deleted; orders stay for the figures, detached.
    Erase {
        /// The person's profile id.
        customer: i64,
        /// Confirm: erasing cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain from its start; exits 1 when an entry was changed or removed.
    /// Prints the chain's head: keep it elsewhere to detect a truncated log later.
    Verify,
    /// The newest entries as CSV (audit_id, at, actor, action, target, detail, origin, seq).
    List {
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Monthly acquisition cohorts: for each month of first orders and each month since, the
    /// cohort's size, customers who ordered, retention and revenue (reporting currency).
    Cohorts {
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Create a segment from a rule, e.g. --rule "total_spent > 500 and country = 'CN'".
    Create {
        /// A unique name.
        name: String,
        /// The rule (see docs/SEGMENTS.md).
        #[arg(long)]
        rule: String,
    },
    /// Every segment (RFM and rule) with its size, as CSV.
    List,
    /// One segment as JSON.
    Show {
        /// Its name.
        name: String,
    },
    /// How many profiles a rule selects, and the first ten, without storing anything.
    Preview {
        /// The rule.
        #[arg(long)]
        rule: String,
    },
    /// The members who may be contacted on a channel, as CSV for a campaign (customer_id,
    /// name, email, phone, city, country, consent_source, consent_at). Members without
    /// standing marketing consent on the channel, or without a contact for it, are left out.
    Export {
        /// Its name.
        name: String,
        /// The campaign's channel: email, sms or wechat.
        #[arg(long, default_value = "email")]
        channel: String,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SurvivorshipCommand {
    /// Print the rules as JSON.
    Show,
    /// Change rules; they apply from the next `patron run unify` or correction.
    Set {
        /// FIELD=RULE (repeatable). Fields: name, email, phone, birth_date, address, gender,
        /// city, country. Rules: most_recent, most_frequent, most_trusted, longest.
        #[arg(long = "rule", value_name = "FIELD=RULE")]
        rules: Vec<String>,
        /// Sources in order of trust, most trusted first, comma-separated (for most_trusted).
        #[arg(long, value_delimiter = ',', value_name = "SOURCE,...")]
        trust: Option<Vec<String>>,
        /// Start from the defaults (every field most_recent, no trust order).
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MatchRulesCommand {
    /// Print the rules as JSON.
    Show,
    /// Change the rules; they apply to online matching at once and to profiles from the next
    /// `patron run unify`.
    Set {
        /// The rules that link outright, comma-separated: email, phone, loyalty, aliases, or
        /// none (everything is then weighed).
        #[arg(long, value_delimiter = ',', value_name = "RULE,...")]
        deterministic: Option<Vec<String>>,
        /// Sources whose records those rules never link (still weighed), comma-separated;
        /// an empty value clears the list.
        #[arg(long, value_delimiter = ',', value_name = "SOURCE,...")]
        untrusted_sources: Option<Vec<String>>,
        /// Start from the defaults (every rule on, every source trusted).
        #[arg(long)]
        reset: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// List queued pairs, most uncertain first, as CSV.
    List {
        /// At most this many pairs.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Skip this many first.
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
    /// The pair is one person: merge their profiles.
    Accept {
        /// The pair's review id.
        id: i64,
    },
    /// The pair is two persons: keep them apart.
    Reject {
        /// The pair's review id.
        id: i64,
    },
}

/// How a file's columns and text are read: by `patron import`, and by `patron eval unify` for
/// a labelled copy of what was imported.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Map an input column to a canonical one, e.g. --map 'Mobile=phone', or ignore it with
    /// --map 'Mobile=-' (repeatable).
    #[arg(long = "map", value_name = "COLUMN=CANONICAL")]
    maps: Vec<String>,
    /// A file of COLUMN=CANONICAL lines, applied before --map.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// Text encoding: auto (UTF-8, else GB18030), or a label such as utf-8, gb18030, gbk,
    /// shift_jis, windows-1252.
    #[arg(long, default_value = "auto")]
    encoding: String,
}

impl ReadArgs {
    /// The columns a file of `kind` is read by: the mapping file's, then `--map`'s.
    fn columns(&self, kind: ImportKind) -> anyhow::Result<ColumnMap> {
        let mut specs = match &self.mapping {
            Some(path) => ColumnMap::specs_from_file(path)?,
            None => Vec::new(),
        };
        specs.extend(self.maps.iter().cloned());
        ColumnMap::new(kind, &specs)
    }
}

/// `--source NAME`, trimmed; a blank name is refused.
fn source_name(source: Option<String>) -> anyhow::Result<Option<String>> {
    match source.as_deref().map(str::trim) {
        Some("") => bail!("--source needs a name, e.g. --source pos"),
        other => Ok(other.map(str::to_owned)),
    }
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Pairwise precision, recall and F1 of the stored profiles against the true persons
    /// (run `patron run unify` first). Prints JSON.
    Unify {
        /// CSV naming each record as `patron import customers` read it (a `source` column or
        /// --source, and its id as `source_id`, `rec_id`, `unique_id`, ...) and its true
        /// entity in a column named `person`, `entity`, `cluster`, ... or --truth-column. The
        /// labelled file that was imported can be it. Default: the demo's
        /// DATA_DIR/demo/truth.csv.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// The system the truth file's records come from, for a file without a `source`
        /// column (as given to `patron import customers --source`).
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
        /// The truth file's column holding the true entity, when it is not one of `person`,
        /// `entity`, `entity_id`, `person_id`, `true_id`, `cluster`, `cluster_id`, `truth`.
        #[arg(long, value_name = "COLUMN")]
        truth_column: Option<String>,
        /// The --map, --mapping and --encoding the file was imported with, so that its
        /// records are named as the import named them.
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Fit BG/NBD, Pareto/NBD and Gamma-Gamma on a transactions file and print their
    /// parameters, standard errors and log-likelihoods as JSON (no database needed).
    Clv {
        /// CSV with `customer_id`, `date` (ISO 8601 or YYYYMMDD) and `amount` columns.
        #[arg(long)]
        orders: PathBuf,
        /// Last day of the calibration period (inclusive).
        #[arg(long)]
        calibration_end: String,
        /// Time unit of the parameters.
        #[arg(long, value_enum, default_value = "week")]
        unit: UnitArg,
        /// Also compare predicted with actual purchases after the calibration end, up to
        /// this day, per calibration frequency.
        #[arg(long)]
        holdout_end: Option<String>,
    },
    /// Train the recommenders and measure them on held-out interactions; prints JSON. With
    /// `--interactions`: HR@10 and NDCG@10 leaving one random item per user out (or on
    /// `--holdout`). Without: on the stored orders, holding the last `--holdout-days` out
    /// (precision, recall, NDCG at 10 and catalogue coverage).
    Recommend {
        /// CSV (comma, semicolon, tab or pipe separated) with a user column, an item column
        /// and an optional weight column, found by their usual names (`user`, `userId`,
        /// `customer_id`, `visitorid`...; `item`, `movieId`, `product_id`, `sku`...;
        /// `weight`, `quantity`, `count`...) unless named with the options below. A file
        /// without a header row is read as user and item in its first two columns, each row
        /// weighing 1.
        #[arg(long)]
        interactions: Option<PathBuf>,
        /// CSV of held-out user, item pairs; `--interactions` is then the training set.
        #[arg(long, requires = "interactions")]
        holdout: Option<PathBuf>,
        /// The user column of the files, by its header name.
        #[arg(long, requires = "interactions")]
        user_column: Option<String>,
        /// The item column of the files, by its header name.
        #[arg(long, requires = "interactions")]
        item_column: Option<String>,
        /// The weight column of `--interactions` (a positive number; 1 when absent).
        #[arg(long, requires = "interactions")]
        weight_column: Option<String>,
        /// Days at the end of the stored history held out (stored data only).
        #[arg(long, default_value_t = 60)]
        holdout_days: u32,
        /// Models, comma-separated: als, item-to-item, blend, popularity.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "als,item-to-item,blend,popularity"
        )]
        models: Vec<String>,
        /// Seed of the leave-one-out split.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        als: AlsArgs,
    },
}

/// ALS settings.
#[derive(Debug, Clone, clap::Args)]
pub struct AlsArgs {
    /// Latent factors.
    #[arg(long, default_value_t = 16)]
    pub factors: usize,
    /// ALS iterations.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// L2 regularization.
    #[arg(long, default_value_t = 1.0)]
    pub regularization: f32,
    /// Confidence slope: an interaction of weight w counts 1 + alpha·w (on stored data, w is
    /// the BM25-weighted interaction).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f32,
    /// Conjugate-gradient steps per row and half-iteration.
    #[arg(long, default_value_t = 3)]
    pub cg_steps: usize,
    /// Seed of the random initial factors.
    #[arg(long, default_value_t = 1)]
    pub als_seed: u64,
}

impl AlsArgs {
    pub fn params(&self) -> patron_engine::recommend::als::AlsParams {
        patron_engine::recommend::als::AlsParams {
            factors: self.factors.clamp(1, 512),
            iterations: self.iterations.max(1),
            regularization: self.regularization.max(0.0),
            alpha: self.alpha.max(0.0),
            cg_steps: self.cg_steps.clamp(1, 64),
            seed: self.als_seed,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UnitArg {
    Day,
    Week,
    Month,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the key is printed once, as the last line of standard output.
    Create {
        /// admin, analyst, agent or ingest.
        #[arg(long)]
        role: String,
        /// A label to recognise the key by.
        #[arg(long)]
        name: Option<String>,
    },
    /// Every key as CSV: id, first characters, role, label, created, last used, revoked.
    List,
    /// Revoke a key at once (its id from `keys list`).
    Revoke {
        /// The key's id.
        key_id: i64,
    },
    /// Master keys as CSV: id, whether it seals new data, how many stored values it sealed.
    Masters,
    /// Add a new master key and re-encrypt every stored personal value under it, online, in
    /// batches; run again after a crash or `--max-batches` to continue where it stopped.
    RotateMaster {
        /// Rows per batch (one transaction each).
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// Stop after this many batches that changed something.
        #[arg(long)]
        max_batches: Option<usize>,
        /// Milliseconds to rest between batches, leaving the database to live traffic.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Remove an old master key from the key file once nothing stored needs it. Backups
    /// made under it can no longer be restored.
    RetireMaster {
        /// The key's id (from `keys masters`).
        key_id: u8,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined values and rows, newest first, as CSV.
    List {
        /// Only entries of this kind of import.
        #[arg(long)]
        kind: Option<ImportKindArg>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Write the rejected rows of one kind as a CSV with their original columns, to fix and
    /// import again (a stored fix resolves its entries).
    Export {
        /// Which import's rows.
        #[arg(long)]
        kind: ImportKindArg,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PATRON_LISTEN", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain (default: a self-signed certificate in DATA_DIR/tls).
    #[arg(long, env = "PATRON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "PATRON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (only behind a TLS-terminating proxy).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub insecure_http: bool,
    /// Take an encrypted backup this often while serving (e.g. 24h, 30m).
    #[arg(long, env = "PATRON_BACKUP_EVERY", value_name = "DURATION")]
    pub backup_every: Option<String>,
    /// Scheduled backups kept; older ones are removed.
    #[arg(long, default_value_t = 7)]
    pub keep: usize,
    /// Where scheduled backups go (default DATA_DIR/backups).
    #[arg(long, env = "PATRON_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Calls a minute each API key may make (bursts of a tenth of that, at least 10);
    /// 0 for no limit.
    #[arg(long, env = "PATRON_RATE_LIMIT", default_value_t = 6000)]
    pub rate_limit: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKindArg {
    Customers,
    Orders,
    Products,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StageArg {
    Unify,
    Segment,
    Predict,
    Recommend,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportKindArg {
    Profiles,
    Links,
    Segments,
    Recommendations,
    Metrics,
}

impl Args {
    /// Commands that serve log requests; the others only warnings, to keep output readable.
    pub fn default_log_filter(&self) -> &'static str {
        if self.serves() {
            "info"
        } else {
            "warn"
        }
    }

    /// Whether the command ends by serving the API (and so must outlive any one reader).
    pub fn serves(&self) -> bool {
        matches!(
            self.command,
            Command::Serve(_)
                | Command::Demo {
                    no_serve: false,
                    generate_only: None,
                    ..
                }
        )
    }
}

/// Flags validated once, in one place.
pub struct Config {
    pub store: StoreConfig,
    pub clean: CleanConfig,
    pub run: RunConfig,
}

impl Config {
    fn from_args(args: &Args) -> anyhow::Result<Config> {
        let default_region = args
            .default_region
            .as_deref()
            .map(|r| Country::parse(r).map_err(|e| anyhow::anyhow!("--default-region {r:?}: {e}")))
            .transpose()?;
        let currency = Currency::parse(&args.currency)
            .map_err(|e| anyhow::anyhow!("--currency {:?}: {e}", args.currency))?;
        let clusters = match args.clusters.trim() {
            "auto" => None,
            k => match k.parse::<usize>() {
                Ok(k) if (2..=20).contains(&k) => Some(k),
                _ => bail!("--clusters {k:?}: expected a number from 2 to 20, or auto"),
            },
        };
        let purchase_model = PurchaseModelKind::parse(&args.clv_model).with_context(|| {
            format!(
                "--clv-model {:?}: expected bg-nbd or pareto-nbd",
                args.clv_model
            )
        })?;
        let boost = args
            .rec_boost
            .iter()
            .map(|b| {
                b.split_once('=')
                    .and_then(|(tag, f)| {
                        Some((tag.trim().to_lowercase(), f.trim().parse::<f32>().ok()?))
                    })
                    .filter(|(tag, f)| !tag.is_empty() && f.is_finite() && *f >= 0.0)
                    .with_context(|| {
                        format!("--rec-boost {b:?}: expected TAG=FACTOR, e.g. new=1.5")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let recommend = patron_pipeline::recommend::RecommendConfig {
            model: Model::parse(args.rec_model.trim()).with_context(|| {
                format!(
                    "--rec-model {:?}: expected als, item-to-item, blend or popularity",
                    args.rec_model
                )
            })?,
            max_per_category: args.rec_max_per_category.max(1),
            consumables: args
                .rec_consumables
                .iter()
                .map(|c| c.trim().to_owned())
                .collect(),
            repurchase_days: args.rec_repurchase_days.max(0),
            boost,
            als: AlsArgs {
                factors: args.rec_factors,
                iterations: args.rec_iterations,
                regularization: args.rec_regularization,
                alpha: args.rec_alpha,
                cg_steps: 3,
                als_seed: 1,
            }
            .params(),
            ..Default::default()
        };
        Ok(Config {
            store: StoreConfig {
                data_dir: args.data_dir.clone(),
                database_url: args.database_url.clone(),
                master_key: args.master_key.clone(),
            },
            clean: CleanConfig {
                default_region,
                date_order: None,
            },
            run: RunConfig {
                currency,
                clusters,
                purchase_model,
                recommend,
            },
        })
    }

    pub async fn open_store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.store).await?)
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = Config::from_args(&args)?;
    match args.command {
        Command::Demo {
            customers,
            seed,
            no_serve,
            generate_only,
            no_orders,
            serve,
        } => {
            let opts = crate::demo::DemoOptions {
                people: customers,
                seed,
                orders: !no_orders,
                serve: (!no_serve && generate_only.is_none()).then_some(serve),
                generate_only,
            };
            crate::demo::run(&cfg, opts).await
        }
        Command::Serve(serve) => {
            let store = cfg.open_store().await?;
            if !store.has_users().await? {
                let password = crate::demo::new_password();
                store.upsert_user("admin", &password, Role::Admin).await?;
                println!("Created dashboard user admin with password {password}");
            }
            serve_until_stopped(&cfg, store, &serve).await
        }
        Command::Import {
            kind,
            file,
            read,
            source,
            file_currency,
            date_order,
            customers_from_orders,
        } => {
            let kind = ImportKind::from(kind);
            let opts = ReadOptions {
                columns: read.columns(kind)?,
                encoding: parse_encoding(&read.encoding)?,
                source: source_name(source)?,
                currency: match file_currency {
                    Some(_) if kind == ImportKind::Customers => {
                        anyhow::bail!("--file-currency applies to orders and products files")
                    }
                    Some(code) => Some(
                        Currency::parse(&code)
                            .map_err(|e| anyhow::anyhow!("--file-currency {code:?}: {e}"))?
                            .as_str()
                            .to_owned(),
                    ),
                    None => None,
                },
                date_order: date_order
                    .map(|o| {
                        DateOrder::parse(&o).map_err(|e| anyhow::anyhow!("--date-order {o:?}: {e}"))
                    })
                    .transpose()?,
                customers_from_orders,
            };
            let store = cfg.open_store().await?;
            import(&store, &cfg, kind, &file, &opts).await?;
            store.close().await;
            Ok(())
        }
        Command::Run { stages } => {
            let store = cfg.open_store().await?;
            let stages: Vec<Stage> = if stages.is_empty() {
                Stage::ALL.to_vec()
            } else {
                stages
                    .iter()
                    .map(|s| match s {
                        StageArg::Unify => Stage::Unify,
                        StageArg::Segment => Stage::Segment,
                        StageArg::Predict => Stage::Predict,
                        StageArg::Recommend => Stage::Recommend,
                    })
                    .collect()
            };
            run_and_report(&store, &cfg, &stages).await?;
            store.close().await;
            Ok(())
        }
        Command::Export { kind, out } => {
            let store = cfg.open_store().await?;
            let kind = match kind {
                ExportKindArg::Profiles => ExportKind::Profiles,
                ExportKindArg::Links => ExportKind::Links,
                ExportKindArg::Segments => ExportKind::Segments,
                ExportKindArg::Recommendations => ExportKind::Recommendations,
                ExportKindArg::Metrics => ExportKind::Metrics,
            };
            let n = export(&store, kind, output(&out)?).await?;
            store
                .audit(
                    "cli",
                    "export",
                    Some(&format!("{kind:?}").to_lowercase()),
                    Some(&format!("{n} rows")),
                )
                .await?;
            if let Some(path) = out {
                eprintln!("wrote {n} rows to {}", path.display());
            }
            store.close().await;
            Ok(())
        }
        Command::Quarantine { command } => {
            let store = cfg.open_store().await?;
            match command {
                QuarantineCommand::List { kind, limit } => {
                    let kind = kind.map(|k| ImportKind::from(k).name());
                    let rows = store.quarantine_list(kind, limit, 0).await?;
                    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                    w.write_record([
                        "quarantine_id",
                        "at",
                        "kind",
                        "file",
                        "row",
                        "source",
                        "source_id",
                        "field",
                        "value",
                        "reason",
                        "whole_row",
                    ])?;
                    for r in &rows {
                        let at = chrono::DateTime::from_timestamp_millis(r.at)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default();
                        w.serialize((
                            r.quarantine_id,
                            at,
                            &r.entry.kind,
                            &r.entry.file,
                            r.entry.row_no,
                            &r.entry.source,
                            &r.entry.source_id,
                            &r.entry.field,
                            &r.entry.value,
                            &r.entry.reason,
                            r.entry.whole_row,
                        ))?;
                    }
                    w.flush()?;
                    store
                        .audit(
                            "cli",
                            "quarantine.list",
                            kind,
                            Some(&format!("{} rows", rows.len())),
                        )
                        .await?;
                }
                QuarantineCommand::Export { kind, out } => {
                    let kind = ImportKind::from(kind).name();
                    let rows = store.quarantine_raw_rows(kind).await?;
                    let (n, unreadable) = write_raw_rows(&rows, output(&out)?)?;
                    store
                        .audit(
                            "cli",
                            "quarantine.export",
                            Some(kind),
                            Some(&format!("{n} rows")),
                        )
                        .await?;
                    if let Some(path) = out {
                        eprintln!(
                            "wrote {n} rows to {}; fix them and run: patron import {kind} {}",
                            path.display(),
                            path.display()
                        );
                    }
                    if unreadable > 0 {
                        eprintln!(
                            "{unreadable} of them could not be read as fields (a wrong number of \
                             fields, text not in UTF-8, malformed JSON) and are whole in the \
                             `_raw` column, as far as they could be read: correct them in the \
                             original file and import that again (with --encoding if it is not \
                             UTF-8)"
                        );
                    }
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Explain { a, b } => {
            let store = cfg.open_store().await?;
            let explanation = identity::explain(&store, &a, &b).await?;
            println!("{}", serde_json::to_string_pretty(&explanation)?);
            Ok(())
        }
        Command::Merge { survivor, merged } => {
            let store = cfg.open_store().await?;
            let done = identity::merge(&store, survivor, merged, "cli").await?;
            println!("{}", serde_json::to_string_pretty(&done)?);
            store.close().await;
            Ok(())
        }
        Command::Unmerge { profile, record } => {
            let store = cfg.open_store().await?;
            let done = match (profile, record) {
                (Some(id), _) => identity::unmerge(&store, id, "cli").await?,
                (None, Some(name)) => {
                    let record = identity::record(&store, &name).await?;
                    identity::split(&store, &record, "cli").await?
                }
                (None, None) => unreachable!("clap requires one of them"),
            };
            println!("{}", serde_json::to_string_pretty(&done)?);
            store.close().await;
            Ok(())
        }
        Command::NeverMerge { a, b } => {
            let store = cfg.open_store().await?;
            identity::never_merge(&store, a, b, "cli").await?;
            eprintln!("profiles {a} and {b} will not be merged");
            store.close().await;
            Ok(())
        }
        Command::Rfm { command } => {
            let store = cfg.open_store().await?;
            let current = match command {
                RfmCommand::Show => patron_pipeline::stages::rfm_config(&store).await?,
                RfmCommand::Set { bins, map, reset } => {
                    let mut c = if reset {
                        patron_engine::rfm::RfmConfig::default()
                    } else {
                        patron_pipeline::stages::rfm_config(&store).await?
                    };
                    if let Some(b) = bins {
                        c.bins = b;
                    }
                    if let Some(path) = &map {
                        c.segments = patron_pipeline::stages::read_score_map(path)?;
                    }
                    if let (Some(b), None, Err(_)) = (bins, &map, c.validate()) {
                        bail!("--bins {b}: the score map does not fit {b} bins; give one with --map FILE");
                    }
                    patron_pipeline::stages::set_rfm_config(&store, &c, "cli").await?;
                    eprintln!("saved; applies from the next `patron run segment`");
                    c
                }
            };
            println!("{}", serde_json::to_string_pretty(&current)?);
            store.close().await;
            Ok(())
        }
        Command::Backup { out } => {
            let store = cfg.open_store().await?;
            let info = store.backup(&out).await?;
            store
                .audit(
                    "cli",
                    "backup",
                    None,
                    Some(&format!("{} bytes", info.bytes)),
                )
                .await?;
            store.close().await;
            println!(
                "backed up {} bytes of {} to {}",
                info.bytes,
                info.backend,
                out.display()
            );
            Ok(())
        }
        Command::Restore { file } => {
            let info = patron_store::restore(&cfg.store, &file).await?;
            let store = cfg.open_store().await?;
            store
                .audit(
                    "cli",
                    "restore",
                    None,
                    Some(&format!("backup of {}", info.created_at)),
                )
                .await?;
            store.close().await;
            let at = chrono::DateTime::from_timestamp_millis(info.created_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            println!("restored the {} backup taken at {at}", info.backend);
            Ok(())
        }
        Command::Subject { command } => {
            let store = cfg.open_store().await?;
            match command {
                SubjectCommand::Export { customer, out } => {
                    let data = store
                        .subject_export(customer)
                        .await?
                        .with_context(|| format!("no customer {customer}"))?;
                    let mut w = output(&out)?;
                    serde_json::to_writer_pretty(&mut w, &data)?;
                    writeln!(w)?;
                    w.flush()?;
                    drop(w);
                    store
                        .audit(
                            "cli",
                            "subject.export",
                            Some(&data["customer_id"].to_string()),
                            None,
                        )
                        .await?;
                }
                SubjectCommand::Erase { customer, yes } => {
                    if !yes {
                        bail!("erasing customer {customer} cannot be undone; add --yes to do it");
                    }
                    let erased = store
                        .erase_subject(customer)
                        .await?
                        .with_context(|| format!("no customer {customer}"))?;
                    store
                        .audit(
                            "cli",
                            "subject.erase",
                            Some(&erased.customer_id.to_string()),
                            Some(&erased.to_string()),
                        )
                        .await?;
                    println!("erased customer {}: {erased}", erased.customer_id);
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Audit { command } => {
            let store = cfg.open_store().await?;
            match command {
                AuditCommand::Verify => {
                    // Entries written by a process that stopped before sealing join first.
                    store.seal_audit().await?;
                    let check = store.verify_audit().await?;
                    println!("{}", serde_json::to_string_pretty(&check)?);
                    store.close().await;
                    if !check.intact {
                        bail!(
                            "the audit log was tampered with: {}",
                            check.problem.unwrap_or_default()
                        );
                    }
                }
                AuditCommand::List { limit } => {
                    let mut w = csv::Writer::from_writer(std::io::stdout());
                    w.write_record([
                        "audit_id", "at", "actor", "action", "target", "detail", "origin", "seq",
                    ])?;
                    for e in store.audit_entries(limit.max(1)).await? {
                        let at = chrono::DateTime::from_timestamp_millis(e.at)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                        w.serialize((
                            e.audit_id, at, e.actor, e.action, e.target, e.detail, e.origin, e.seq,
                        ))?;
                    }
                    w.flush()?;
                    store.close().await;
                }
            }
            Ok(())
        }
        Command::Report {
            command: ReportCommand::Cohorts { out },
        } => {
            let store = cfg.open_store().await?;
            let cells = patron_pipeline::stages::cohort_report(&store, &cfg.run).await?;
            let exponent = cfg.run.currency.exponent();
            let write = |w: &mut dyn std::io::Write| -> anyhow::Result<()> {
                let mut w = csv::Writer::from_writer(w);
                w.write_record([
                    "cohort",
                    "month",
                    "size",
                    "active",
                    "retention",
                    "revenue",
                    "currency",
                ])?;
                for c in &cells {
                    w.serialize((
                        &c.cohort,
                        c.month,
                        c.size,
                        c.active,
                        format!("{:.4}", c.retention),
                        format!(
                            "{:.*}",
                            usize::from(exponent),
                            c.revenue as f64 / 10f64.powi(i32::from(exponent))
                        ),
                        cfg.run.currency.as_str(),
                    ))?;
                }
                w.flush()?;
                Ok(())
            };
            write(&mut output(&out)?)?;
            if let Some(path) = &out {
                eprintln!("wrote {} rows to {}", cells.len(), path.display());
            }
            store.close().await;
            Ok(())
        }
        Command::Segments { command } => {
            let store = cfg.open_store().await?;
            match command {
                SegmentsCommand::Create { name, rule } => {
                    let s = patron_pipeline::segments::create(&store, &name, &rule, "cli").await?;
                    println!("{}", serde_json::to_string_pretty(&s)?);
                }
                SegmentsCommand::List => {
                    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                    w.write_record(["segment_id", "name", "kind", "members", "rule"])?;
                    for s in store.segments().await? {
                        w.serialize((s.segment_id, s.name, s.kind, s.members, s.definition))?;
                    }
                    w.flush()?;
                }
                SegmentsCommand::Show { name } => {
                    let s = patron_pipeline::segments::find(&store, &name).await?;
                    println!("{}", serde_json::to_string_pretty(&s)?);
                }
                SegmentsCommand::Preview { rule } => {
                    let p = patron_pipeline::segments::preview(&store, &rule).await?;
                    println!("{}", serde_json::to_string_pretty(&p)?);
                }
                SegmentsCommand::Export { name, channel, out } => {
                    let channel = patron_domain::Channel::parse(&channel)
                        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
                    let report = patron_pipeline::segments::export_for_campaign(
                        &store,
                        &name,
                        channel,
                        output(&out)?,
                    )
                    .await?;
                    eprintln!(
                        "wrote {} members{}; left out {} without {} consent and {} without a contact",
                        report.written,
                        out.as_ref()
                            .map(|p| format!(" to {}", p.display()))
                            .unwrap_or_default(),
                        report.without_consent,
                        channel.as_str(),
                        report.without_contact,
                    );
                    store
                        .audit(
                            "cli",
                            "segment.export",
                            Some(&name),
                            Some(&format!("{} rows, {}", report.written, channel.as_str())),
                        )
                        .await?;
                }
            }
            store.close().await;
            Ok(())
        }
        Command::MatchRules { command } => {
            let store = cfg.open_store().await?;
            let rules = match command {
                MatchRulesCommand::Show => identity::match_rules(&store).await?,
                MatchRulesCommand::Set {
                    deterministic,
                    untrusted_sources,
                    reset,
                } => {
                    let mut current = if reset {
                        identity::MatchRules::default()
                    } else {
                        identity::match_rules(&store).await?
                    };
                    if let Some(names) = deterministic {
                        current
                            .set_deterministic(&names)
                            .map_err(|e| anyhow::anyhow!("--deterministic: {e}"))?;
                    }
                    if let Some(sources) = untrusted_sources {
                        current.untrusted_sources = sources
                            .into_iter()
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect();
                    }
                    identity::set_match_rules(&store, &current, "cli").await?;
                    eprintln!("saved; applies to online matching now and to profiles from the next `patron run unify`");
                    current
                }
            };
            println!("{}", serde_json::to_string_pretty(&rules)?);
            store.close().await;
            Ok(())
        }
        Command::Survivorship { command } => {
            let store = cfg.open_store().await?;
            let rules = match command {
                SurvivorshipCommand::Show => identity::survivorship(&store).await?,
                SurvivorshipCommand::Set {
                    rules,
                    trust,
                    reset,
                } => {
                    let mut current = if reset {
                        identity::Survivorship::default()
                    } else {
                        identity::survivorship(&store).await?
                    };
                    for spec in &rules {
                        current
                            .set_rule(spec)
                            .map_err(|e| anyhow::anyhow!("--rule {e}"))?;
                    }
                    if let Some(trust) = trust {
                        current.trust = trust
                            .into_iter()
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect();
                    }
                    identity::set_survivorship(&store, &current, "cli").await?;
                    eprintln!("saved; applies from the next `patron run unify`");
                    current
                }
            };
            println!("{}", serde_json::to_string_pretty(&rules)?);
            store.close().await;
            Ok(())
        }
        Command::Review { command } => {
            let store = cfg.open_store().await?;
            match command {
                ReviewCommand::List { limit, offset } => {
                    let items = store.review_list(limit, offset).await?;
                    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
                    w.write_record([
                        "review_id",
                        "record_a",
                        "profile_a",
                        "record_b",
                        "profile_b",
                        "weight",
                        "probability",
                        "linked",
                    ])?;
                    for i in &items {
                        w.serialize((
                            i.review_id,
                            format!("{}:{}", i.a.source, i.a.source_id),
                            i.a.customer_id,
                            format!("{}:{}", i.b.source, i.b.source_id),
                            i.b.customer_id,
                            format!("{:.2}", i.weight),
                            format!("{:.3}", patron_engine::matching::probability(i.weight)),
                            i.linked,
                        ))?;
                    }
                    w.flush()?;
                }
                ReviewCommand::Accept { id } => {
                    identity::review_accept(&store, id, "cli").await?;
                    eprintln!("pair {id} accepted as one person");
                }
                ReviewCommand::Reject { id } => {
                    identity::review_reject(&store, id, "cli").await?;
                    eprintln!("pair {id} rejected: two persons");
                }
            }
            store.close().await;
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Clv {
                    orders,
                    calibration_end,
                    unit,
                    holdout_end,
                },
        } => {
            let unit = match unit {
                UnitArg::Day => patron_pipeline::clv::Unit::Day,
                UnitArg::Week => patron_pipeline::clv::Unit::Week,
                UnitArg::Month => patron_pipeline::clv::Unit::Month,
            };
            let report = patron_pipeline::clv::eval_clv(
                &orders,
                &calibration_end,
                unit,
                holdout_end.as_deref(),
            )?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Recommend {
                    interactions,
                    holdout,
                    user_column,
                    item_column,
                    weight_column,
                    holdout_days,
                    models,
                    seed,
                    threads,
                    als,
                },
        } => {
            let models = models
                .iter()
                .map(|m| {
                    Model::parse(m.trim()).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--models: unknown model {m:?} (als, item-to-item, blend, popularity)"
                        )
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let opts = patron_pipeline::recommend::EvalOptions {
                models,
                als: als.params(),
                similar: Default::default(),
                seed,
                columns: patron_pipeline::recommend::Columns {
                    user: user_column,
                    item: item_column,
                    weight: weight_column,
                },
            };
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.unwrap_or(0))
                .build()?;
            let json = match interactions {
                Some(file) => {
                    let report = pool.install(|| {
                        patron_pipeline::recommend::eval_file(&file, holdout.as_deref(), &opts)
                    })?;
                    for r in &report.rejected {
                        eprintln!("rejected: {r}");
                    }
                    serde_json::to_string_pretty(&report)?
                }
                None => {
                    let store = cfg.open_store().await?;
                    let report =
                        patron_pipeline::recommend::eval_stored(&store, holdout_days, &opts, &pool)
                            .await?;
                    store.close().await;
                    serde_json::to_string_pretty(&report)?
                }
            };
            println!("{json}");
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Unify {
                    truth,
                    source,
                    truth_column,
                    read,
                },
        } => {
            let truth = truth.unwrap_or_else(|| cfg.store.data_dir.join("demo").join("truth.csv"));
            let truth = patron_pipeline::collect::read_truth(
                &truth,
                &read.columns(ImportKind::Customers)?,
                parse_encoding(&read.encoding)?,
                source_name(source)?.as_deref(),
                truth_column.as_deref(),
            )?;
            let store = cfg.open_store().await?;
            let report = eval_unify(&store, truth).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Create { role, name },
        } => {
            let role = Role::parse(&role).map_err(|e| anyhow::anyhow!("--role {role:?}: {e}"))?;
            let store = cfg.open_store().await?;
            let key = store.create_api_key(role, name.as_deref()).await?;
            println!(
                "Created a {} API key. It is shown only once:",
                role.as_str()
            );
            println!("{key}");
            store.close().await;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let store = cfg.open_store().await?;
            let time = |ms: Option<i64>| {
                ms.and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            };
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record([
                "key_id",
                "prefix",
                "role",
                "name",
                "created_at",
                "last_used_at",
                "revoked_at",
            ])?;
            for k in store.api_keys().await? {
                w.serialize((
                    k.key_id,
                    k.prefix,
                    k.role,
                    k.name,
                    time(Some(k.created_at)),
                    time(k.last_used_at),
                    time(k.revoked_at),
                ))?;
            }
            w.flush()?;
            store.close().await;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Revoke { key_id },
        } => {
            let store = cfg.open_store().await?;
            let revoked = store.revoke_api_key(key_id, "cli").await?;
            store.close().await;
            if !revoked {
                bail!("no live API key {key_id} (see `patron keys list`)");
            }
            println!("revoked API key {key_id}");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Masters,
        } => {
            let store = cfg.open_store().await?;
            let usage = store.sealed_by_key().await?;
            let active = store.vault().active_key();
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(["key_id", "active", "sealed_values"])?;
            for id in store.vault().key_ids() {
                w.serialize((id, id == active, usage.get(&id).copied().unwrap_or(0)))?;
            }
            w.flush()?;
            store.close().await;
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::RotateMaster {
                    batch_size,
                    max_batches,
                    pause_ms,
                },
        } => {
            let store = cfg.open_store().await?;
            let opts = RotationOptions {
                batch: batch_size.max(1),
                max_batches,
                pause: std::time::Duration::from_millis(pause_ms),
            };
            let pb = progress_bar(0, "re-sealing");
            let progress = |done: u64, total: u64| {
                pb.set_length(total);
                pb.set_position(done);
            };
            let r = store.rotate_master_key("cli", &opts, &progress).await?;
            pb.finish_and_clear();
            let keys = store.vault().key_ids();
            store.close().await;
            print_rotation(&r, &keys);
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::RetireMaster { key_id },
        } => {
            let store = cfg.open_store().await?;
            store.retire_master_key(key_id, "cli").await?;
            store.close().await;
            println!("master key {key_id} removed from the key file");
            Ok(())
        }
    }
}

fn print_rotation(r: &Rotation, keys: &[u8]) {
    let verb = if r.resumed { "continued" } else { "started" };
    println!("Rotation to master key {} {verb}.", r.key);
    for (column, n) in &r.resealed {
        println!("  {column:<30} {n:>10} re-sealed");
    }
    if r.complete {
        println!("Complete: every stored value is sealed with key {}.", r.key);
        let older: Vec<String> = keys
            .iter()
            .filter(|k| **k != r.key)
            .map(u8::to_string)
            .collect();
        if !older.is_empty() {
            println!(
                "Older keys ({}) stay in the key file so backups made with them can be \
                 restored; remove one with `patron keys retire-master ID` once its backups \
                 have expired.",
                older.join(", ")
            );
        }
    } else {
        let left: u64 = r.remaining.values().sum();
        println!(
            "Stopped: {left} values are still sealed with older keys; run \
             `patron keys rotate-master` again to continue."
        );
    }
}

impl From<ImportKindArg> for ImportKind {
    fn from(k: ImportKindArg) -> ImportKind {
        match k {
            ImportKindArg::Customers => ImportKind::Customers,
            ImportKindArg::Orders => ImportKind::Orders,
            ImportKindArg::Products => ImportKind::Products,
        }
    }
}

/// Writes raw rows (JSON objects as read) as one CSV whose columns are all their keys in
/// first-seen order; a row that was not even readable as fields goes whole into `_raw`.
/// Returns the rows written and how many of them went into `_raw`.
fn write_raw_rows(rows: &[String], out: impl std::io::Write) -> anyhow::Result<(usize, usize)> {
    let parsed: Vec<Result<serde_json::Map<String, serde_json::Value>, &String>> = rows
        .iter()
        .map(|r| match serde_json::from_str::<serde_json::Value>(r) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err(r),
        })
        .collect();
    let mut header: Vec<String> = Vec::new();
    for m in parsed.iter().flatten() {
        for k in m.keys() {
            if !header.contains(k) {
                header.push(k.clone());
            }
        }
    }
    if parsed.iter().any(Result::is_err) {
        header.push("_raw".into());
    }
    let mut w = csv::Writer::from_writer(out);
    w.write_record(&header)?;
    for row in &parsed {
        let record: Vec<String> = header
            .iter()
            .map(|h| match row {
                Ok(m) => match m.get(h) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                },
                Err(raw) if h == "_raw" => (*raw).clone(),
                Err(_) => String::new(),
            })
            .collect();
        w.write_record(&record)?;
    }
    w.flush()?;
    Ok((parsed.len(), parsed.iter().filter(|r| r.is_err()).count()))
}

/// Where a command's CSV goes: the `--out` file (created or truncated), else standard output.
fn output(out: &Option<PathBuf>) -> anyhow::Result<Box<dyn std::io::Write>> {
    Ok(match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    })
}

pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:30}] {percent:>3}% {msg} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_owned());
    pb
}

pub async fn import(
    store: &Store,
    cfg: &Config,
    kind: ImportKind,
    file: &std::path::Path,
    opts: &ReadOptions,
) -> anyhow::Result<ImportSummary> {
    let pb = progress_bar(0, kind.name());
    // Counting them reads the whole record table: only once some were made.
    let known_by_id = match kind {
        ImportKind::Customers if store.setting(RECORDS_FROM_ORDERS_SETTING).await?.is_some() => {
            store.records_known_by_id_count().await?
        }
        _ => 0,
    };
    let s = import_file(store, kind, file, opts, &cfg.clean, &pb).await?;
    let fields: Vec<String> = s
        .quarantined_by_field
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    println!(
        "{} ({}): read {}, stored {}, rejected {}, {} stored with fields quarantined{}{}",
        file.display(),
        s.read_as,
        s.read,
        s.stored,
        s.rejected,
        s.with_field_issues,
        if fields.is_empty() {
            String::new()
        } else {
            format!(" (quarantined: {})", fields.join(", "))
        },
        if s.unknown_columns.is_empty() {
            String::new()
        } else {
            format!(
                "; unknown columns ignored: {}",
                s.unknown_columns.join(", ")
            )
        }
    );
    if s.buyers > 0 {
        println!("  {} buyer records taken from the orders", s.buyers);
    }
    if s.customers_without_record > 0 {
        println!(
            "  {} customers these orders name have no customer record: their orders count \
             for a profile once a customer file of the same source and ids is imported, or \
             import again with --customers-from-orders to make each a record of its own",
            s.customers_without_record
        );
    }
    if s.customers_known_by_id > 0 {
        println!(
            "  {} customers these orders name had no customer record: each is now a record \
             with its source and id alone, which a customer file of the same source and ids \
             fills in",
            s.customers_known_by_id
        );
    }
    if s.not_utf8 > 0 && s.read_as.contains("UTF-8") {
        println!(
            "  {} rows are not valid UTF-8: if the file was saved in another encoding, import \
             it again with --encoding (e.g. windows-1252 for Western European Excel exports)",
            s.not_utf8
        );
    }
    if s.repeated_ids > 0 {
        println!(
            "  {} rows repeat the source and id of an earlier row (first: {}): each replaced \
             the earlier one; combine such rows in the file to keep all their values",
            s.repeated_ids,
            s.first_repeated_id.as_deref().unwrap_or_default()
        );
    }
    if s.phones_without_region > 0 {
        println!(
            "  {} phones have no country code and their records no country: import again \
             with --default-region (e.g. US, CN) to keep them",
            s.phones_without_region
        );
    }
    if !s.fields.is_empty() {
        println!(
            "  {:<14} {:>9} {:>9} {:>9} {:>12}",
            "field", "read", "stored", "fixed", "quarantined"
        );
        for (field, c) in &s.fields {
            println!(
                "  {:<14} {:>9} {:>9} {:>9} {:>12}",
                field,
                c.read,
                c.stored(),
                c.fixed,
                c.quarantined
            );
        }
    }
    if known_by_id > 0 {
        let filled = known_by_id - store.records_known_by_id_count().await?;
        if filled > 0 {
            println!(
                "  {filled} records known only by the id their orders gave are filled in: \
                 `patron run unify` matches them by their new fields"
            );
        }
    }
    if kind == ImportKind::Customers || s.buyers > 0 || s.customers_known_by_id > 0 {
        let pb = progress_bar(0, "unify");
        let placed = identity::place_new_records(store, &pb).await?;
        pb.finish_and_clear();
        if placed.joined + placed.new_profiles > 0 {
            println!(
                "  placed {} new records online: {} joined existing profiles, {} started new ones",
                placed.joined + placed.new_profiles,
                placed.joined,
                placed.new_profiles
            );
        }
        if placed.waiting > 0 {
            println!(
                "  {} new records wait for `patron run unify`",
                placed.waiting
            );
        }
    }
    if kind == ImportKind::Orders {
        // New orders of known customers count for their profile at once.
        patron_pipeline::identity::attribute_activity(store).await?;
    }
    Ok(s)
}

pub async fn run_and_report(store: &Store, cfg: &Config, stages: &[Stage]) -> anyhow::Result<()> {
    let pb = progress_bar(stages.len() as u64, "run");
    let summaries = run_stages(store, stages, &cfg.run, &pb).await?;
    pb.finish_and_clear();
    for s in summaries {
        let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("{}: {}", s.stage, counts.join(", "));
        for note in &s.notes {
            println!("  {note}");
        }
    }
    Ok(())
}

/// An interval in the largest whole unit: `24h`, `90m`.
fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// How many of the latest records' countries a server warms its request threads for, and at
/// most how many (each holds about 0.6 MB of compiled patterns per thread).
const WARM_FROM_RECORDS: i64 = 10_000;
const WARM_REGIONS: usize = 40;

pub async fn serve_until_stopped(
    cfg: &Config,
    store: Store,
    serve: &ServeArgs,
) -> anyhow::Result<()> {
    let backups = match &serve.backup_every {
        Some(every) => Some((
            serve
                .backup_dir
                .clone()
                .unwrap_or_else(|| cfg.store.data_dir.join("backups")),
            patron_pipeline::backups::parse_interval(every)
                .map_err(|e| anyhow::anyhow!("--backup-every {e}"))?,
        )),
        None => None,
    };
    let tls = match (&serve.tls_cert, &serve.tls_key, serve.insecure_http) {
        (_, _, true) => TlsSetting::Off,
        (Some(cert), Some(key), _) => TlsSetting::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => TlsSetting::SelfSigned(cfg.store.data_dir.join("tls")),
    };
    let listener = patron_server::bind(serve.listen)?;
    let addr = listener.local_addr()?;
    let tls_config = patron_server::tls_config(&tls).await?;
    if let Some(cfg) = &tls_config {
        patron_server::reload_on_hangup(&tls, cfg.clone())?;
    }
    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };
    if let Some((dir, every)) = backups {
        println!(
            "Backing up every {} into {}, keeping {}",
            humanize(every),
            dir.display(),
            serve.keep
        );
        tokio::spawn(patron_pipeline::backups::every(
            store.clone(),
            dir,
            every,
            serve.keep,
        ));
    }
    // Online matching right after a restart would otherwise wait on the disk for every row.
    // A detached thread, not a blocking task: the runtime would wait for the whole read
    // before letting a server that failed to start exit.
    let warming = store.clone();
    std::thread::spawn(move || {
        let started = std::time::Instant::now();
        match warming.warm_cache() {
            Ok(Some(patron_store::Warmed::Read(bytes))) => tracing::info!(
                "database read into the page cache: {} MB in {:.1} s",
                bytes >> 20,
                started.elapsed().as_secs_f64()
            ),
            Ok(Some(patron_store::Warmed::TooLarge { file, available })) => tracing::info!(
                "database ({} MB) not read into the page cache: more than half of the {} MB \
                 of memory available",
                file >> 20,
                available >> 20
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    });
    // A request thread's first phone number compiles the metadata (70 ms) and its first of
    // each region that region's patterns (up to 15 ms): 2,000 lookups right after a restart
    // met about twenty such, as many as their p99. The workers compile the countries of the
    // latest records (and the default region) before serving.
    let mut regions: Vec<Country> = cfg.clean.default_region.into_iter().collect();
    for country in store.recent_countries(WARM_FROM_RECORDS).await? {
        match Country::parse(&country) {
            Ok(c) if !regions.contains(&c) && regions.len() < WARM_REGIONS => regions.push(c),
            _ => {}
        }
    }
    patron_server::warm_request_threads(move || patron_domain::warm_phone_rules(&regions)).await?;
    let app = patron_server::app(AppState {
        store,
        clean: cfg.clean,
        secure_cookies: tls_config.is_some(),
        limits: std::sync::Arc::new(patron_server::RateLimiter::new(
            serve.rate_limit,
            (serve.rate_limit / 10).max(10),
        )),
    });
    let host = if addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        addr.ip().to_string()
    };
    println!("Patron is serving on {scheme}://{host}:{}/", addr.port());
    if matches!(tls, TlsSetting::SelfSigned(_)) {
        println!(
            "(self-signed certificate: {}; your browser will ask you to trust it)",
            cfg.store.data_dir.join("tls/cert.pem").display()
        );
    }
    if serve.insecure_http && !addr.ip().is_loopback() {
        bail!("--insecure-http is only allowed on a loopback address; put a TLS proxy in front instead");
    }
    patron_server::serve(listener, tls_config, app).await
}

/// Compares the stored record → profile links with the true entities pair by pair.
async fn eval_unify(
    store: &Store,
    truth: patron_pipeline::collect::Truth,
) -> anyhow::Result<serde_json::Value> {
    let entity_of = &truth.entity_of;
    let (mut clusters, mut labels, mut unknown, mut unlinked) =
        (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut profile_numbers: HashMap<i64, u32> = HashMap::new();
    store
        .export_links(|l| {
            match (entity_of.get(&(l.source, l.source_id)), l.customer_id) {
                (Some(&e), Some(c)) => {
                    let next = profile_numbers.len() as u32;
                    clusters.push(*profile_numbers.entry(c).or_insert(next));
                    labels.push(e);
                }
                (None, _) => unknown += 1,
                (Some(_), None) => unlinked += 1,
            }
            Ok(())
        })
        .await?;
    if unlinked > 0 {
        anyhow::bail!("{unlinked} records have no profile yet: run `patron run unify` first");
    }
    if clusters.is_empty() {
        anyhow::bail!(
            "none of the truth file's {} labelled records is stored: import them first, and \
             name their system with --source as it was given to the import",
            entity_of.len()
        );
    }
    let q = patron_engine::matching::pair_quality(&clusters, &labels);
    Ok(serde_json::json!({
        "records": clusters.len(),
        "records_not_in_truth": unknown,
        "truth_records_not_stored": entity_of.len().saturating_sub(clusters.len()),
        "truth_rows_left_out": truth.left_out,
        "true_entities": labels.iter().collect::<std::collections::HashSet<_>>().len(),
        "profiles": profile_numbers.len(),
        "precision": q.precision,
        "recall": q.recall,
        "f1": q.f1,
        "predicted_pairs": q.predicted_pairs,
        "true_pairs": q.true_pairs,
    }))
}
