ALTER TABLE orders ADD COLUMN note text;
-- lockimpact: backfill "fill"
