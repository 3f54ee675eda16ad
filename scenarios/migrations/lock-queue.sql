-- A fast ALTER TABLE with no lock timeout: it needs an AccessExclusiveLock,
-- queues behind the long report's AccessShareLock, and every query on orders
-- queues behind it.
ALTER TABLE orders ADD COLUMN note text;
