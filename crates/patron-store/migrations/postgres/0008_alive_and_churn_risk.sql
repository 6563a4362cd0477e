-- BG/NBD forecasts: the probability a customer is still active and the churn-risk band
-- derived from it (NULL for the run-rate fallback, which cannot tell).
ALTER TABLE customer_predictions ADD COLUMN p_alive DOUBLE PRECISION;
ALTER TABLE customer_predictions ADD COLUMN churn_risk TEXT;
