-- The same ALTER with a short lock timeout: each attempt blocks the queue for
-- at most 200 ms, then gives up and retries after a backoff until it slips in
-- between two long reports.
-- lockimpact: step "add column note" lock_timeout=200ms retries=20 retry_backoff=300ms
ALTER TABLE orders ADD COLUMN note text;
