-- Recommendations: product stock and merchandising tags for the business rules, and each
-- product's most similar products (item-to-item co-purchase) for "customers who bought this
-- also bought".
ALTER TABLE products ADD COLUMN stock BIGINT;
ALTER TABLE products ADD COLUMN tags TEXT;

CREATE TABLE similar_products (
    product_id   TEXT NOT NULL,
    rank         INTEGER NOT NULL,
    similar_id   TEXT NOT NULL,
    score        REAL NOT NULL,
    PRIMARY KEY (product_id, rank)
);
