-- A tiny dataset for the bad-input cases that get as far as a server.
CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL);
INSERT INTO orders SELECT g, 'new' FROM generate_series(1, {{rows}}) AS g;
