//! PostgreSQL vocabulary shared by the tool, importing nothing of it:
//!
//! - `conninfo`: connection settings as libpq reads them (URL or
//!   `key=value` string, the service file, the `PG*` environment variables,
//!   the password file), redacted for display, handed to child processes
//!   through their environment;
//! - `tls`: `sslmode` and `sslrootcert` as rustls client configurations, and
//!   a connection (`Target`) that uses them;
//! - `lockmode`: table-level lock modes, ordered by strength;
//! - `catalog`: SQL naming the relation of a `pg_locks` row;
//! - `lex`: PostgreSQL's own scanner and its error messages;
//! - `lsn`: WAL positions read into byte positions;
//! - `log`: PostgreSQL's server log (`stderr` and `csvlog`) read into entries;
//! - `reach`: which SQL statements reach beyond their database (programs and
//!   files on the server's host, settings and objects of the whole server),
//!   read from the parse tree.

pub mod catalog;
pub mod conninfo;
pub mod lex;
pub mod lockmode;
pub mod log;
pub mod lsn;
pub mod reach;
pub mod tls;

pub use conninfo::ConnInfo;
pub use tls::{SslMode, Target, Tls};
