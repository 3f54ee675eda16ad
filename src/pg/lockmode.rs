//! PostgreSQL's table-level lock modes, ordered by strength, named as
//! `pg_locks.mode` names them, with the conflict table of the PostgreSQL
//! documentation ("Table-Level Lock Modes"); and the locks a session holds,
//! relation → strongest mode.

use std::collections::BTreeMap;
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

    /// Whether a lock in this mode conflicts with one in `other` held by
    /// another transaction (the table is symmetric).
    pub fn conflicts_with(self, other: LockMode) -> bool {
        use LockMode::*;
        let conflicts: &[LockMode] = match self {
            AccessShare => &[AccessExclusive],
            RowShare => &[Exclusive, AccessExclusive],
            RowExclusive => &[Share, ShareRowExclusive, Exclusive, AccessExclusive],
            ShareUpdateExclusive => &[ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive],
            Share => &[RowExclusive, ShareUpdateExclusive, ShareRowExclusive, Exclusive, AccessExclusive],
            ShareRowExclusive => {
                &[RowExclusive, ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive]
            }
            Exclusive => {
                &[RowShare, RowExclusive, ShareUpdateExclusive, Share, ShareRowExclusive, Exclusive, AccessExclusive]
            }
            AccessExclusive => &LockMode::ALL,
        };
        conflicts.contains(&other)
    }
}

impl serde::Serialize for LockMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for LockMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        LockMode::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown lock mode {name:?}; expected e.g. AccessExclusiveLock"))
        })
    }
}

/// Relation → the strongest mode a session was seen holding on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldLocks(BTreeMap<String, LockMode>);

impl HeldLocks {
    /// Records `mode` on `relation`, keeping the stronger of it and what was held.
    pub fn hold(&mut self, relation: &str, mode: LockMode) {
        match self.0.get_mut(relation) {
            Some(held) => *held = (*held).max(mode),
            None => {
                self.0.insert(relation.to_string(), mode);
            }
        }
    }

    /// Every lock of `other`, merged in.
    pub fn merge(&mut self, other: &HeldLocks) {
        for (relation, mode) in other.iter() {
            self.hold(relation, mode);
        }
    }

    /// Relation and mode, by relation name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, LockMode)> {
        self.0.iter().map(|(r, m)| (r.as_str(), *m))
    }

    pub fn get(&self, relation: &str) -> Option<LockMode> {
        self.0.get(relation).copied()
    }
}

impl FromIterator<(String, LockMode)> for HeldLocks {
    fn from_iter<I: IntoIterator<Item = (String, LockMode)>>(iter: I) -> Self {
        let mut held = HeldLocks::default();
        for (relation, mode) in iter {
            held.hold(&relation, mode);
        }
        held
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_names() {
        assert!(LockMode::AccessExclusive > LockMode::ShareUpdateExclusive);
        assert_eq!(LockMode::parse("ShareLock"), Some(LockMode::Share));
        assert_eq!(LockMode::parse("SIReadLock"), None);
    }

    #[test]
    fn conflicts_are_symmetric_and_as_documented() {
        for a in LockMode::ALL {
            for b in LockMode::ALL {
                assert_eq!(a.conflicts_with(b), b.conflicts_with(a), "{a} / {b}");
            }
        }
        // What a reader of a migration cares about: who still gets through.
        assert!(!LockMode::ShareUpdateExclusive.conflicts_with(LockMode::RowExclusive)); // CONCURRENTLY lets writes in
        assert!(LockMode::Share.conflicts_with(LockMode::RowExclusive)); // plain CREATE INDEX blocks writes
        assert!(!LockMode::Share.conflicts_with(LockMode::AccessShare)); // … but not reads
        assert!(LockMode::AccessExclusive.conflicts_with(LockMode::AccessShare)); // ALTER TABLE blocks reads
        assert!(!LockMode::ShareRowExclusive.conflicts_with(LockMode::RowShare)); // CREATE TRIGGER, SELECT FOR UPDATE
    }

    #[test]
    fn held_locks_keep_the_strongest_mode() {
        let mut held = HeldLocks::default();
        held.hold("orders", LockMode::RowExclusive);
        held.hold("orders", LockMode::AccessExclusive);
        held.hold("orders", LockMode::Share);
        held.hold("accounts", LockMode::AccessShare);
        let all: Vec<(&str, LockMode)> = held.iter().collect();
        assert_eq!(all, [("accounts", LockMode::AccessShare), ("orders", LockMode::AccessExclusive)]);
        assert_eq!(serde_json::to_string(&LockMode::ShareRowExclusive).unwrap(), "\"ShareRowExclusiveLock\"");
    }
}
