//! `patron eval recommend`: trains the recommenders on an interactions file and measures
//! how well each predicts held-out interactions.

use anyhow::{bail, Context};
use patron_engine::recommend::als::AlsParams;
use patron_engine::recommend::eval::{self, HitRate};
use patron_engine::recommend::matrix::Csr;
use patron_engine::recommend::similar::SimilarParams;
use patron_engine::recommend::{Model, Models, Scratch};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// Interactions read from a file, with dense ids.
#[derive(Debug, Default)]
pub struct Interactions {
    /// Dense user index → the file's user id.
    pub users: Vec<String>,
    /// Dense item index → the file's item id.
    pub items: Vec<String>,
    /// (user, item, weight).
    pub triplets: Vec<(u32, u32, f32)>,
    /// Rows refused, with line number and reason.
    pub rejected: Vec<String>,
}

/// Dense ids, shared by the training and held-out files.
#[derive(Debug, Default)]
struct Ids {
    users: HashMap<String, u32>,
    items: HashMap<String, u32>,
}

fn dense(map: &mut HashMap<String, u32>, key: &str) -> u32 {
    let n = map.len() as u32;
    *map.entry(key.to_owned()).or_insert(n)
}

/// Which columns of an interactions file hold the user, the item and the weight. A name
/// given here must be in the header; a column left `None` is found by its usual names.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The user column's header name.
    pub user: Option<String>,
    /// The item column's header name.
    pub item: Option<String>,
    /// The weight column's header name.
    pub weight: Option<String>,
}

/// The usual names of each column in other systems' exports (MovieLens `userId,movieId`,
/// shop exports' `customer_id,product_id,quantity`, web analytics' `visitorid,itemid`),
/// compared with case, spaces and punctuation ignored, in this order of preference.
const USER_NAMES: &[&str] = &[
    "user",
    "userid",
    "customer",
    "customerid",
    "visitor",
    "visitorid",
    "client",
    "clientid",
    "member",
    "memberid",
    "buyer",
    "buyerid",
    "shopper",
    "shopperid",
    "reviewer",
    "reviewerid",
];
const ITEM_NAMES: &[&str] = &[
    "item",
    "itemid",
    "product",
    "productid",
    "sku",
    "stockcode",
    "article",
    "articleid",
    "movie",
    "movieid",
    "asin",
    "isbn",
    "goods",
    "goodsid",
    "book",
    "bookid",
    "track",
    "trackid",
    "song",
    "songid",
    "artist",
    "artistid",
];
const WEIGHT_NAMES: &[&str] = &["weight", "quantity", "qty", "count", "plays", "playcount"];

/// `Customer ID` → `customerid`.
fn simplified(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The column named `given`, else the first of `usual` in the header.
fn column(
    header: &csv::StringRecord,
    given: Option<&str>,
    usual: &[&str],
    what: &str,
    path: &Path,
) -> anyhow::Result<Option<usize>> {
    let position = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    if let Some(name) = given {
        return match position(name) {
            Some(i) => Ok(Some(i)),
            None => bail!(
                "{}: no column {name:?} for the {what} (the header has {})",
                path.display(),
                listed(header)
            ),
        };
    }
    let simple: Vec<String> = header.iter().map(simplified).collect();
    Ok(usual
        .iter()
        .find_map(|u| simple.iter().position(|h| h == u)))
}

/// Whether a first line is a row of data rather than column names: no cell is empty (pandas
/// writes an index column with an empty name), some cell is a number, and the cells are not
/// numbered 0, 1, 2… or 1, 2, 3… (pandas' names for unnamed columns).
fn is_data(first: &csv::StringRecord) -> bool {
    let cells: Vec<&str> = first.iter().map(str::trim).collect();
    let numbered = |from: usize| {
        cells
            .iter()
            .enumerate()
            .all(|(i, c)| c.parse::<usize>() == Ok(i + from))
    };
    !cells.iter().any(|c| c.is_empty())
        && cells
            .iter()
            .any(|c| c.parse::<f64>().is_ok_and(f64::is_finite))
        && !numbered(0)
        && !numbered(1)
}

fn listed(header: &csv::StringRecord) -> String {
    header
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a delimited file of interactions with a header naming the columns (see [`Columns`])
/// or with none (then user and item are its first two columns, and every row weighs 1), opened
/// as imports are (gzip or not, UTF-8 or GB18030, comma, semicolon, tab or pipe separated). A
/// row without user or item, or with a weight that is not a positive number, is refused with
/// its line and reason; the rest are kept. A missing weight is 1.
fn read(
    path: &Path,
    columns: &Columns,
    ids: &mut Ids,
    out: &mut Interactions,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let opened = crate::collect::open_input(Box::new(file), None)
        .with_context(|| path.display().to_string())?;
    let crate::collect::Format::Csv { delimiter } = opened.format else {
        bail!(
            "{}: interactions must be a delimited file, not JSON Lines",
            path.display()
        );
    };
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(opened.reader);
    let header = r.headers()?.clone();
    let user = column(&header, columns.user.as_deref(), USER_NAMES, "user", path)?;
    let item = column(&header, columns.item.as_deref(), ITEM_NAMES, "item", path)?;
    // A file whose first line names nothing and holds a number (MovieLens `u.data`, Amazon
    // and Taobao dumps) has no header: user and item are its first two columns. What follows
    // differs from file to file (a rating, a category id, an artist's name, a timestamp), so
    // no weight is taken from it. A first line of unknown words stays an error rather than
    // being read as an interaction. The warning shows no value: ids may be personal.
    let headerless =
        user.is_none() && item.is_none() && columns.weight.is_none() && is_data(&header);
    let (user, item, weight) = if headerless {
        tracing::warn!(
            "{}: the first line names no columns, so the file is read as data: the user is its \
             first column, the item its second, and every row weighs 1; give the file a \
             header line to choose other columns or a weight",
            path.display()
        );
        (0, 1, None)
    } else {
        let (Some(user), Some(item)) = (user, item) else {
            bail!(
                "{}: the header must name a user and an item column (such as `user` and \
                 `item`, or `customer_id` and `product_id`), or name them with --user-column \
                 and --item-column; it has {}",
                path.display(),
                listed(&header)
            );
        };
        let weight = column(
            &header,
            columns.weight.as_deref(),
            WEIGHT_NAMES,
            "weight",
            path,
        )?;
        (user, item, weight)
    };
    let first = headerless.then(|| Ok(header.clone()));
    let first_line = if headerless { 1 } else { 2 };
    for (n, row) in first.into_iter().chain(r.records()).enumerate() {
        let line = n + first_line;
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                out.rejected.push(format!("{}:{line}: {e}", path.display()));
                continue;
            }
        };
        let field = |i: usize| row.get(i).map(str::trim).unwrap_or_default();
        let (u, i) = (field(user), field(item));
        if u.is_empty() || i.is_empty() {
            out.rejected.push(format!(
                "{}:{line}: user and item are required",
                path.display()
            ));
            continue;
        }
        let w = match weight.map(field).filter(|w| !w.is_empty()) {
            None => 1.0,
            Some(w) => match w.parse::<f32>() {
                Ok(w) if w.is_finite() && w > 0.0 => w,
                _ => {
                    out.rejected.push(format!(
                        "{}:{line}: weight {w:?} is not a positive number",
                        path.display()
                    ));
                    continue;
                }
            },
        };
        out.triplets
            .push((dense(&mut ids.users, u), dense(&mut ids.items, i), w));
    }
    Ok(())
}

/// Settings of `patron eval recommend`.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Models to train and score.
    pub models: Vec<Model>,
    /// ALS settings.
    pub als: AlsParams,
    /// Item-to-item settings.
    pub similar: SimilarParams,
    /// Seed of the leave-one-out split.
    pub seed: u64,
    /// The columns of `--interactions` and `--holdout` files.
    pub columns: Columns,
}

/// Length of the lists evaluated.
const K: usize = 10;

/// One model's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelScore {
    /// The model.
    pub model: Model,
    /// Wall seconds to train it (for the blend: both of its models).
    pub train_seconds: f64,
    /// Hit rate at 10.
    pub hr_at_10: f64,
    /// NDCG at 10.
    pub ndcg_at_10: f64,
    /// Users with a held-out item.
    pub users_evaluated: usize,
}

/// What `patron eval recommend --interactions` prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    /// Distinct users, items and training interactions.
    pub users: usize,
    /// Distinct items.
    pub items: usize,
    /// Training interactions (distinct user–item cells).
    pub interactions: usize,
    /// Rows refused, with reasons (at most the first 20; `rejected_rows` counts all).
    pub rejected: Vec<String>,
    /// Rows refused.
    pub rejected_rows: usize,
    /// Held-out users whose user never appears in training (skipped).
    pub unknown_users: usize,
    /// Per model.
    pub models: Vec<ModelScore>,
    /// Rayon threads used.
    pub threads: usize,
}

/// Evaluates on `interactions`, holding one random item per user out (seeded), or on the
/// given `holdout` file of `user,item` pairs (then `interactions` is the training set).
pub fn eval_file(
    interactions: &Path,
    holdout: Option<&Path>,
    opts: &EvalOptions,
) -> anyhow::Result<FileReport> {
    let mut ids = Ids::default();
    let mut data = Interactions::default();
    read(interactions, &opts.columns, &mut ids, &mut data)?;
    let (train, held) = match holdout {
        Some(path) => {
            let mut h = Interactions::default();
            // Held-out pairs need no weight, so a --weight-column need not be there.
            let columns = Columns {
                weight: None,
                ..opts.columns.clone()
            };
            read(path, &columns, &mut ids, &mut h)?;
            data.rejected.append(&mut h.rejected);
            let held: Vec<(u32, u32)> = h.triplets.iter().map(|t| (t.0, t.1)).collect();
            (std::mem::take(&mut data.triplets), held)
        }
        None => eval::leave_one_out(&data.triplets, opts.seed),
    };
    if train.is_empty() {
        let why = match data.rejected.as_slice() {
            [] => "it has no rows".to_owned(),
            refused => format!(
                "all {} rows were refused, for example: {}",
                refused.len(),
                refused[..refused.len().min(3)].join("; ")
            ),
        };
        bail!("{}: no usable interactions: {why}", interactions.display());
    }
    let m = Csr::from_triplets(ids.users.len(), ids.items.len(), &train);
    // Users seen only in the held-out file have no history: no model can rank for them.
    let (held, unknown): (Vec<_>, Vec<_>) = held
        .into_iter()
        .partition(|&(u, _)| m.ptr[u as usize + 1] > m.ptr[u as usize]);
    let mut models = Vec::new();
    let mut trained = Models {
        popularity: patron_engine::recommend::buyers(&m),
        ..Models::default()
    };
    let mut seconds: HashMap<Model, f64> = HashMap::new();
    for &model in &opts.models {
        let start = std::time::Instant::now();
        match model {
            Model::Als if trained.als.is_none() => {
                trained.als = Some(patron_engine::recommend::als::train(&m, &opts.als));
            }
            Model::ItemToItem if trained.similar.is_none() => {
                trained.similar = Some(patron_engine::recommend::similar::neighbours(
                    &m,
                    &opts.similar,
                ));
            }
            _ => {}
        }
        seconds.insert(model, start.elapsed().as_secs_f64());
    }
    if opts.models.contains(&Model::Blend) {
        let start = std::time::Instant::now();
        if trained.als.is_none() {
            trained.als = Some(patron_engine::recommend::als::train(&m, &opts.als));
        }
        if trained.similar.is_none() {
            trained.similar = Some(patron_engine::recommend::similar::neighbours(
                &m,
                &opts.similar,
            ));
        }
        let own = start.elapsed().as_secs_f64();
        let parts = seconds.get(&Model::Als).copied().unwrap_or(0.0)
            + seconds.get(&Model::ItemToItem).copied().unwrap_or(0.0);
        seconds.insert(Model::Blend, own + parts);
    }
    for &model in &opts.models {
        let lists: Vec<Vec<u32>> = held
            .par_iter()
            .map_init(Scratch::default, |s, &(u, _)| {
                let history = m.row(u as usize).0;
                let keep = |i: u32| history.binary_search(&i).is_err();
                trained
                    .rank(model, u as usize, history, K, &keep, s)
                    .into_iter()
                    .map(|p| p.item)
                    .collect()
            })
            .collect();
        let HitRate { hr, ndcg, users } = eval::hit_rate(&held, &lists);
        models.push(ModelScore {
            model,
            train_seconds: seconds.get(&model).copied().unwrap_or(0.0),
            hr_at_10: hr,
            ndcg_at_10: ndcg,
            users_evaluated: users,
        });
    }
    let rejected_rows = data.rejected.len();
    data.rejected.truncate(20);
    Ok(FileReport {
        users: ids.users.len(),
        items: ids.items.len(),
        interactions: m.nnz(),
        rejected: data.rejected,
        rejected_rows,
        unknown_users: unknown.len(),
        models,
        threads: rayon::current_num_threads(),
    })
}

/// How `patron run recommend` builds the stored lists.
#[derive(Debug, Clone)]
pub struct RecommendConfig {
    /// The model ranking for customers with a history.
    pub model: Model,
    /// Items per customer.
    pub k: usize,
    /// ALS settings.
    pub als: AlsParams,
    /// Items of one category in one list.
    pub max_per_category: usize,
    /// Categories whose products are bought again (consumables): recommended again once
    /// `repurchase_days` have passed since the customer last bought them. Other bought
    /// products are never recommended to the same customer again.
    pub consumables: Vec<String>,
    /// Days before a consumable is recommended again.
    pub repurchase_days: i64,
    /// Score multipliers by product tag.
    pub boost: Vec<(String, f32)>,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        RecommendConfig {
            model: Model::Blend,
            k: 10,
            als: AlsParams::default(),
            max_per_category: 4,
            consumables: Vec::new(),
            repurchase_days: 30,
            boost: Vec::new(),
        }
    }
}

const DAY_MS: i64 = 86_400_000;
/// A purchase's weight halves every this many days: last year's purchase still counts, but
/// less than last month's.
const PURCHASE_HALF_LIFE_DAYS: f64 = 180.0;
/// Browsing is a weaker and shorter-lived signal than buying.
const EVENT_WEIGHT: f32 = 0.25;
const EVENT_HALF_LIFE_DAYS: f64 = 30.0;

/// Weighted (customer, item, weight) cells from purchases and product events before `until`,
/// each decayed by its age at `until`.
fn weighted(snap: &InteractionSnapshot, until: i64) -> Vec<(u32, u32, f32)> {
    let decay = |at: i64, half_life: f64| {
        0.5f64.powf((until - at).max(0) as f64 / DAY_MS as f64 / half_life) as f32
    };
    let purchases = snap
        .purchases
        .iter()
        .filter(|p| p.2 < until)
        .map(|&(c, i, at)| (c, i, decay(at, PURCHASE_HALF_LIFE_DAYS)));
    let events = snap
        .events
        .iter()
        .filter(|e| e.2 < until)
        .map(|&(c, i, at)| (c, i, EVENT_WEIGHT * decay(at, EVENT_HALF_LIFE_DAYS)));
    purchases.chain(events).collect()
}

/// Each customer's bought items with the last time, sorted by item.
fn last_bought(snap: &InteractionSnapshot, until: i64) -> Vec<Vec<(u32, i64)>> {
    let mut bought: Vec<Vec<(u32, i64)>> = vec![Vec::new(); snap.customers.len()];
    for &(c, i, at) in snap.purchases.iter().filter(|p| p.2 < until) {
        bought[c as usize].push((i, at));
    }
    bought.par_iter_mut().for_each(|b| {
        b.sort_unstable();
        // Keep the latest time per item: sorted by (item, time), the last of each run.
        b.reverse();
        b.dedup_by_key(|x| x.0);
        b.reverse();
    });
    bought
}

/// Distinct (customer, item) purchase pairs before `until`, sorted.
fn bought_pairs(snap: &InteractionSnapshot, until: i64) -> Vec<(u32, u32)> {
    let mut pairs: Vec<(u32, u32)> = snap
        .purchases
        .iter()
        .filter(|p| p.2 < until)
        .map(|p| (p.0, p.1))
        .collect();
    pairs.par_sort_unstable();
    pairs.dedup();
    pairs
}

/// Longest fallback ranking kept per group.
const FALLBACK_DEPTH: usize = 200;

/// Items ranked by distinct buyers within each group of customers (`group_of[c]`,
/// `u32::MAX` for none), in one pass over the pairs; at most `depth` per group.
fn rank_by_group(
    pairs: &[(u32, u32)],
    group_of: &dyn Fn(u32) -> u32,
    groups: usize,
    depth: usize,
) -> Vec<Vec<u32>> {
    let mut counts: Vec<rustc_hash::FxHashMap<u32, u32>> = vec![Default::default(); groups];
    for &(c, i) in pairs {
        if let Some(g) = counts.get_mut(group_of(c) as usize) {
            *g.entry(i).or_default() += 1;
        }
    }
    counts
        .into_par_iter()
        .map(|g| {
            let mut ranked: Vec<(u32, u32)> = g.into_iter().collect();
            ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.truncate(depth);
            ranked.into_iter().map(|(i, _)| i).collect()
        })
        .collect()
}

/// Popularity rankings per named group (segment or country) of customers.
fn popular_by(pairs: &[(u32, u32)], group: &[Option<String>]) -> HashMap<String, Vec<u32>> {
    let mut names: Vec<&String> = group.iter().flatten().collect();
    names.sort();
    names.dedup();
    let index: Vec<u32> = group
        .iter()
        .map(|g| {
            g.as_ref()
                .and_then(|g| names.binary_search(&g).ok())
                .map_or(u32::MAX, |i| i as u32)
        })
        .collect();
    let ranked = rank_by_group(pairs, &|c| index[c as usize], names.len(), FALLBACK_DEPTH);
    names.into_iter().cloned().zip(ranked).collect()
}

/// Models trained on the snapshot's history before `until`, with everything the final
/// lists need.
struct Recommender<'a> {
    snap: &'a InteractionSnapshot,
    cfg: &'a RecommendConfig,
    matrix: Csr,
    models: Models,
    bought: Vec<Vec<(u32, i64)>>,
    category: Vec<u32>,
    boost: Vec<f32>,
    consumable: Vec<bool>,
    by_segment: HashMap<String, Vec<u32>>,
    by_country: HashMap<String, Vec<u32>>,
    /// Each customer's most bought category (`u32::MAX`: none).
    favourite: Vec<u32>,
    /// Items of each category, most bought first.
    by_category: Vec<Vec<u32>>,
    /// Category names, by index.
    categories: Vec<String>,
    overall: Vec<u32>,
    until: i64,
}

impl<'a> Recommender<'a> {
    fn train(snap: &'a InteractionSnapshot, cfg: &'a RecommendConfig, until: i64) -> Self {
        let matrix = Csr::from_triplets(
            snap.customers.len(),
            snap.products.len(),
            &weighted(snap, until),
        );
        // ALS learns from BM25-weighted interactions (the usual remedy for bestsellers and
        // heavy buyers drowning the taste signal; K1 100, B 0.8 as in `implicit`); the other
        // models only see who bought what.
        let models = Models::train(
            &matrix.bm25(100.0, 0.8),
            &[cfg.model],
            &cfg.als,
            &SimilarParams::default(),
        );
        let mut categories: Vec<&str> = snap
            .products
            .iter()
            .filter_map(|p| p.category.as_deref())
            .collect();
        categories.sort_unstable();
        categories.dedup();
        let category: Vec<u32> = snap
            .products
            .iter()
            .map(|p| {
                p.category
                    .as_deref()
                    .and_then(|c| categories.binary_search(&c).ok())
                    .map_or(u32::MAX, |c| c as u32)
            })
            .collect();
        let pairs = bought_pairs(snap, until);
        // Every item ranked, then split by category, so each category keeps its own top.
        let all = rank_by_group(&pairs, &|_| 0, 1, usize::MAX).remove(0);
        let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); categories.len()];
        for &i in &all {
            if let Some(list) = by_category.get_mut(category[i as usize] as usize) {
                if list.len() < FALLBACK_DEPTH {
                    list.push(i);
                }
            }
        }
        let overall: Vec<u32> = all.into_iter().take(FALLBACK_DEPTH).collect();
        let mut counts: Vec<Vec<(u32, u32)>> = vec![Vec::new(); snap.customers.len()];
        for &(c, i, _) in snap.purchases.iter().filter(|p| p.2 < until) {
            let cat = category[i as usize];
            if cat == u32::MAX {
                continue;
            }
            let mine = &mut counts[c as usize];
            match mine.iter_mut().find(|(k, _)| *k == cat) {
                Some((_, n)) => *n += 1,
                None => mine.push((cat, 1)),
            }
        }
        let favourite = counts
            .into_iter()
            .map(|mine| {
                mine.into_iter()
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .map_or(u32::MAX, |(cat, _)| cat)
            })
            .collect();
        let boost = snap
            .products
            .iter()
            .map(|p| {
                cfg.boost
                    .iter()
                    .filter(|(tag, _)| p.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
                    .map(|(_, f)| *f)
                    .product()
            })
            .collect();
        let consumable = snap
            .products
            .iter()
            .map(|p| {
                p.category
                    .as_deref()
                    .is_some_and(|c| cfg.consumables.iter().any(|x| x.eq_ignore_ascii_case(c)))
            })
            .collect();
        Recommender {
            snap,
            cfg,
            models,
            bought: last_bought(snap, until),
            category,
            boost,
            consumable,
            by_segment: popular_by(&pairs, &snap.segment),
            by_country: popular_by(&pairs, &snap.country),
            favourite,
            by_category,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            overall,
            matrix,
            until,
        }
    }

    /// Customer `c`'s list and the labels of the fallbacks it used.
    fn recommend(
        &self,
        c: usize,
        s: &mut Scratch,
    ) -> (Vec<patron_engine::recommend::Pick>, Vec<String>) {
        let bought = &self.bought[c];
        let repurchase = self.cfg.repurchase_days * DAY_MS;
        let keep = |i: u32| {
            self.snap.products[i as usize].available
                && match bought.binary_search_by_key(&i, |b| b.0) {
                    Err(_) => true,
                    Ok(at) => {
                        self.consumable[i as usize] && self.until - bought[at].1 >= repurchase
                    }
                }
        };
        let history = self.matrix.row(c).0;
        let picks = if history.is_empty() {
            Vec::new()
        } else {
            self.models
                .rank(self.cfg.model, c, history, self.cfg.k * 3, &keep, s)
        };
        let mut labels = Vec::new();
        let mut lists: Vec<&[u32]> = Vec::new();
        if let Some(seg) = &self.snap.segment[c] {
            if let Some(list) = self.by_segment.get(seg) {
                lists.push(list);
                labels.push(format!("popular with {seg}"));
            }
        }
        if let Some(list) = self.by_category.get(self.favourite[c] as usize) {
            lists.push(list);
            labels.push(format!(
                "popular in {}",
                self.categories[self.favourite[c] as usize]
            ));
        }
        if let Some(country) = &self.snap.country[c] {
            if let Some(list) = self.by_country.get(country) {
                lists.push(list);
                labels.push(format!("popular with customers in {country}"));
            }
        }
        lists.push(&self.overall);
        labels.push("popular with all customers".into());
        let rules = patron_engine::recommend::Rules {
            category: &self.category,
            max_per_category: self.cfg.max_per_category.max(1),
            boost: &self.boost,
        };
        let list = patron_engine::recommend::assemble(picks, &lists, &keep, &rules, self.cfg.k);
        (list, labels)
    }

    fn reason(&self, why: Why, labels: &[String]) -> String {
        let name = |i: u32| &self.snap.products[i as usize].name;
        match why {
            Why::Taste { like: Some(i) } => format!("for fans of {}", name(i)),
            Why::Taste { like: None } => "matches your tastes".into(),
            Why::BoughtWith(i) => format!("bought with {}", name(i)),
            Why::Popular => "popular with all customers".into(),
            Why::Fallback(f) => labels[f].clone(),
        }
    }
}

use patron_engine::recommend::Why;
use patron_store::{InteractionSnapshot, RecommendationRow, Store};

/// `patron run recommend`: trains on all history, stores every customer's list with its
/// reasons and every product's similar products. Returns (customers, recommendations,
/// customers served by a model rather than only fallbacks, products with similar ones).
pub async fn run_recommend(
    store: &Store,
    cfg: &RecommendConfig,
) -> anyhow::Result<[(&'static str, u64); 4]> {
    let snap = store.interaction_snapshot().await?;
    // Everything stored counts; ages are measured from the newest interaction, but never
    // from the future: a client's event dated years ahead would decay all else to nothing.
    let until = snap
        .purchases
        .iter()
        .chain(&snap.events)
        .map(|p| p.2)
        .max()
        .unwrap_or(0)
        .min(patron_store::now_ms())
        + 1;
    let rec = Recommender::train(&snap, cfg, until);
    let lists: Vec<(Vec<patron_engine::recommend::Pick>, Vec<String>)> = (0..snap.customers.len())
        .into_par_iter()
        .map_init(Scratch::default, |s, c| rec.recommend(c, s))
        .collect();
    let mut rows = Vec::new();
    let mut modelled = 0u64;
    for (c, (list, labels)) in lists.iter().enumerate() {
        if list.iter().any(|p| !matches!(p.why, Why::Fallback(_))) {
            modelled += 1;
        }
        for (rank, p) in list.iter().enumerate() {
            rows.push(RecommendationRow {
                customer_id: snap.customers[c],
                rank: rank as i64 + 1,
                product_id: snap.products[p.item as usize].product_id.clone(),
                score: f64::from(p.score),
                reason: rec.reason(p.why, labels),
            });
        }
    }
    let n = rows.len() as u64;
    store.write_recommendations(rows).await?;
    let nb = match &rec.models.similar {
        Some(nb) => nb.clone(),
        None => {
            patron_engine::recommend::similar::neighbours(&rec.matrix, &SimilarParams::default())
        }
    };
    let mut similar = Vec::new();
    let mut with_similar = 0u64;
    for (i, p) in snap.products.iter().enumerate() {
        let (items, sims) = nb.of(i);
        with_similar += u64::from(!items.is_empty());
        for (rank, (&j, &s)) in items.iter().zip(sims).take(20).enumerate() {
            similar.push((
                p.product_id.clone(),
                rank as i64 + 1,
                snap.products[j as usize].product_id.clone(),
                f64::from(s),
            ));
        }
    }
    store.write_similar_products(similar).await?;
    Ok([
        ("customers", snap.customers.len() as u64),
        ("recommendations", n),
        ("customers ranked by the model", modelled),
        ("products with similar products", with_similar),
    ])
}

/// What `patron eval recommend` prints for the stored data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredReport {
    /// The first held-out day (ISO 8601).
    pub holdout_from: String,
    /// Customers who bought something new in the held-out period.
    pub customers_evaluated: usize,
    /// Per model.
    pub models: Vec<StoredScore>,
}

/// One model's result on the stored data.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredScore {
    /// The model.
    pub model: Model,
    /// Wall seconds to train.
    pub train_seconds: f64,
    /// Precision at 10.
    pub precision_at_10: f64,
    /// Recall at 10.
    pub recall_at_10: f64,
    /// NDCG at 10.
    pub ndcg_at_10: f64,
    /// Share of the catalogue recommended to anyone.
    pub coverage: f64,
}

/// Time-based evaluation on the stored orders: trains on everything before the last
/// `holdout_days` and scores each customer's raw model list (no business rules or
/// fallbacks, so models are compared as they are) against the products they bought for the
/// first time in the held-out days.
pub async fn eval_stored(
    store: &Store,
    holdout_days: u32,
    opts: &EvalOptions,
    pool: &rayon::ThreadPool,
) -> anyhow::Result<StoredReport> {
    let snap = store.interaction_snapshot().await?;
    let Some(last) = snap.purchases.iter().map(|p| p.2).max() else {
        bail!("no completed orders are stored: import orders first");
    };
    let until = last - i64::from(holdout_days) * DAY_MS;
    let bought = last_bought(&snap, until);
    let mut truth: Vec<Vec<u32>> = vec![Vec::new(); snap.customers.len()];
    for &(c, i, at) in &snap.purchases {
        if at >= until
            && bought[c as usize]
                .binary_search_by_key(&i, |b| b.0)
                .is_err()
        {
            truth[c as usize].push(i);
        }
    }
    for t in &mut truth {
        t.sort_unstable();
        t.dedup();
    }
    let customers_evaluated = truth.iter().filter(|t| !t.is_empty()).count();
    if customers_evaluated == 0 {
        bail!("nobody bought anything new in the last {holdout_days} days: choose a longer --holdout-days");
    }
    let mut models = Vec::new();
    for &model in &opts.models {
        let cfg = RecommendConfig {
            model,
            als: opts.als.clone(),
            ..RecommendConfig::default()
        };
        let start = std::time::Instant::now();
        let rec = pool.install(|| Recommender::train(&snap, &cfg, until));
        let train_seconds = start.elapsed().as_secs_f64();
        let lists: Vec<Vec<u32>> = pool.install(|| {
            (0..snap.customers.len())
                .into_par_iter()
                .map_init(Scratch::default, |s, c| {
                    if truth[c].is_empty() {
                        return Vec::new();
                    }
                    let history = rec.matrix.row(c).0;
                    let bought = &rec.bought[c];
                    let keep = |i: u32| bought.binary_search_by_key(&i, |b| b.0).is_err();
                    if history.is_empty() && model != Model::Popularity {
                        return Vec::new();
                    }
                    rec.models
                        .rank(model, c, history, K, &keep, s)
                        .into_iter()
                        .map(|p| p.item)
                        .collect()
                })
                .collect()
        });
        let r = eval::ranking(&truth, &lists, K, snap.products.len());
        models.push(StoredScore {
            model,
            train_seconds,
            precision_at_10: r.precision,
            recall_at_10: r.recall,
            ndcg_at_10: r.ndcg,
            coverage: r.coverage,
        });
    }
    Ok(StoredReport {
        holdout_from: chrono::DateTime::from_timestamp_millis(until)
            .map(|t| t.date_naive().to_string())
            .unwrap_or_default(),
        customers_evaluated,
        models,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_their_usual_names_or_as_given() {
        let path = Path::new("f.csv");
        let header = csv::StringRecord::from(vec!["Order", "Customer ID", "StockCode", "Qty"]);
        let find = |given: Option<&str>, usual: &[&str]| {
            column(&header, given, usual, "user", path).map_err(|e| e.to_string())
        };
        assert_eq!(find(None, USER_NAMES), Ok(Some(1)));
        assert_eq!(find(None, ITEM_NAMES), Ok(Some(2)));
        assert_eq!(find(None, WEIGHT_NAMES), Ok(Some(3)));
        assert_eq!(find(Some("order"), USER_NAMES), Ok(Some(0)));
        let missing = find(Some("Shopper"), USER_NAMES).unwrap_err();
        assert!(missing.contains(r#"no column "Shopper""#), "{missing}");
        // `user` is preferred to `userId` when a file has both.
        let both = csv::StringRecord::from(vec!["userId", "user"]);
        assert_eq!(
            column(&both, None, USER_NAMES, "user", path).unwrap(),
            Some(1)
        );
    }
}
