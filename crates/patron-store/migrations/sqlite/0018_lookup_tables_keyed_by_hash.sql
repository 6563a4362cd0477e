-- The lookup tables of online matching and search are keyed by what is looked up (the blind
-- index first), so that a full unify run appends rows in key order into one B-tree instead
-- of loading a table keyed by profile and then sorting a second index over it (most of the
-- time a run spent writing them). Writes scoped to a few profiles delete by key too; only
-- erasure scans for a profile's rows.
CREATE TABLE identities_new (
    value_hash   BLOB NOT NULL,
    customer_id  INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    PRIMARY KEY (value_hash, customer_id, kind)
) WITHOUT ROWID;
INSERT INTO identities_new (value_hash, customer_id, kind)
    SELECT value_hash, customer_id, kind FROM identities ORDER BY value_hash, customer_id, kind;
DROP TABLE identities;
ALTER TABLE identities_new RENAME TO identities;

CREATE TABLE name_index_new (
    token_hash   BLOB NOT NULL,
    customer_id  INTEGER NOT NULL,
    PRIMARY KEY (token_hash, customer_id)
) WITHOUT ROWID;
INSERT INTO name_index_new (token_hash, customer_id)
    SELECT token_hash, customer_id FROM name_index ORDER BY token_hash, customer_id;
DROP TABLE name_index;
ALTER TABLE name_index_new RENAME TO name_index;
