-- A loyalty or membership id's blind index: the same id in two sources is one person, and
-- the id itself is personal data that is never stored in clear.
ALTER TABLE source_records ADD COLUMN loyalty_hash BYTEA;
