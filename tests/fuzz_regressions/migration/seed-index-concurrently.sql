-- CREATE INDEX CONCURRENTLY: takes only a ShareUpdateExclusiveLock, which
-- reads and writes do not conflict with. It cannot run in a transaction.
-- lockimpact: transaction none
CREATE INDEX CONCURRENTLY orders_country_created_idx ON orders (shipping_country, created_at);
