-- The valid migration the bad-input cases share.
ALTER TABLE orders ADD COLUMN note text;
