-- Records no profile holds yet are found through the narrow table's index too: every stored
-- record gets a `record_profiles` row as it is inserted (by trigger), with no profile until
-- unify places it. Without it "which records are unplaced", asked on every tracking call
-- that names a customer, scanned every wide record row through the view's outer join.
ALTER TABLE record_profiles ALTER COLUMN customer_id DROP NOT NULL;
INSERT INTO record_profiles (record_id, customer_id)
    SELECT d.record_id, NULL FROM source_record_data d
    WHERE NOT EXISTS (SELECT 1 FROM record_profiles p WHERE p.record_id = d.record_id);
CREATE FUNCTION record_unplaced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_profiles (record_id, customer_id) VALUES (NEW.record_id, NULL)
    ON CONFLICT (record_id) DO UPDATE SET customer_id = NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER source_record_data_unplaced AFTER INSERT ON source_record_data
    FOR EACH ROW EXECUTE FUNCTION record_unplaced();
