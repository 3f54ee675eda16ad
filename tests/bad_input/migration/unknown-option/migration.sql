-- lockimpact: step "add" lock_timout=1s
ALTER TABLE orders ADD COLUMN note text;
