-- A record's raw input row is kept only while the record has quarantined fields (it is what
-- a user fixes and re-submits); every other personal value is already stored field by field,
-- and a second copy of it would only be more personal data to protect and erase.
-- SQLite cannot drop a NOT NULL constraint in place, so the table is rebuilt.
CREATE TABLE source_records_new (
    record_id          INTEGER PRIMARY KEY,
    source             TEXT NOT NULL,
    source_id          TEXT NOT NULL,
    customer_id        INTEGER,
    name_enc           BLOB,
    email_enc          BLOB,
    phone_enc          BLOB,
    birth_date_enc     BLOB,
    address_enc        BLOB,
    gender             TEXT,
    city               TEXT,
    country            TEXT,
    email_hash         BLOB,
    phone_hash         BLOB,
    name_tokens        BLOB,
    raw_enc            BLOB,
    source_created_at  INTEGER,
    received_at        INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (source, source_id)
);
INSERT INTO source_records_new SELECT * FROM source_records;
DROP TABLE source_records;
ALTER TABLE source_records_new RENAME TO source_records;
CREATE INDEX source_records_customer ON source_records (customer_id);
UPDATE source_records SET raw_enc = NULL
WHERE NOT EXISTS (
    SELECT 1 FROM quarantine q
    WHERE q.kind = 'customers' AND q.whole_row = 0
      AND q.source = source_records.source AND q.source_id = source_records.source_id
);
