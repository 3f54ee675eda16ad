//! Prisma Migrate: `<timestamp>_<name>/migration.sql` under the
//! `migrations` directory (next to `migration_lock.toml`), in name order.
//! Prisma sends a migration as one query string without a transaction of its
//! own (PostgreSQL runs several statements of one string as one transaction;
//! a file's own BEGIN … COMMIT blocks are kept). No down part. History:
//! `_prisma_migrations`: finished and not rolled back, by `migration_name`.

use std::path::Path;

use super::{Ctx, Read, Sending, Unit};
use crate::error::Result;

pub const HISTORY_SQL: &str =
    "SELECT migration_name FROM {table} WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL";

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let hint = super::one_string_hint("Prisma");
    let mut parts = Vec::new();
    for sub in super::list(dir)?.into_iter().filter(|p| p.is_dir()) {
        let path = sub.join("migration.sql");
        if !path.is_file() {
            continue;
        }
        let text = super::read_text(&path)?;
        let migration = super::file_name(&sub);
        let name = format!("{migration}/migration.sql");
        let unit = Unit { path: &path, name: &name, version: Some(&migration) };
        parts.extend(super::groups(ctx, unit, &text, &[], Sending::OneString, &hint)?);
    }
    Ok(Read::parts(parts))
}
