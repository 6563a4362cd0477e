//! What the recommend stage reads (purchases, product events, the catalogue, each
//! customer's segment and country) and what it writes and serves (per-customer lists,
//! similar products).

use crate::bulk::Val;
use crate::profiles::Recommendation;
use crate::{Result, Store};
use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use sqlx::Row;

/// A product as the recommender sees it.
#[derive(Debug, Clone)]
pub struct CatalogItem {
    /// Product id.
    pub product_id: String,
    /// Display name, for reasons.
    pub name: String,
    /// Category.
    pub category: Option<String>,
    /// Active and not out of stock.
    pub available: bool,
    /// Merchandising tags.
    pub tags: Vec<String>,
}

/// Everything the recommend stage reads, with dense indexes.
#[derive(Debug, Default)]
pub struct InteractionSnapshot {
    /// Dense customer index → profile id (every profile, buyers or not).
    pub customers: Vec<i64>,
    /// Each customer's RFM segment, if scored.
    pub segment: Vec<Option<String>>,
    /// Each customer's country (ISO 3166), if known.
    pub country: Vec<Option<String>>,
    /// Dense item index → product.
    pub products: Vec<CatalogItem>,
    /// Completed order lines: (customer, item, placed_at ms).
    pub purchases: Vec<(u32, u32, i64)>,
    /// Product events (views, cart adds): (customer, item, occurred_at ms).
    pub events: Vec<(u32, u32, i64)>,
}

/// One similar product.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimilarProduct {
    /// 1-based rank.
    pub rank: i64,
    /// The similar product's id.
    pub product_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its category.
    pub category: Option<String>,
    /// Similarity in (0, 1].
    pub score: f64,
}

impl Store {
    /// Reads the recommend stage's input.
    pub async fn interaction_snapshot(&self) -> Result<InteractionSnapshot> {
        let mut snap = InteractionSnapshot::default();
        let mut customer_index: FxHashMap<i64, u32> = FxHashMap::default();
        let mut rows = sqlx::query(
            "SELECT c.customer_id, c.country, m.rfm_segment FROM customers c \
             LEFT JOIN customer_metrics m ON m.customer_id = c.customer_id ORDER BY c.customer_id",
        )
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            customer_index.insert(r.try_get(0)?, snap.customers.len() as u32);
            snap.customers.push(r.try_get(0)?);
            snap.country.push(r.try_get(1)?);
            snap.segment.push(r.try_get(2)?);
        }
        drop(rows);
        let mut item_index: FxHashMap<String, u32> = FxHashMap::default();
        for r in sqlx::query(
            "SELECT product_id, name, category, active, stock, tags FROM products ORDER BY product_id",
        )
        .fetch_all(&self.pool)
        .await?
        {
            let id: String = r.try_get(0)?;
            let active: i64 = r.try_get(3)?;
            let stock: Option<i64> = r.try_get(4)?;
            let tags: Option<String> = r.try_get(5)?;
            item_index.insert(id.clone(), snap.products.len() as u32);
            snap.products.push(CatalogItem {
                product_id: id,
                name: r.try_get(1)?,
                category: r.try_get(2)?,
                available: active != 0 && stock != Some(0),
                tags: tags
                    .map(|t| t.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            });
        }
        let mut rows = sqlx::query(
            "SELECT o.customer_id, l.product_id, o.placed_at FROM order_lines l \
             JOIN orders o ON o.source = l.source AND o.order_id = l.order_id \
             WHERE o.customer_id IS NOT NULL AND o.status = 'completed'",
        )
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let product: String = r.try_get(1)?;
            if let (Some(&c), Some(&i)) = (
                customer_index.get(&r.try_get::<i64, _>(0)?),
                item_index.get(&product),
            ) {
                snap.purchases.push((c, i, r.try_get(2)?));
            }
        }
        drop(rows);
        // Event properties are sealed (they may hold anything a site sends); only the
        // product id is taken out of them.
        let mut rows = sqlx::query(
            "SELECT customer_id, properties_enc, occurred_at FROM events \
             WHERE customer_id IS NOT NULL AND properties_enc IS NOT NULL",
        )
        .fetch(&self.pool);
        while let Some(r) = rows.try_next().await? {
            let Some(&c) = customer_index.get(&r.try_get::<i64, _>(0)?) else {
                continue;
            };
            let sealed: Vec<u8> = r.try_get(1)?;
            let Ok(props) = self.vault.open(&sealed) else {
                continue;
            };
            let Ok(serde_json::Value::Object(props)) = serde_json::from_slice(&props) else {
                continue;
            };
            let product = ["product_id", "productId", "sku"]
                .iter()
                .find_map(|k| props.get(*k).and_then(|v| v.as_str()));
            if let Some(&i) = product.and_then(|p| item_index.get(p)) {
                snap.events.push((c, i, r.try_get(2)?));
            }
        }
        Ok(snap)
    }

    /// Replaces every product's similar products: (product, rank, similar, score).
    pub async fn write_similar_products(
        &self,
        rows: Vec<(String, i64, String, f64)>,
    ) -> Result<()> {
        let rows = rows
            .into_iter()
            .map(|(p, rank, s, score)| -> Vec<Val> {
                vec![p.into(), rank.into(), s.into(), score.into()]
            })
            .collect();
        self.replace_all(
            "similar_products",
            &["product_id", "rank", "similar_id", "score"],
            rows,
        )
        .await
    }

    /// A customer's stored recommendations, best first, at most `k`.
    pub async fn recommendations(&self, customer_id: i64, k: i64) -> Result<Vec<Recommendation>> {
        let rows = sqlx::query(
            // Stored lists are as of the last run: a product deactivated or sold out since
            // is left out when serving.
            "SELECT r.rank, r.product_id, p.name, p.category, r.score, r.reason FROM recommendations r \
             JOIN products p ON p.product_id = r.product_id \
             WHERE r.customer_id = $1 AND p.active <> 0 AND (p.stock IS NULL OR p.stock > 0) \
             ORDER BY r.rank LIMIT $2",
        )
        .bind(customer_id)
        .bind(k)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Recommendation {
                    rank: r.try_get(0)?,
                    product_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    category: r.try_get(3)?,
                    score: r.try_get(4)?,
                    reason: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Whether a profile with this id exists.
    pub async fn customer_exists(&self, customer_id: i64) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 FROM customers WHERE customer_id = $1")
                .bind(customer_id)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// A product's most similar products, or `None` if there is no such product.
    pub async fn similar_products(
        &self,
        product_id: &str,
        k: i64,
    ) -> Result<Option<Vec<SimilarProduct>>> {
        let known = sqlx::query("SELECT 1 FROM products WHERE product_id = $1")
            .bind(product_id)
            .fetch_optional(&self.pool)
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let rows = sqlx::query(
            "SELECT s.rank, s.similar_id, p.name, p.category, s.score FROM similar_products s \
             JOIN products p ON p.product_id = s.similar_id \
             WHERE s.product_id = $1 AND p.active <> 0 AND (p.stock IS NULL OR p.stock > 0) \
             ORDER BY s.rank LIMIT $2",
        )
        .bind(product_id)
        .bind(k)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SimilarProduct {
                    rank: r.try_get(0)?,
                    product_id: r.try_get(1)?,
                    name: r.try_get(2)?,
                    category: r.try_get(3)?,
                    score: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }
}
