//! What identity resolution ([`crate::matching`]) hands on: clusterings, the profile ids
//! given to them (stable across runs) and survivorship.

/// The result of clustering: which cluster each record fell into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clustering {
    /// `cluster_of[i]` is the cluster of record `i`; clusters are numbered `0..clusters`
    /// in order of their first record.
    pub cluster_of: Vec<u32>,
    /// How many clusters there are.
    pub clusters: usize,
}

/// Gives every cluster a profile id, keeping the ids downstream systems already hold.
///
/// `prior[i]` is the profile record `i` belonged to before this run. A cluster keeps the
/// smallest prior id among its records unless a larger cluster already claimed it (a split);
/// clusters without one get fresh ids counting up from `next_id`. Returns the id per cluster.
pub fn assign_ids(clustering: &Clustering, prior: &[Option<i64>], mut next_id: i64) -> Vec<i64> {
    let mut sizes = vec![0usize; clustering.clusters];
    let mut candidate: Vec<Option<i64>> = vec![None; clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        sizes[c as usize] += 1;
        if let Some(p) = prior[i] {
            let slot = &mut candidate[c as usize];
            *slot = Some(slot.map_or(p, |q| q.min(p)));
        }
    }
    let mut order: Vec<usize> = (0..clustering.clusters).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), c));
    let mut claimed = std::collections::HashSet::new();
    let mut ids = vec![0; clustering.clusters];
    for c in order {
        ids[c] = match candidate[c] {
            Some(p) if claimed.insert(p) => p,
            _ => {
                next_id += 1;
                next_id - 1
            }
        };
    }
    ids
}

/// How a golden field picks its value among a profile's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The value of the record the source changed most recently.
    MostRecent,
    /// The value most of the records share (ties: the most recent of them).
    MostFrequent,
    /// The value from the most trusted source (ties: the most recent).
    MostTrusted,
    /// The longest value (ties: the most recent): the fullest name or address.
    Longest,
}

impl Rule {
    /// Every rule, by name.
    pub const ALL: [(&'static str, Rule); 4] = [
        ("most_recent", Rule::MostRecent),
        ("most_frequent", Rule::MostFrequent),
        ("most_trusted", Rule::MostTrusted),
        ("longest", Rule::Longest),
    ];

    /// Parses a rule name (`most_recent`, `most_frequent`, `most_trusted`, `longest`).
    pub fn parse(name: &str) -> Result<Rule, String> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Rule::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
            .ok_or_else(|| {
                let names: Vec<&str> = Rule::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown rule '{name}' (one of: {})", names.join(", "))
            })
    }

    /// Whether the rule compares values (their keys and lengths), not only which records
    /// have one.
    pub fn reads_values(self) -> bool {
        matches!(self, Rule::MostFrequent | Rule::Longest)
    }
}

/// What survivorship knows of one record's value of one field; never the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidate {
    /// Equal values have equal keys (a hash of the value); used by `MostFrequent`.
    pub key: u64,
    /// Length in characters; used by `Longest`.
    pub len: u32,
}

/// The records survivorship chooses among.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// When each record's source created or last changed it (larger is newer; ties go to the
    /// later index).
    pub recency: &'a [i64],
    /// Each record's source's trust rank (0 is the most trusted).
    pub trust: &'a [u32],
    /// Row-major, one row per record and one column per rule: the record's value of that
    /// field, if it has one.
    pub values: &'a [Option<Candidate>],
}

/// Survivorship: for each cluster and each field (one [`Rule`] per field), the record whose
/// value becomes the golden value. Returns, per cluster, the winning record index per field
/// (`None`: no record has it).
pub fn survivors(
    clustering: &Clustering,
    facts: Facts<'_>,
    rules: &[Rule],
) -> Vec<Vec<Option<usize>>> {
    let fields = rules.len();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); clustering.clusters];
    for (i, &c) in clustering.cluster_of.iter().enumerate() {
        members[c as usize].push(i);
    }
    let value = |i: usize, f: usize| facts.values[i * fields + f];
    members
        .iter()
        .map(|records| {
            (0..fields)
                .map(|f| {
                    let having = records.iter().copied().filter(|&i| value(i, f).is_some());
                    let newest = |i: usize| (facts.recency[i], i);
                    match rules[f] {
                        Rule::MostRecent => having.max_by_key(|&i| newest(i)),
                        Rule::MostTrusted => {
                            having.max_by_key(|&i| (std::cmp::Reverse(facts.trust[i]), newest(i)))
                        }
                        Rule::Longest => {
                            having.max_by_key(|&i| (value(i, f).map_or(0, |v| v.len), newest(i)))
                        }
                        Rule::MostFrequent => {
                            let keys: Vec<u64> = records
                                .iter()
                                .filter_map(|&i| value(i, f).map(|v| v.key))
                                .collect();
                            let count = |k: u64| keys.iter().filter(|&&x| x == k).count();
                            having.max_by_key(|&i| {
                                (value(i, f).map_or(0, |v| count(v.key)), newest(i))
                            })
                        }
                    }
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::check;

    #[test]
    fn ids_are_stable_and_splits_get_new_ids() {
        let f = |(clusters, prior): &(Vec<u32>, Vec<Option<i64>>)| {
            let n = clusters.iter().max().map_or(0, |m| *m as usize + 1);
            let c = Clustering {
                cluster_of: clusters.clone(),
                clusters: n,
            };
            assign_ids(&c, prior, 100)
        };
        // Fresh records get fresh ids.
        check(f, (vec![0, 1], vec![None, None]), vec![100, 101]);
        // A merge keeps the smaller existing id.
        check(f, (vec![0, 0], vec![Some(7), Some(3)]), vec![3]);
        // A split: the larger part keeps the id, the other gets a new one.
        check(
            f,
            (vec![0, 1, 1], vec![Some(5), Some(5), Some(5)]),
            vec![100, 5],
        );
    }

    #[test]
    fn survivorship_rules_pick_their_record() {
        // One profile of four records, one field. Record 3 is the newest; 0 and 1 share a
        // value; 2 has the longest value and comes from the most trusted source.
        let c = Clustering {
            cluster_of: vec![0, 0, 0, 0],
            clusters: 1,
        };
        let v = |key, len| Some(Candidate { key, len });
        let values = [v(7, 5), v(7, 5), v(8, 12), v(9, 3)];
        let facts = Facts {
            recency: &[10, 20, 5, 30],
            trust: &[2, 2, 0, 1],
            values: &values,
        };
        let f = |rule: &Rule| survivors(&c, facts, &[*rule])[0][0];
        check(f, Rule::MostRecent, Some(3));
        // The shared value wins, through its most recent record.
        check(f, Rule::MostFrequent, Some(1));
        check(f, Rule::MostTrusted, Some(2));
        check(f, Rule::Longest, Some(2));
    }

    #[test]
    fn survivorship_skips_missing_values_and_ties_go_to_the_newest() {
        let c = Clustering {
            cluster_of: vec![0, 0, 1],
            clusters: 2,
        };
        let some = Some(Candidate { key: 1, len: 4 });
        // Field 0 in both records of cluster 0, field 1 only in the older one.
        let values = [some, some, some, None, None, None];
        let facts = Facts {
            recency: &[1, 2, 0],
            trust: &[0, 0, 0],
            values: &values,
        };
        let rules = [Rule::MostFrequent, Rule::Longest];
        let got = survivors(&c, facts, &rules);
        assert_eq!(got, vec![vec![Some(1), Some(0)], vec![None, None]]);
    }

    #[test]
    fn rules_parse_by_name() {
        check(
            |s: &&str| Rule::parse(s),
            "Most-Trusted",
            Ok(Rule::MostTrusted),
        );
        assert!(Rule::parse("best").unwrap_err().contains("most_recent"));
    }
}
