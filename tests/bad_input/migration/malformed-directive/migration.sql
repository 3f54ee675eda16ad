-- lockimpact step "x"
ALTER TABLE orders ADD COLUMN note text;
