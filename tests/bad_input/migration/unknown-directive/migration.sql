ALTER TABLE orders ADD COLUMN note text;
-- lockimpact: stpe "x"
ALTER TABLE orders ADD COLUMN note text;
