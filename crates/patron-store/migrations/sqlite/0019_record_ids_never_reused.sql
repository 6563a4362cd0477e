-- Record ids are never handed out again. Without AUTOINCREMENT SQLite gives a new row the
-- largest id plus one, so after erasing the newest records the next import reused their ids;
-- a unify run that had read the erased records before would then take the new ones for them
-- (its write checks that every record it read still exists) and write the erased person's
-- values back. PostgreSQL's identity column never reuses ids.
DROP VIEW source_records;
DROP TRIGGER source_record_data_unplaced;
CREATE TABLE source_record_data_new (
    record_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source             TEXT NOT NULL,
    source_id          TEXT NOT NULL,
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
    loyalty_hash       BLOB,
    tags               TEXT,
    consent_email      INTEGER,
    consent_sms        INTEGER,
    consent_wechat     INTEGER,
    consent_at         INTEGER,
    UNIQUE (source, source_id)
);
INSERT INTO source_record_data_new (record_id, source, source_id, name_enc, email_enc,
    phone_enc, birth_date_enc, address_enc, gender, city, country, email_hash, phone_hash,
    name_tokens, raw_enc, source_created_at, received_at, updated_at, loyalty_hash, tags,
    consent_email, consent_sms, consent_wechat, consent_at)
SELECT record_id, source, source_id, name_enc, email_enc, phone_enc, birth_date_enc,
    address_enc, gender, city, country, email_hash, phone_hash, name_tokens, raw_enc,
    source_created_at, received_at, updated_at, loyalty_hash, tags, consent_email,
    consent_sms, consent_wechat, consent_at
FROM source_record_data ORDER BY record_id;
DROP TABLE source_record_data;
ALTER TABLE source_record_data_new RENAME TO source_record_data;
CREATE TRIGGER source_record_data_unplaced AFTER INSERT ON source_record_data
BEGIN
    INSERT OR REPLACE INTO record_profiles (record_id, customer_id) VALUES (NEW.record_id, NULL);
END;
CREATE VIEW source_records AS
SELECT d.record_id, d.source, d.source_id, p.customer_id, d.name_enc, d.email_enc, d.phone_enc,
       d.birth_date_enc, d.address_enc, d.gender, d.city, d.country, d.email_hash, d.phone_hash,
       d.name_tokens, d.raw_enc, d.source_created_at, d.received_at, d.updated_at,
       d.loyalty_hash, d.tags, d.consent_email, d.consent_sms, d.consent_wechat, d.consent_at
FROM source_record_data d LEFT JOIN record_profiles p ON p.record_id = d.record_id;
