//! Who a disposable server belongs to: the lockimpact process that started
//! it, named by its pid, the pid's start time (a recycled pid is another
//! process) and the machine and pid namespace it runs in (a pid means nothing
//! elsewhere). It is recorded beside every resource a run creates — a
//! `lockimpact.pid` file in a local server's temp dir, labels on a container —
//! so that `lockimpact clean` can tell the leftovers of a killed run from the
//! resources of a live one, and leave the live ones alone.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The file in a local server's temp dir that names its owner.
pub const PID_FILE: &str = "lockimpact.pid";

/// The file in a local server's temp dir that says `--keep` kept it.
pub const KEPT_FILE: &str = "lockimpact.kept";

/// Container labels naming the owner (besides `lockimpact=1`).
pub const PID_LABEL: &str = "lockimpact.pid";
pub const STARTED_LABEL: &str = "lockimpact.started";
pub const HOST_LABEL: &str = "lockimpact.host";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// The process's start time, clock ticks after boot (`/proc/PID/stat` field 22).
    pub started: u64,
    /// Boot id and pid namespace: where `pid` means this process.
    pub host: String,
}

/// Whether the run that owns a resource still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Its process runs: the resource is in use.
    Alive,
    /// Its process is gone: the resource is a leftover.
    Gone,
    /// It belongs to another machine or pid namespace: nothing can be said.
    Elsewhere,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner { pid, started: start_time(pid).unwrap_or(0), host: host_id() }
    }

    pub fn liveness(&self) -> Liveness {
        // A start time of 0 was not readable (no /proc): nothing can be told.
        if self.started == 0 || self.host != host_id() {
            Liveness::Elsewhere
        } else if start_time(self.pid) == Some(self.started) {
            Liveness::Alive
        } else {
            Liveness::Gone
        }
    }

    /// The container labels that name this owner.
    pub fn labels(&self) -> [(&'static str, String); 3] {
        [(PID_LABEL, self.pid.to_string()), (STARTED_LABEL, self.started.to_string()), (HOST_LABEL, self.host.clone())]
    }

    /// The owner a container's labels name; `None` when they name none
    /// (a container of an older lockimpact, which `clean` leaves alone).
    pub fn from_labels(labels: &HashMap<String, String>) -> Option<Owner> {
        Some(Owner {
            pid: labels.get(PID_LABEL)?.parse().ok()?,
            started: labels.get(STARTED_LABEL)?.parse().ok()?,
            host: labels.get(HOST_LABEL)?.clone(),
        })
    }

    /// Writes `PID_FILE` into `dir`.
    pub fn write_to(&self, dir: &Path) -> Result<()> {
        let text = format!("{} {} {}\n", self.pid, self.started, self.host);
        std::fs::write(dir.join(PID_FILE), text)
            .map_err(|e| Error::env(format!("cannot write {}: {e}", dir.join(PID_FILE).display())))
    }

    /// The owner named by `dir`'s `PID_FILE`, if it has a readable one.
    pub fn read_from(dir: &Path) -> Option<Owner> {
        let text = std::fs::read_to_string(dir.join(PID_FILE)).ok()?;
        let mut f = text.split_whitespace();
        Some(Owner { pid: f.next()?.parse().ok()?, started: f.next()?.parse().ok()?, host: f.next()?.to_string() })
    }
}

/// The start time of process `pid` (clock ticks after boot), if it runs (a
/// zombie, killed and not yet reaped, does not).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// This machine's boot and this process's pid namespace.
fn host_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid").map(|p| p.display().to_string()).unwrap_or_default();
    let ns: String = ns.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{ns}", boot.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_recycled_pid_is_not() {
        let me = Owner::current();
        assert!(me.started > 0);
        assert_eq!(me.liveness(), Liveness::Alive);
        assert_eq!(Owner { started: me.started + 1, ..me.clone() }.liveness(), Liveness::Gone);
        assert_eq!(Owner { host: "elsewhere".into(), ..me.clone() }.liveness(), Liveness::Elsewhere);
        let labels: HashMap<String, String> = me.labels().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(Owner::from_labels(&labels), Some(me.clone()));
        let dir = tempfile::tempdir().unwrap();
        me.write_to(dir.path()).unwrap();
        assert_eq!(Owner::read_from(dir.path()), Some(me));
    }
}
