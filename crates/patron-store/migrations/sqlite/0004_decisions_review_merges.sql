-- Identity resolution that people can correct and undo. Keep in step with
-- ../postgres/0004_decisions_review_merges.sql.

-- People's decisions about pairs of source records (record_a < record_b); every unify run
-- obeys them. A later decision about the same pair replaces the earlier one.
CREATE TABLE match_decisions (
    record_a  INTEGER NOT NULL,
    record_b  INTEGER NOT NULL,
    decision  TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (record_a, record_b)
);

-- Pairs the last unify run was unsure about (record_a < record_b), for people to decide.
CREATE TABLE review_queue (
    review_id   INTEGER PRIMARY KEY,
    record_a    INTEGER NOT NULL,
    record_b    INTEGER NOT NULL,
    weight      REAL NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (record_a, record_b)
);

-- Every time one profile's records moved into another (a unify run or a person's merge):
-- enough to undo it. `records` is a JSON array of the record ids that moved.
CREATE TABLE merges (
    merge_id   INTEGER PRIMARY KEY,
    survivor   INTEGER NOT NULL,
    merged     INTEGER NOT NULL,
    records    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    at         INTEGER NOT NULL,
    undone_at  INTEGER
);
CREATE INDEX merges_merged ON merges (merged);

-- A merged-away profile id and the profile that holds its records now, so references that
-- downstream systems keep still lead somewhere.
CREATE TABLE customer_aliases (
    alias_id     INTEGER PRIMARY KEY,
    customer_id  INTEGER NOT NULL
);
CREATE INDEX customer_aliases_target ON customer_aliases (customer_id);
