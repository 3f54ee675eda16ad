-- lockimpact: transaction none
ALTER TABLE orders ADD COLUMN note text;
