-- Add billing_country, fill it from shipping_country and make it NOT NULL, all
-- in one transaction (as most migration frameworks run a file): the table is
-- locked AccessExclusive from the first statement until the commit, while the
-- UPDATE rewrites every row.

ALTER TABLE orders ADD COLUMN billing_country text;

-- Stands in for the application deploy that writes billing_country on new rows.
CREATE FUNCTION orders_fill_billing_country() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.billing_country := coalesce(NEW.billing_country, NEW.shipping_country);
  RETURN NEW;
END
$$;
CREATE TRIGGER orders_fill_billing_country BEFORE INSERT OR UPDATE ON orders
  FOR EACH ROW EXECUTE FUNCTION orders_fill_billing_country();

UPDATE orders SET billing_country = shipping_country;

ALTER TABLE orders ALTER COLUMN billing_country SET NOT NULL;
