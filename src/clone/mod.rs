//! The disposable PostgreSQL a rehearsal runs on. A backend starts a server
//! and hands back a `Server` guard; dropping the guard stops the server and
//! removes everything it created (unless `--keep`). `template` builds the
//! dataset once and makes a fresh copy of it for each run.
//!
//! Backends plug in beside `local` by implementing `ServerHandle`.

pub mod local;
pub mod template;

use crate::error::{Error, Result};
use crate::scenario::{Backend, ClonePlan};

/// A running disposable server. Dropping it stops the server and removes its
/// files, unless `keep` was called.
pub trait ServerHandle: Send + Sync {
    /// Connection settings for one database on this server.
    fn config(&self, dbname: &str) -> tokio_postgres::Config;
    /// One line for the report: backend, version, where it runs.
    fn describe(&self) -> String;
    /// Leave the server running after the guard is dropped; returns how to
    /// connect and how to stop it.
    fn keep(&mut self, dbname: &str) -> String;
    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String;
}

pub type Server = Box<dyn ServerHandle>;

/// Starts a server with the backend the plan asks for, saying which and why.
pub fn start(plan: &ClonePlan, say: &dyn Fn(&str)) -> Result<Server> {
    let server = match plan.backend {
        Backend::Local => local::LocalServer::start(plan)?,
        Backend::Auto => {
            let server = local::LocalServer::start(plan).map_err(|e| {
                Error::env(format!(
                    "no backend can provide the clone: {e}\nInstall the PostgreSQL server binaries \
                     (Debian/Ubuntu: apt-get install postgresql) or point --pg-bin at their directory."
                ))
            })?;
            say("backend: local (auto: server binaries found on this machine)");
            server
        }
    };
    say(&format!("server: {}", server.location()));
    Ok(Box::new(server))
}
