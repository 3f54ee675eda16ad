-- lockimpact: step "note and index"
ALTER TABLE orders ADD COLUMN note text;
CREATE INDEX CONCURRENTLY orders_status ON orders (status);
-- lockimpact: end
