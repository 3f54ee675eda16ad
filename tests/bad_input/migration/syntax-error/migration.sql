ALTER TABLE orders ADD COLUMN note text;

ALTER TABEL orders ADD COLUMN b int;
