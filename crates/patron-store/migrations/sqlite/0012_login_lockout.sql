-- Sign-in lockout counts a user's recent failed sign-ins in the audit log.
CREATE INDEX audit_log_actor ON audit_log (actor, action, at);
