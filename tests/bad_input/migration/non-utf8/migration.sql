-- Ã( broken
ALTER TABLE orders ADD COLUMN note text;
