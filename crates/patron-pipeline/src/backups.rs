//! Scheduled backups while serving: one every interval into a directory, the oldest pruned.

use patron_store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Parses an interval such as `24h`, `30m`, `7d` or `90s`.
pub fn parse_interval(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (n, unit) = raw.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{raw:?}: expected a number and a unit, like 24h or 30m"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{raw:?}: the unit must be s, m, h or d")),
    };
    if secs < 60 {
        return Err(format!("{raw:?}: back up at most once a minute"));
    }
    Ok(Duration::from_secs(secs))
}

/// The name of a backup taken at `at` (ms since epoch); names sort by time.
fn name_at(at: i64) -> String {
    let t = chrono::DateTime::from_timestamp_millis(at).unwrap_or_default();
    format!("patron-{}.backup", t.format("%Y%m%dT%H%M%S%.3fZ"))
}

/// Takes one backup into `dir` and removes all but the newest `keep`; returns its path.
pub async fn backup_into(store: &Store, dir: &Path, keep: usize) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name_at(chrono::Utc::now().timestamp_millis()));
    store.backup(&path).await?;
    let mut taken: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("patron-") && n.ends_with(".backup"))
        })
        .collect();
    taken.sort();
    let excess = taken.len().saturating_sub(keep.max(1));
    for old in &taken[..excess] {
        std::fs::remove_file(old)?;
    }
    Ok(path)
}

/// Backs up every `every` until the process ends; failures are logged and retried at the
/// next interval, never fatal to the server.
pub async fn every(store: Store, dir: PathBuf, every: Duration, keep: usize) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tick.tick().await;
        match backup_into(&store, &dir, keep).await {
            Ok(path) => tracing::info!("backup written to {}", path.display()),
            Err(e) => tracing::error!("scheduled backup failed: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_interval("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_interval("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_interval("10s").is_err());
        assert!(parse_interval("h").is_err());
        assert!(parse_interval("5w").is_err());
    }

    #[test]
    fn names_sort_by_time() {
        assert!(name_at(1_000) < name_at(2_000));
        assert!(name_at(9_999_000) < name_at(10_000_000));
    }
}
