-- lockimpact: step "nothing"
-- lockimpact: end
ALTER TABLE orders ADD COLUMN note text;
