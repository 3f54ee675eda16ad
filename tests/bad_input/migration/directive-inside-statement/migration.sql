ALTER TABLE orders
-- lockimpact: step "x"
ADD COLUMN note text;
