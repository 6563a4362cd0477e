-- Which source each golden field's value came from, as a JSON object (field -> source), so a
-- data team can see why a profile shows what it shows.
ALTER TABLE customers ADD COLUMN field_sources TEXT;
