-- Re-importing records resolves their quarantine entries by looking them up by id in their
-- source; leading with source_id lets a batch's ids be looked up without knowing the source
-- column's NULL-or-empty spelling, and still serves lookups by (kind, source, source_id).
DROP INDEX quarantine_record;
CREATE INDEX quarantine_record ON quarantine (kind, source_id, source);
