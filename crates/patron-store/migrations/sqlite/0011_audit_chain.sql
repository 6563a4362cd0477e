-- The audit log as a hash chain: each entry, once sealed, carries its place in the chain
-- (seq) and SHA-256 over the previous entry's hash and its own fields, so changing or
-- removing an entry is detectable (`patron audit verify`). origin says where the action came
-- from (a client address, or cli).
ALTER TABLE audit_log ADD COLUMN origin TEXT;
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN hash BLOB;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- Append-only from the application's side: no deletes, and an entry's fields never change;
-- sealing sets seq and hash once.
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN OLD.seq IS NOT NULL
    OR NEW.at IS NOT OLD.at OR NEW.actor IS NOT OLD.actor OR NEW.action IS NOT OLD.action
    OR NEW.target IS NOT OLD.target OR NEW.detail IS NOT OLD.detail
    OR NEW.origin IS NOT OLD.origin
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
