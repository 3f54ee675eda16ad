//! The watchdog: notices a server that stopped answering without going away
//! — its postmaster stopped with SIGSTOP, its container paused, the machine
//! thrashing — where every query and every new connection would wait forever.
//! Every `PROBE_EVERY` it opens a new connection (which needs the postmaster)
//! and runs `SELECT 1`; when a probe has had no answer for
//! `UNRESPONSIVE_AFTER`, it fires, and the run ends with a report of what was
//! measured until then. A refused connection is not a frozen server: a server
//! that is gone is noticed by the sampler and the migration's connection.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::template::connect_with;
use crate::error::{Error, Result, describe_pg};
use crate::pg::Target;
use crate::run_record::{UNRESPONSIVE_AFTER, frozen};

/// Time between the starts of two probes.
const PROBE_EVERY: Duration = Duration::from_secs(1);

pub struct Watchdog {
    fired: CancellationToken,
    task: JoinHandle<()>,
}

impl Watchdog {
    /// Starts probing the server `target` reaches.
    pub fn start(target: Target) -> Watchdog {
        let fired = CancellationToken::new();
        let token = fired.clone();
        let task = tokio::spawn(async move {
            loop {
                let started = Instant::now();
                if tokio::time::timeout(UNRESPONSIVE_AFTER, probe(&target)).await.is_err() {
                    token.cancel();
                    return;
                }
                tokio::time::sleep(PROBE_EVERY.saturating_sub(started.elapsed())).await;
            }
        });
        Watchdog { fired, task }
    }

    /// Cancelled when the server stopped answering.
    pub fn fired(&self) -> CancellationToken {
        self.fired.clone()
    }

    /// Runs `work` unless the server stops answering first (an error then).
    pub async fn guard<T>(&self, work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        tokio::select! {
            r = work => r,
            _ = self.fired.cancelled() => Err(unresponsive()),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The error of work the watchdog ended.
pub fn unresponsive() -> Error {
    Error::db(format!("the server froze: {}", frozen()))
}

/// Opens a new connection and runs `SELECT 1` on it.
pub async fn probe(target: &Target) -> Result<()> {
    let client = connect_with(target.clone(), "watchdog").await?;
    client.simple_query("SELECT 1").await.map(|_| ()).map_err(|e| Error::db(describe_pg(&e)))
}

/// Whether the server answers a new connection within `limit`.
pub async fn answers(target: &Target, limit: Duration) -> bool {
    matches!(tokio::time::timeout(limit, probe(target)).await, Ok(Ok(())))
}
