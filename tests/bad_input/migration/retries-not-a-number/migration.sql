-- lockimpact: step "add" retries=many
ALTER TABLE orders ADD COLUMN note text;
