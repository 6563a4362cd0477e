-- A record's raw input row is kept only while the record has quarantined fields (it is what
-- a user fixes and re-submits); every other personal value is already stored field by field,
-- and a second copy of it would only be more personal data to protect and erase.
ALTER TABLE source_records ALTER COLUMN raw_enc DROP NOT NULL;
UPDATE source_records r SET raw_enc = NULL
WHERE NOT EXISTS (
    SELECT 1 FROM quarantine q
    WHERE q.kind = 'customers' AND q.whole_row = 0
      AND q.source = r.source AND q.source_id = r.source_id
);
