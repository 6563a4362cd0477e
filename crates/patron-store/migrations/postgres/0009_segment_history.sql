-- When each customer entered or left each segment, so a team can see who moved and when.
CREATE TABLE segment_history (
    segment_id   BIGINT NOT NULL,
    customer_id  BIGINT NOT NULL,
    change       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX segment_history_segment ON segment_history (segment_id, at);
