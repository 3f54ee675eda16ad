ALTER TABLE orders ADD COLUMN note text;
SELECT 'multi
line';
UPDATE orders SET status = 'x;
ALTER TABLE orders ADD COLUMN note text;
