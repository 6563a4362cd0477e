-- The lookup tables of online matching and search are keyed by what is looked up (the blind
-- index first): a full unify run inserts rows in key order into the primary key, and builds
-- the index by profile (to replace a profile's rows) once after the load.
ALTER TABLE identities DROP CONSTRAINT identities_pkey;
DROP INDEX IF EXISTS identities_lookup;
ALTER TABLE identities ADD PRIMARY KEY (value_hash, customer_id, kind);
CREATE INDEX identities_customer ON identities (customer_id);

ALTER TABLE name_index DROP CONSTRAINT name_index_pkey;
DROP INDEX IF EXISTS name_index_lookup;
ALTER TABLE name_index ADD PRIMARY KEY (token_hash, customer_id);
CREATE INDEX name_index_customer ON name_index (customer_id);
