-- lockimpact: step "add" statement_timeout=25h
ALTER TABLE orders ADD COLUMN note text;
