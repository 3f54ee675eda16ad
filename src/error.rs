//! The error type at the library boundary, and the process's exit codes.
//! Every message says what went wrong and what to do about it, naming the
//! file, line or key involved; the kind decides the exit code.

use std::fmt;

/// How a command ended, as the process's exit status. The numbers are part of
/// the interface (scripts and CI read them): never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Done; every budget held.
    Ok = 0,
    /// A budget was exceeded.
    BudgetExceeded = 1,
    /// Bad input, a missing or broken environment, or a database that
    /// misbehaved: nothing (or only part of the run) was measured.
    Failed = 2,
    /// No budget was exceeded, but the run is no evidence (e.g. the workload
    /// did not run during the migration).
    Inconclusive = 3,
    /// Ctrl-C, SIGTERM or SIGHUP (128 + SIGINT, as shells report it).
    Interrupted = 130,
}

impl ExitCode {
    /// The number the process exits with (as `std::process::ExitStatus::code` reads it).
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(c: ExitCode) -> Self {
        std::process::ExitCode::from(c as u8) // every code is below 256
    }
}

/// Why a command failed; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A scenario, workload or migration file (or a flag) is wrong.
    Input,
    /// The machine lacks something (server binaries, a free port, permissions).
    Environment,
    /// The disposable server misbehaved during the rehearsal.
    Database,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error { kind: Kind::Input, message: message.into() }
    }
    pub fn env(message: impl Into<String>) -> Self {
        Error { kind: Kind::Environment, message: message.into() }
    }
    pub fn db(message: impl Into<String>) -> Self {
        Error { kind: Kind::Database, message: message.into() }
    }
    pub fn interrupted() -> Self {
        Error {
            kind: Kind::Interrupted,
            message: "interrupted; the disposable server was stopped and its files removed".into(),
        }
    }
    /// Prefixes the message with where it happened.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    /// Appends supporting detail (such as the server log tail) after the message.
    pub fn detail(mut self, detail: impl fmt::Display) -> Self {
        self.message = format!("{}\n{detail}", self.message);
        self
    }
    pub fn exit_code(&self) -> ExitCode {
        match self.kind {
            Kind::Input | Kind::Environment | Kind::Database => ExitCode::Failed,
            Kind::Interrupted => ExitCode::Interrupted,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Formats a PostgreSQL error with its SQLSTATE, message, detail and hint;
/// a client-side error with its causes (tokio-postgres's own text omits them:
/// "error performing TLS handshake" alone does not say which certificate
/// check failed).
pub fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(&format!(": {c}"));
                cause = c.source();
            }
            s
        }
    }
}

/// The SQLSTATE of a PostgreSQL error, or a client-side code when the error did
/// not come from the server (`08006` connection failure, `XXCLI` otherwise).
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    match e.code() {
        Some(c) => c.code().to_string(),
        None if e.is_closed() => "08006".to_string(),
        None => "XXCLI".to_string(),
    }
}
