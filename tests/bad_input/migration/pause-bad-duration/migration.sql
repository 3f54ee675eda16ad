ALTER TABLE orders ADD COLUMN note text;
-- lockimpact: pause soon
ALTER TABLE orders ADD COLUMN note text;
