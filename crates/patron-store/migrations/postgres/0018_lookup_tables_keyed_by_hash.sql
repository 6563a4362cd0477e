-- The lookup tables of online matching and search are keyed by what is looked up (the blind
-- index first): a full unify run inserts rows in key order into the one index, instead of
-- maintaining a primary key by profile and rebuilding a second index by hash. Writes scoped
-- to a few profiles delete by key too; only erasure scans for a profile's rows.
ALTER TABLE identities DROP CONSTRAINT identities_pkey;
DROP INDEX identities_lookup;
ALTER TABLE identities ADD PRIMARY KEY (value_hash, customer_id, kind);

ALTER TABLE name_index DROP CONSTRAINT name_index_pkey;
DROP INDEX name_index_lookup;
ALTER TABLE name_index ADD PRIMARY KEY (token_hash, customer_id);
