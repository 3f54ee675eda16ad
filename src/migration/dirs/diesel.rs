//! Diesel: `<version>_<name>/up.sql` and `down.sql` (its down part), in
//! version order; the version is the directory name before its first `_`
//! without dashes (`2024-01-31-101500_add_x` → `20240131101500`). Diesel
//! runs `up.sql` as one query string inside a transaction, or without one
//! when the directory's `metadata.toml` says `run_in_transaction = false`.
//! History: `__diesel_schema_migrations (version)`.

use std::path::Path;

use serde::Deserialize;

use super::{Ctx, Read, Sending, Unit};
use crate::error::{Error, Result};

pub const HISTORY_SQL: &str = "SELECT version::text FROM {table}";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Metadata {
    run_in_transaction: Option<bool>,
}

/// `2024-01-31-101500_add_x` → `20240131101500`.
pub fn version(dir_name: &str) -> String {
    dir_name.split('_').next().unwrap_or_default().replace('-', "")
}

pub fn read(dir: &Path, ctx: &Ctx) -> Result<Read> {
    let mut subs: Vec<(String, std::path::PathBuf)> = super::list(dir)?
        .into_iter()
        .filter(|p| p.join("up.sql").is_file())
        .map(|p| (version(&super::file_name(&p)), p))
        .collect();
    subs.sort_by(|a, b| super::version_cmp(&a.0, &b.0));
    let mut parts = Vec::new();
    for (v, sub) in &subs {
        let meta_path = sub.join("metadata.toml");
        let meta: Metadata = if meta_path.is_file() {
            let text = super::read_text(&meta_path)?;
            toml::from_str(&text).map_err(|e| {
                Error::input(format!("{}: {}", meta_path.display(), crate::files::text::toml_message(&e, &text)))
            })?
        } else {
            Metadata::default()
        };
        let (sending, hint) = if meta.run_in_transaction == Some(false) {
            (Sending::OneString, super::one_string_hint("Diesel"))
        } else {
            (
                Sending::InTransaction,
                super::in_transaction_hint("Diesel", "set run_in_transaction = false in its metadata.toml"),
            )
        };
        let path = sub.join("up.sql");
        let name = format!("{}/up.sql", super::file_name(sub));
        let unit = Unit { path: &path, name: &name, version: Some(v) };
        let mut groups = super::groups(ctx, unit, &super::read_text(&path)?, &[], sending, &hint)?;
        let down_path = sub.join("down.sql");
        if down_path.is_file() {
            let down = super::script(ctx, &super::read_text(&down_path)?, &[], &down_path, sending, &hint)?;
            groups.iter_mut().for_each(|(g, _)| g.down = down.clone());
        }
        parts.extend(groups);
    }
    Ok(Read::parts(parts))
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions() {
        assert_eq!(super::version("2024-01-31-101500_add_x"), "20240131101500");
        assert_eq!(super::version("00000000000000_diesel_initial_setup"), "00000000000000");
    }
}
