-- lockimpact: step "add" retry_backoff=-1s
ALTER TABLE orders ADD COLUMN note text;
