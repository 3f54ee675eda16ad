-- The same change as billing-country-oneshot.sql, done the safe way: each step
-- in its own short transaction, a lock timeout with retries on the one step
-- that needs an AccessExclusiveLock, a batched backfill, and NOT NULL proven
-- by a validated CHECK so SET NOT NULL needs no full scan under the lock.
-- After the backfill, a VACUUM of its own: the backfill left a dead row for
-- every row it filled, so autovacuum comes for the table, and a lock request
-- with a lock_timeout shorter than deadlock_timeout (1 s) never gets the
-- server to cancel it: at 5M rows the next step retried for 8.7-30.8 s
-- behind it, stalling the queue at every attempt (docs/performance.md).
-- Each `down` section is its step's reverse (`--rollback`, `--fail-at`); the
-- backfill and the VALIDATE need none: the first step's reverse drops the
-- column they fill and check.
-- lockimpact: transaction step

-- lockimpact: step "add nullable column + fill trigger" lock_timeout=500ms retries=10 retry_backoff=200ms
ALTER TABLE orders ADD COLUMN billing_country text;
-- Stands in for the application deploy that writes billing_country on new rows.
CREATE FUNCTION orders_fill_billing_country() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.billing_country := coalesce(NEW.billing_country, NEW.shipping_country);
  RETURN NEW;
END
$$;
CREATE TRIGGER orders_fill_billing_country BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_fill_billing_country();
CREATE SEQUENCE orders_backfill_batch;
-- lockimpact: down
DROP TRIGGER IF EXISTS orders_fill_billing_country ON orders;
DROP FUNCTION IF EXISTS orders_fill_billing_country();
DROP SEQUENCE IF EXISTS orders_backfill_batch;
ALTER TABLE orders DROP COLUMN IF EXISTS billing_country;
-- lockimpact: end

-- Batch k fills ids ((k-1)*20000, k*20000]; it stops at the first empty batch.
-- lockimpact: backfill "backfill by id, 20000 rows a batch" pause=50ms
WITH batch AS (SELECT nextval('orders_backfill_batch') AS k)
UPDATE orders SET billing_country = shipping_country
FROM batch
WHERE orders.id > (batch.k - 1) * 20000 AND orders.id <= batch.k * 20000;

-- Outside a transaction block, no lock_timeout: it waits for a running
-- autovacuum without blocking reads or writes, the server cancels that one
-- for it after deadlock_timeout, and it leaves autovacuum nothing to do.
-- lockimpact: step "VACUUM (ANALYZE) after the backfill"
VACUUM (ANALYZE) orders;

-- lockimpact: step "add CHECK NOT VALID" lock_timeout=500ms retries=10 retry_backoff=200ms
ALTER TABLE orders ADD CONSTRAINT orders_billing_country_not_null
  CHECK (billing_country IS NOT NULL) NOT VALID;
-- lockimpact: down
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_billing_country_not_null;

-- lockimpact: step "validate CHECK"
ALTER TABLE orders VALIDATE CONSTRAINT orders_billing_country_not_null;

-- lockimpact: step "SET NOT NULL (proven by the CHECK)" lock_timeout=500ms retries=10 retry_backoff=200ms
ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL;
ALTER TABLE orders DROP CONSTRAINT orders_billing_country_not_null;
DROP SEQUENCE orders_backfill_batch;
-- lockimpact: down
ALTER TABLE orders ALTER COLUMN billing_country DROP NOT NULL;
CREATE SEQUENCE IF NOT EXISTS orders_backfill_batch;
