//! The PostgreSQL tier: modules whose tests start disposable servers
//! (through the binary or in-process). A few of their cases refuse bad input
//! before a server starts; they stay next to the runs they belong with.

mod backend;
mod bad_input_corpus;
mod bench;
mod cleanup;
mod compare;
mod fail_at;
mod failed_ops;
mod hints;
mod leftovers;
mod lifecycle;
mod locks_exact;
mod memory;
mod messages;
mod migration_dirs;
mod migration_sources;
mod outputs;
mod pgbench;
mod preflight;
mod record;
mod rehearsal;
mod reliability;
mod replay_pool;
mod replica;
mod replica_more;
mod restore;
mod sampler;
mod scales;
mod security;
mod snapshot;
mod synthetic;
mod url_backend;
mod verdict;
mod wire;
