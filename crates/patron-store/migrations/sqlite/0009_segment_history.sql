-- When each customer entered or left each segment, so a team can see who moved and when.
CREATE TABLE segment_history (
    segment_id   INTEGER NOT NULL,
    customer_id  INTEGER NOT NULL,
    change       TEXT NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX segment_history_segment ON segment_history (segment_id, at);
