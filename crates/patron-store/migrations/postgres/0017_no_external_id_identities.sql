-- Full unify runs wrote one identity row per record for its blind-indexed `source:source_id`
-- ("external"), but nothing ever looked one up: a record is found by its source and id, and
-- online placement never wrote them. They were half of the identity graph's rows and of the
-- time spent writing and indexing it.
DELETE FROM identities WHERE kind = 'external';
