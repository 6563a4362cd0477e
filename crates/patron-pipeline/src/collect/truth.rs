//! The true entity of each customer record, for `patron eval unify`: a labelled file names
//! records the way `patron import customers` reads them (a `source` column or `--source`, and
//! the record's id under any spelling the import knows: `source_id`, `rec_id`, `unique_id`,
//! ...) with the entity in one more column. The labelled export itself can be that file: a
//! dataset with a `cluster` column is imported and then scored against itself.

use super::{columns::normalize, input, ColumnMap, Format};
use anyhow::{bail, Context};
use encoding_rs::Encoding;
use std::collections::HashMap;
use std::path::Path;

/// Column names read as the true entity, in this order, unless one is named.
pub const ENTITY_COLUMNS: &[&str] = &[
    "person",
    "entity",
    "entity_id",
    "person_id",
    "true_id",
    "cluster",
    "cluster_id",
    "truth",
];

/// Each labelled record's entity, numbered from 0 in order of first appearance.
#[derive(Debug, Default)]
pub struct Truth {
    /// (source, source id) → entity.
    pub entity_of: HashMap<(String, String), u64>,
    /// Rows left out: without an id or an entity, or with another number of fields than the
    /// header (the import rejects those rows).
    pub left_out: u64,
}

/// Reads a truth file (CSV with any usual delimiter, gzip or not) with the customer import's
/// `columns` (its `--map`s) and `encoding` (`None`: detected, as the import does). `source`
/// names the system for a file without a `source` column (a row's own wins); `entity_column`
/// names the entity's column when it is not one of [`ENTITY_COLUMNS`] (either matched as the
/// import matches names: case, spaces and punctuation aside). A record named twice keeps its
/// last row, as the import keeps it.
pub fn read_truth(
    path: &Path,
    columns: &ColumnMap,
    encoding: Option<&'static Encoding>,
    source: Option<&str>,
    entity_column: Option<&str>,
) -> anyhow::Result<Truth> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read the truth file {}", path.display()))?;
    let opened =
        input::open(Box::new(file), encoding).with_context(|| format!("{}", path.display()))?;
    let Format::Csv { delimiter } = opened.format else {
        bail!("{}: a truth file must be CSV", path.display());
    };
    // The header as the import reads it.
    let (mut reader, header) = super::csv_with_header(opened.reader, delimiter, path)?;
    let canonical = columns.resolve_header(&header);
    let position = |column: &str| canonical.iter().position(|c| *c == Some(column));
    let named = |name: &str| header.iter().position(|h| normalize(h) == normalize(name));
    let entity = match entity_column {
        Some(name) => named(name).with_context(|| {
            format!(
                "{}: no column named {name:?} (columns found: {})",
                path.display(),
                header.join(", ")
            )
        })?,
        None => ENTITY_COLUMNS
            .iter()
            .find_map(|c| named(c))
            .with_context(|| {
                format!(
                    "{}: needs a column naming each record's true entity ({}), or name it with \
                 --truth-column (columns found: {})",
                    path.display(),
                    ENTITY_COLUMNS.join(", "),
                    header.join(", ")
                )
            })?,
    };
    let source_column = position("source");
    if source_column.is_none() && source.is_none() {
        bail!(
            "{}: needs a column named source, or the system the records come from with \
             --source NAME (as they were imported)",
            path.display()
        );
    }
    let id = position("source_id").with_context(|| {
        format!(
            "{}: needs a column named source_id (or another name `patron import customers` \
             reads as the record's id, such as rec_id or unique_id; columns found: {})",
            path.display(),
            header.join(", ")
        )
    })?;
    let mut truth = Truth::default();
    let mut numbers: HashMap<String, u64> = HashMap::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{}: malformed row {}", path.display(), line + 2))?;
        if row.len() != header.len() {
            truth.left_out += 1;
            continue;
        }
        let value = |i: usize| row.get(i).map(str::trim).filter(|v| !v.is_empty());
        let source = source_column.and_then(value).or(source);
        let (Some(source), Some(id), Some(entity)) = (source, value(id), value(entity)) else {
            truth.left_out += 1;
            continue;
        };
        let next = numbers.len() as u64;
        let e = *numbers.entry(entity.to_owned()).or_insert(next);
        truth
            .entity_of
            .insert((source.to_owned(), id.to_owned()), e);
    }
    Ok(truth)
}
