//! Patron's pipeline glue: the code that moves data between the outside world, the store and
//! the engine. `collect` reads files into the store through the clean stage, `stages` runs the
//! engine over store snapshots and writes results back, `identity` is the unify stage and
//! people's corrections to it, `export` writes results out as CSV.
//!
//! Both the CLI and the server call in here, so a stage behaves the same wherever it is
//! started. Long work reports progress through an `indicatif::ProgressBar` the caller owns
//! (hidden in tests and on the server).

pub mod backups;
pub mod clv;
pub mod collect;
pub mod export;
pub mod identity;
pub mod recommend;
pub mod segments;
pub mod stages;

pub use collect::{
    import_file, parse_encoding, ColumnMap, FieldCounts, Format, ImportKind, ImportSummary,
    ReadOptions, RECORDS_FROM_ORDERS_SETTING,
};
pub use stages::{run_stages, PurchaseModelKind, RunConfig, Stage, StageSummary};
