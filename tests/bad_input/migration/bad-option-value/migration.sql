-- lockimpact: step "add" lock_timeout=soon
ALTER TABLE orders ADD COLUMN note text;
