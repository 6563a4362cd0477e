-- Records no profile holds yet are found through the narrow table's index too: every stored
-- record gets a `record_profiles` row as it is inserted (by trigger), with no profile until
-- unify places it. Without it "which records are unplaced", asked on every tracking call
-- that names a customer, scanned every wide record row through the view's outer join.
DROP VIEW source_records;
CREATE TABLE record_profiles_new (
    record_id    INTEGER PRIMARY KEY,
    customer_id  INTEGER
);
INSERT INTO record_profiles_new (record_id, customer_id)
    SELECT record_id, customer_id FROM record_profiles;
INSERT INTO record_profiles_new (record_id, customer_id)
    SELECT d.record_id, NULL FROM source_record_data d
    WHERE NOT EXISTS (SELECT 1 FROM record_profiles p WHERE p.record_id = d.record_id);
DROP TABLE record_profiles;
ALTER TABLE record_profiles_new RENAME TO record_profiles;
CREATE INDEX record_profiles_customer ON record_profiles (customer_id);
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
