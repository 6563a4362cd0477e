-- What each source record says about the person's tags and marketing consent. Consent is
-- per channel: 1 granted, 0 withdrawn, NULL not stated; consent_at is when it was stated
-- (the import time when the source does not say). A profile's consent per channel is its
-- records' most recent statement, so it is read from here, never copied.
ALTER TABLE source_records ADD COLUMN tags TEXT;
ALTER TABLE source_records ADD COLUMN consent_email BIGINT;
ALTER TABLE source_records ADD COLUMN consent_sms BIGINT;
ALTER TABLE source_records ADD COLUMN consent_wechat BIGINT;
ALTER TABLE source_records ADD COLUMN consent_at BIGINT;
