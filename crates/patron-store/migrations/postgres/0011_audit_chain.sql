-- The audit log as a hash chain: each entry, once sealed, carries its place in the chain
-- (seq) and SHA-256 over the previous entry's hash and its own fields, so changing or
-- removing an entry is detectable (`patron audit verify`). origin says where the action came
-- from (a client address, or cli).
ALTER TABLE audit_log ADD COLUMN origin TEXT;
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN hash BYTEA;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

-- Append-only from the application's side: no deletes, and an entry's fields never change;
-- sealing sets seq and hash once.
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.seq IS NOT NULL
        OR NEW.at IS DISTINCT FROM OLD.at OR NEW.actor IS DISTINCT FROM OLD.actor
        OR NEW.action IS DISTINCT FROM OLD.action OR NEW.target IS DISTINCT FROM OLD.target
        OR NEW.detail IS DISTINCT FROM OLD.detail OR NEW.origin IS DISTINCT FROM OLD.origin
    THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
