-- Tracking identities: events of an anonymous visitor are attributed through a later message
-- that carries both their anonymousId and a userId, and an alias links a previousId to its
-- userId; both look events up by these columns.
CREATE INDEX events_anonymous ON events (source, anonymous_id);
CREATE INDEX events_user ON events (source, user_id);
