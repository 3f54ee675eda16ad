//! SQL over the system catalogs that more than one part of the tool reads
//! with (the sampler, the migration runner): how a `pg_locks` row's relation
//! is named for a user.

/// The name of the relation `l.relation` of a `pg_locks` row, as a user
/// knows it: a toast table and its index fold under their table (`orders`);
/// the transient heap a rewrite (ALTER TABLE … TYPE, VACUUM FULL, CLUSTER)
/// builds and drops inside the transaction, with its toast table and index,
/// is named after the table whose data it now is: `orders (transient heap)`
/// (its oid became the table's relfilenode; its toast table and index took
/// the next few oids); anything else dropped is `dropped relation OID`.
pub const RELATION_NAME_SQL: &str = "coalesce(\
    (SELECT coalesce((SELECT o.oid::regclass::text FROM pg_class o \
       WHERE c.relnamespace = 'pg_toast'::regnamespace \
         AND o.reltoastrelid IN (c.oid, (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.oid)) LIMIT 1), \
       c.oid::regclass::text) FROM pg_class c WHERE c.oid = l.relation), \
    (SELECT coalesce((SELECT o.oid::regclass::text FROM pg_class o WHERE h.relkind = 't' AND o.reltoastrelid = h.oid \
       LIMIT 1), h.oid::regclass::text) || ' (transient heap)' \
     FROM pg_class h WHERE h.relkind IN ('r', 'm', 't') AND h.relfilenode::bigint >= 16384 \
       AND l.relation::bigint BETWEEN h.relfilenode::bigint AND h.relfilenode::bigint + 7 \
       AND NOT EXISTS (SELECT 1 FROM pg_class x WHERE x.oid = h.relfilenode) \
     ORDER BY h.relfilenode::bigint DESC LIMIT 1), \
    'dropped relation ' || l.relation)";
