-- lockimpact: transaction none
/* a block comment; with a semicolon */
CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $body$ SELECT 'it''s; fine' $body$;
-- lockimpact: pause 1s "deploy"
CREATE INDEX CONCURRENTLY i ON t (a);
DO $$ BEGIN RAISE NOTICE 'x;y'; END $$;
SELECT "quoted;ident", E'\n', U&'d\0061t\+000061' FROM t; -- trailing comment
