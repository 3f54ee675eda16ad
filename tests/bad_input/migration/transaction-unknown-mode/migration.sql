-- lockimpact: transaction always
ALTER TABLE orders ADD COLUMN note text;
