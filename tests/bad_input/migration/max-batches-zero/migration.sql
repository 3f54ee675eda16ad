-- lockimpact: transaction step
-- lockimpact: backfill "fill" max_batches=0
UPDATE orders SET status = 'x' WHERE false;
