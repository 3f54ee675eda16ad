-- A plain CREATE INDEX: holds a ShareLock on orders for the whole build, so
-- every INSERT and UPDATE waits until it is done.
CREATE INDEX orders_country_created_idx ON orders (shipping_country, created_at);
