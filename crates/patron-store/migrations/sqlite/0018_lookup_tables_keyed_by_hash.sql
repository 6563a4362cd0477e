-- The lookup tables of online matching and search are keyed by what is looked up (the blind
-- index first), so that a full unify run appends rows in key order into the table's own
-- B-tree; the index by profile (to replace a profile's rows) is built once after the load.
-- Before, the table was keyed by profile and a full run sorted the blind indexes into a
-- second index: the costlier sort of 16-byte keys, after a load of the same size.
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
CREATE INDEX identities_customer ON identities (customer_id);

CREATE TABLE name_index_new (
    token_hash   BLOB NOT NULL,
    customer_id  INTEGER NOT NULL,
    PRIMARY KEY (token_hash, customer_id)
) WITHOUT ROWID;
INSERT INTO name_index_new (token_hash, customer_id)
    SELECT token_hash, customer_id FROM name_index ORDER BY token_hash, customer_id;
DROP TABLE name_index;
ALTER TABLE name_index_new RENAME TO name_index;
CREATE INDEX name_index_customer ON name_index (customer_id);
