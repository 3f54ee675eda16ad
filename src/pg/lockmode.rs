//! PostgreSQL's table-level lock modes, ordered by strength, named as
//! `pg_locks.mode` names them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LockMode::AccessShare => "AccessShareLock",
            LockMode::RowShare => "RowShareLock",
            LockMode::RowExclusive => "RowExclusiveLock",
            LockMode::ShareUpdateExclusive => "ShareUpdateExclusiveLock",
            LockMode::Share => "ShareLock",
            LockMode::ShareRowExclusive => "ShareRowExclusiveLock",
            LockMode::Exclusive => "ExclusiveLock",
            LockMode::AccessExclusive => "AccessExclusiveLock",
        }
    }

    pub fn parse(s: &str) -> Option<LockMode> {
        LockMode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Keeps the stronger of two mode names (unknown names lose to known ones).
pub fn stronger(a: &str, b: &str) -> String {
    match (LockMode::parse(a), LockMode::parse(b)) {
        (Some(x), Some(y)) => if x >= y { a } else { b }.to_string(),
        (None, Some(_)) => b.to_string(),
        _ => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names() {
        assert!(LockMode::AccessExclusive > LockMode::ShareUpdateExclusive);
        assert_eq!(LockMode::parse("ShareLock"), Some(LockMode::Share));
        assert_eq!(stronger("RowExclusiveLock", "AccessExclusiveLock"), "AccessExclusiveLock");
        assert_eq!(stronger("ShareLock", "AccessShareLock"), "ShareLock");
    }
}
