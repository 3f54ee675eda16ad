-- Widen a column of a hot table: a rewrite under AccessExclusiveLock that
-- every pgbench transaction queues behind. (Widening abalance instead also
-- breaks every prepared SELECT of it afterwards: "cached plan must not change
-- result type", SQLSTATE 0A000.)
ALTER TABLE pgbench_accounts ALTER COLUMN bid TYPE bigint;
