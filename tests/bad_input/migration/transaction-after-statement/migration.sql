ALTER TABLE orders ADD COLUMN note text;
-- lockimpact: transaction none
ALTER TABLE orders ADD COLUMN note text;
