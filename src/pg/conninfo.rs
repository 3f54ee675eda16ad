//! Connection settings as libpq reads them, so that `--url`, `--from` and
//! `clone.url` mean what they mean to psql: a URL (`postgresql://…`) or a
//! `key=value` string, completed in libpq's order by the service file
//! (`service`, `PGSERVICE`), the `PG*` environment variables, the defaults,
//! and the password file (`passfile`, `PGPASSFILE`, `~/.pgpass`).
//!
//! The password is kept apart from everything shown: `Display` and `Debug`
//! print the settings with the password as `****`, errors never quote a
//! value, and child programs get it through their environment
//! (`child_env`), never their arguments.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tls::{RootCert, SslMode, Target, Tls};

/// A connection string that cannot be used; the message never holds a value
/// of the string (it may be the password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnError(pub String);

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnError {}

fn err<T>(message: impl Into<String>) -> Result<T, ConnError> {
    Err(ConnError(message.into()))
}

/// Where a setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The URL or connection string itself.
    Given,
    /// A service of a service file.
    Service { name: String, file: PathBuf },
    /// An environment variable.
    Env(&'static str),
    /// A line of the password file (the password only).
    Passfile(PathBuf),
    /// libpq's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Given => f.write_str("the connection string"),
            Source::Service { name, file } => write!(f, "service {name:?} of {}", file.display()),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Passfile(p) => write!(f, "password file {}", p.display()),
            Source::Default => f.write_str("the default"),
        }
    }
}

/// What lockimpact does with a libpq keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Honoured.
    Used,
    /// Accepted and without effect here (GSSAPI, compression, SNI).
    Ignored,
    /// Refused with a message: lockimpact cannot do what it asks.
    Refused(&'static str),
}

struct Keyword {
    name: &'static str,
    env: Option<&'static str>,
    used: Use,
}

const fn kw(name: &'static str, env: Option<&'static str>, used: Use) -> Keyword {
    Keyword { name, env, used }
}

const NO_CLIENT_CERT: &str = "client certificates are not supported by lockimpact yet";

/// libpq's connection keywords (PostgreSQL 17) and their environment variables.
const KEYWORDS: &[Keyword] = &[
    kw("host", Some("PGHOST"), Use::Used),
    kw("hostaddr", Some("PGHOSTADDR"), Use::Used),
    kw("port", Some("PGPORT"), Use::Used),
    kw("dbname", Some("PGDATABASE"), Use::Used),
    kw("user", Some("PGUSER"), Use::Used),
    kw("password", Some("PGPASSWORD"), Use::Used),
    kw("passfile", Some("PGPASSFILE"), Use::Used),
    kw("service", None, Use::Used),
    kw("options", Some("PGOPTIONS"), Use::Used),
    kw("application_name", Some("PGAPPNAME"), Use::Used),
    kw("fallback_application_name", None, Use::Used),
    kw("connect_timeout", Some("PGCONNECT_TIMEOUT"), Use::Used),
    kw("client_encoding", Some("PGCLIENTENCODING"), Use::Used),
    kw("keepalives", None, Use::Used),
    kw("keepalives_idle", None, Use::Used),
    kw("keepalives_interval", None, Use::Used),
    kw("keepalives_count", None, Use::Used),
    kw("tcp_user_timeout", None, Use::Used),
    kw("target_session_attrs", Some("PGTARGETSESSIONATTRS"), Use::Used),
    kw("load_balance_hosts", Some("PGLOADBALANCEHOSTS"), Use::Used),
    kw("channel_binding", Some("PGCHANNELBINDING"), Use::Used),
    kw("sslmode", Some("PGSSLMODE"), Use::Used),
    kw("sslrootcert", Some("PGSSLROOTCERT"), Use::Used),
    kw("sslnegotiation", Some("PGSSLNEGOTIATION"), Use::Used),
    kw("sslcompression", Some("PGSSLCOMPRESSION"), Use::Ignored),
    kw("sslsni", Some("PGSSLSNI"), Use::Ignored),
    kw("gssencmode", Some("PGGSSENCMODE"), Use::Used),
    kw("krbsrvname", Some("PGKRBSRVNAME"), Use::Ignored),
    kw("gsslib", Some("PGGSSLIB"), Use::Ignored),
    kw("gssdelegation", Some("PGGSSDELEGATION"), Use::Ignored),
    kw("sslcertmode", Some("PGSSLCERTMODE"), Use::Used),
    kw("sslcert", Some("PGSSLCERT"), Use::Refused(NO_CLIENT_CERT)),
    kw("sslkey", Some("PGSSLKEY"), Use::Refused(NO_CLIENT_CERT)),
    kw("sslpassword", None, Use::Refused(NO_CLIENT_CERT)),
    kw("sslcrl", Some("PGSSLCRL"), Use::Refused("certificate revocation lists are not supported by lockimpact")),
    kw("sslcrldir", Some("PGSSLCRLDIR"), Use::Refused("certificate revocation lists are not supported by lockimpact")),
    kw(
        "ssl_min_protocol_version",
        Some("PGSSLMINPROTOCOLVERSION"),
        Use::Refused("lockimpact speaks TLS 1.2 and 1.3 and cannot narrow them"),
    ),
    kw(
        "ssl_max_protocol_version",
        Some("PGSSLMAXPROTOCOLVERSION"),
        Use::Refused("lockimpact speaks TLS 1.2 and 1.3 and cannot narrow them"),
    ),
    kw("requirepeer", Some("PGREQUIREPEER"), Use::Refused("lockimpact cannot check the server's OS user")),
    kw("require_auth", Some("PGREQUIREAUTH"), Use::Refused("lockimpact cannot restrict authentication methods")),
    kw("replication", None, Use::Refused("lockimpact opens normal sessions, not replication connections")),
];

fn keyword(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name == name)
}

/// libpq's default socket directory on Debian and Ubuntu (`/tmp` upstream).
const DEBIAN_SOCKET_DIR: &str = "/var/run/postgresql";
/// Where libpq looks for the system-wide service file (`PGSYSCONFDIR`) on Debian and Ubuntu.
const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// Resolved connection settings: every keyword with its value and where it came from.
#[derive(Clone)]
pub struct ConnInfo {
    values: BTreeMap<&'static str, (String, Source)>,
    /// The home directory, for `~/.postgresql/root.crt`.
    home: Option<PathBuf>,
}

impl ConnInfo {
    /// Reads `text` (a libpq URL or `key=value` string) and completes it as
    /// libpq would, from this process's environment and files.
    pub fn resolve(text: &str) -> Result<ConnInfo, ConnError> {
        ConnInfo::resolve_with(text, &|var| std::env::var(var).ok())
    }

    /// `resolve` with `env` in place of the process environment (`HOME` too).
    pub fn resolve_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ConnInfo, ConnError> {
        let mut values = BTreeMap::new();
        for (key, value) in parse(text)? {
            values.insert(key, (value, Source::Given));
        }
        let service = values.get("service").map(|v| v.0.clone()).or_else(|| env("PGSERVICE"));
        if let Some(name) = service.filter(|s| !s.is_empty()) {
            let (file, settings) = service_settings(&name, env)?;
            for (key, value) in settings {
                values.entry(key).or_insert((value, Source::Service { name: name.clone(), file: file.clone() }));
            }
        }
        for k in KEYWORDS {
            if let Some(var) = k.env
                && !values.contains_key(k.name)
                && let Some(v) = env(var).filter(|v| !v.is_empty())
            {
                values.insert(k.name, (v, Source::Env(var)));
            }
        }
        let mut info = ConnInfo { values, home: home(env) };
        info.check()?;
        info.add_defaults();
        if info.password().is_none()
            && let Some((password, file)) = info.passfile_password()?
        {
            info.values.insert("password", (password, Source::Passfile(file)));
        }
        Ok(info)
    }

    /// The value of a keyword, when set (defaults included).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| v.0.as_str())
    }

    /// Where a keyword's value came from.
    pub fn source(&self, key: &str) -> Option<&Source> {
        self.values.get(key).map(|v| &v.1)
    }

    pub fn dbname(&self) -> &str {
        self.get("dbname").unwrap_or_default()
    }

    pub fn user(&self) -> &str {
        self.get("user").unwrap_or_default()
    }

    /// The password, when one is set (empty counts as none, as in libpq).
    pub fn password(&self) -> Option<&str> {
        self.get("password").filter(|p| !p.is_empty())
    }

    /// The `sslmode`, libpq's default `prefer` when unset.
    pub fn ssl_mode(&self) -> SslMode {
        self.get("sslmode").and_then(SslMode::parse).unwrap_or(SslMode::Prefer)
    }

    /// Replaces the password wherever it appears in `text` (a child program's
    /// error output) with `****`.
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) => text.replace(p, "****"),
            None => text.to_string(),
        }
    }

    /// Refuses what lockimpact cannot honour and values it cannot read.
    fn check(&self) -> Result<(), ConnError> {
        for (name, (value, source)) in &self.values {
            let k = keyword(name).expect("only known keywords are stored");
            if let Use::Refused(why) = k.used {
                return err(format!("connection option {name} (from {source}): {why}; remove it"));
            }
            let allowed: &[&str] = match *name {
                "sslmode" => &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
                "gssencmode" => &["disable", "prefer", "allow"],
                "sslcertmode" => &["disable", "allow"],
                "client_encoding" => &["UTF8", "utf8", "UTF-8", "utf-8", "auto"],
                "target_session_attrs" => &["any", "read-write", "read-only"],
                "channel_binding" => &["disable", "prefer", "require"],
                "load_balance_hosts" => &["disable", "random"],
                "sslnegotiation" => &["postgres", "direct"],
                "keepalives" => &["0", "1"],
                _ => continue,
            };
            if !allowed.contains(&value.as_str()) {
                return err(format!(
                    "connection option {name} (from {source}) must be one of {} for lockimpact",
                    allowed.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// libpq's defaults: the local socket, port 5432, the OS user, a
    /// database named after the user.
    fn add_defaults(&mut self) {
        let has_hostaddr = self.values.contains_key("hostaddr");
        let mut default = |key: &'static str, value: String| {
            self.values.entry(key).or_insert((value, Source::Default));
        };
        if !has_hostaddr {
            let dir = if Path::new(DEBIAN_SOCKET_DIR).is_dir() { DEBIAN_SOCKET_DIR } else { "/tmp" };
            default("host", dir.to_string());
        }
        default("port", "5432".into());
        default("user", os_user());
        let user = self.user().to_string();
        self.values.entry("dbname").or_insert((user, Source::Default));
    }

    /// The password of the first line of the password file that matches a
    /// host, port, database and user, as libpq looks it up.
    fn passfile_password(&self) -> Result<Option<(String, PathBuf)>, ConnError> {
        let path = match (self.get("passfile"), &self.home) {
            (Some(p), _) => PathBuf::from(p),
            (None, Some(h)) => h.join(".pgpass"),
            (None, None) => return Ok(None),
        };
        let Ok(meta) = std::fs::metadata(&path) else { return Ok(None) };
        if !meta.is_file() {
            return Ok(None);
        }
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return err(format!(
                "password file {} has group or world access, and libpq ignores it then; make it private: chmod 0600 {}",
                path.display(),
                path.display()
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConnError(format!("cannot read the password file {}: {e}", path.display())))?;
        for (host, port) in self.host_ports() {
            let host =
                if host.is_empty() || host.starts_with('/') || host.starts_with('@') { "localhost" } else { &host };
            let wanted = [host, port.as_str(), self.dbname(), self.user()];
            if let Some(pw) = text.lines().find_map(|l| pgpass_match(l, &wanted)) {
                return Ok(Some((pw, path)));
            }
        }
        Ok(None)
    }

    /// Each host with its port (one port for all, or one per host).
    fn host_ports(&self) -> Vec<(String, String)> {
        let hosts: Vec<String> = match self.get("host") {
            Some(h) => h.split(',').map(str::to_string).collect(),
            None => vec![self.get("hostaddr").unwrap_or_default().to_string()],
        };
        let ports: Vec<&str> = self.get("port").unwrap_or("5432").split(',').collect();
        hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let p = ports.get(i).or(ports.first()).copied().filter(|p| !p.is_empty()).unwrap_or("5432");
                (h, p.to_string())
            })
            .collect()
    }

    /// The settings as tokio-postgres takes them; TLS comes from `tls`.
    pub fn config(&self) -> Result<tokio_postgres::Config, ConnError> {
        use tokio_postgres::config::{ChannelBinding, LoadBalanceHosts, SslNegotiation, TargetSessionAttrs};
        let mut c = tokio_postgres::Config::new();
        if let Some(hosts) = self.get("host") {
            for h in hosts.split(',') {
                c.host(h);
            }
        }
        if let Some(addrs) = self.get("hostaddr") {
            for a in addrs.split(',') {
                let ip = a.trim().parse().map_err(|_| ConnError(format!("hostaddr {a:?} is not an IP address")))?;
                c.hostaddr(ip);
            }
        }
        for p in self.get("port").unwrap_or("5432").split(',') {
            let p = if p.is_empty() { "5432" } else { p };
            c.port(p.trim().parse().map_err(|_| ConnError(format!("port {p:?} is not a port number")))?);
        }
        c.user(self.user()).dbname(self.dbname()).ssl_mode(self.ssl_mode().for_tokio_postgres());
        if let Some(p) = self.password() {
            c.password(p);
        }
        if let Some(o) = self.get("options") {
            c.options(o);
        }
        if let Some(a) = self.get("application_name").or(self.get("fallback_application_name")) {
            c.application_name(a);
        }
        if let Some(t) = self.seconds("connect_timeout")?.filter(|t| *t > 0) {
            c.connect_timeout(Duration::from_secs(t.max(2)));
        }
        c.keepalives(self.get("keepalives") != Some("0"));
        if let Some(t) = self.seconds("keepalives_idle")?.filter(|t| *t > 0) {
            c.keepalives_idle(Duration::from_secs(t));
        }
        if let Some(t) = self.seconds("keepalives_interval")?.filter(|t| *t > 0) {
            c.keepalives_interval(Duration::from_secs(t));
        }
        if let Some(n) = self.seconds("keepalives_count")?.filter(|t| *t > 0) {
            c.keepalives_retries(n as u32);
        }
        if let Some(ms) = self.seconds("tcp_user_timeout")?.filter(|t| *t > 0) {
            c.tcp_user_timeout(Duration::from_millis(ms));
        }
        c.target_session_attrs(match self.get("target_session_attrs") {
            Some("read-write") => TargetSessionAttrs::ReadWrite,
            Some("read-only") => TargetSessionAttrs::ReadOnly,
            _ => TargetSessionAttrs::Any,
        });
        c.channel_binding(match self.get("channel_binding") {
            Some("disable") => ChannelBinding::Disable,
            Some("require") => ChannelBinding::Require,
            _ => ChannelBinding::Prefer,
        });
        if self.get("load_balance_hosts") == Some("random") {
            c.load_balance_hosts(LoadBalanceHosts::Random);
        }
        if self.get("sslnegotiation") == Some("direct") {
            c.ssl_negotiation(SslNegotiation::Direct);
        }
        Ok(c)
    }

    /// A whole number of a keyword (seconds, or milliseconds for `tcp_user_timeout`).
    fn seconds(&self, key: &str) -> Result<Option<u64>, ConnError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) => Ok(Some(n.max(0) as u64)),
                Err(_) => err(format!("connection option {key} must be a whole number, not {v:?}")),
            },
        }
    }

    /// The TLS configuration `sslmode` and `sslrootcert` ask for.
    pub fn tls(&self) -> Result<Tls, ConnError> {
        let root = match self.get("sslrootcert") {
            Some("system") => RootCert::System,
            Some(path) => RootCert::File(PathBuf::from(path)),
            None => RootCert::Default(self.home.as_ref().map(|h| h.join(".postgresql/root.crt"))),
        };
        Tls::new(self.ssl_mode(), root)
    }

    /// What a connection needs: the settings and their TLS.
    pub fn target(&self) -> Result<Target, ConnError> {
        Ok(Target { config: self.config()?, tls: self.tls()? })
    }

    /// The environment of a libpq program (pg_dump, psql) that connects with
    /// these settings, the password included: `PGSERVICE` is cleared (the
    /// service was read here), every setting is given. Its command line then
    /// needs no connection argument at all.
    pub fn child_env(&self) -> Vec<(&'static str, Option<String>)> {
        let mut env: Vec<(&'static str, Option<String>)> = vec![("PGSERVICE", None), ("PGSERVICEFILE", None)];
        for k in KEYWORDS.iter().filter(|k| k.used != Use::Ignored) {
            if let Some(var) = k.env {
                env.push((var, self.get(k.name).map(str::to_string)));
            }
        }
        env
    }
}

impl fmt::Display for ConnInfo {
    /// The settings as a URL with the password masked: user, hosts and ports,
    /// database, then the other settings that were given (not defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = |s: &str| percent_encode(s);
        let pw = if self.password().is_some() { ":****" } else { "" };
        let hp = self.host_ports();
        let tcp = self.get("host").is_some() && hp.iter().all(|(h, _)| !h.starts_with('/') && !h.starts_with('@'));
        let mut query: Vec<String> = Vec::new();
        let netloc = if tcp {
            hp.iter()
                .map(|(h, p)| if h.contains(':') { format!("[{h}]:{p}") } else { format!("{}:{p}", enc(h)) })
                .collect::<Vec<_>>()
                .join(",")
        } else {
            for key in ["host", "port"] {
                if let Some(v) = self.get(key) {
                    query.push(format!("{key}={}", enc(v)));
                }
            }
            String::new()
        };
        for (key, (value, source)) in &self.values {
            let shown_elsewhere = ["host", "port", "user", "dbname", "password", "passfile", "service"].contains(key);
            if !shown_elsewhere && *source != Source::Default {
                query.push(format!("{key}={}", enc(value)));
            }
        }
        write!(f, "postgresql://{}{pw}@{netloc}/{}", enc(self.user()), enc(self.dbname()))?;
        if !query.is_empty() {
            write!(f, "?{}", query.join("&"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

/// `%XX` for every byte outside the URL's unreserved characters (and `/`, for socket paths).
fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits a libpq URL or `key=value` string into known keywords and values.
fn parse(text: &str) -> Result<Vec<(&'static str, String)>, ConnError> {
    let t = text.trim();
    let pairs = match t.strip_prefix("postgresql://").or_else(|| t.strip_prefix("postgres://")) {
        Some(rest) => parse_url(rest)?,
        None => parse_keywords(t)?,
    };
    pairs
        .into_iter()
        .map(|(k, v)| match keyword(&k) {
            Some(kw) => Ok((kw.name, v)),
            None if keyword(&k.to_ascii_lowercase()).is_some() => err(format!(
                "invalid connection option {k:?}: option names are lower case ({})",
                k.to_ascii_lowercase()
            )),
            None => err(format!("invalid connection option {k:?}")),
        })
        .collect()
}

/// `[user[:password]@][host][:port][,…][/dbname][?key=value&…]`, split as
/// libpq splits it: the credentials end at the first `@` before any `/`, so
/// a password may hold `?` or `:`; `%XX` is decoded everywhere.
fn parse_url(rest: &str) -> Result<Vec<(String, String)>, ConnError> {
    let mut out = Vec::new();
    let mut p = rest;
    if let Some(at) = p.find(['@', '/']).filter(|&i| p.as_bytes()[i] == b'@') {
        let (user, password) = match p[..at].split_once(':') {
            Some((u, pw)) => (u, Some(pw)),
            None => (&p[..at], None),
        };
        if !user.is_empty() {
            out.push(("user".into(), decode(user, "user name")?));
        }
        if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
            out.push(("password".into(), decode(pw, "password")?));
        }
        p = &p[at + 1..];
    }
    let end = p.find(['/', '?']).unwrap_or(p.len());
    let (mut hosts, mut ports) = (Vec::new(), Vec::new());
    for item in p[..end].split(',') {
        let (host, port) = match item.strip_prefix('[') {
            Some(v6) => {
                let (h, tail) = v6.split_once(']').ok_or_else(|| ConnError("the URL has a '[' without ']'".into()))?;
                match tail {
                    "" => (h, ""),
                    t => (h, t.strip_prefix(':').ok_or_else(|| ConnError("the URL has text after ']'".into()))?),
                }
            }
            None => item.split_once(':').unwrap_or((item, "")),
        };
        hosts.push(decode(host, "host")?);
        ports.push(decode(port, "port")?);
    }
    if hosts.iter().any(|h| !h.is_empty()) {
        out.push(("host".into(), hosts.join(",")));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.push(("port".into(), ports.join(",")));
    }
    let mut p = &p[end..];
    if let Some(path) = p.strip_prefix('/') {
        let q = path.find('?').unwrap_or(path.len());
        if q > 0 {
            out.push(("dbname".into(), decode(&path[..q], "database name")?));
        }
        p = &path[q..];
    }
    for kv in p.strip_prefix('?').unwrap_or_default().split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ConnError(format!("URL query parameter {:?} has no value (key=value)", kv)))?;
        let k = decode(k, "query parameter name")?;
        let v = decode(v, &format!("query parameter {k}"))?;
        match (k.as_str(), v.as_str()) {
            ("ssl", "true") => out.push(("sslmode".into(), "require".into())),
            _ => out.push((k, v)),
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes; `what` names the part in the error (never its value).
fn decode(s: &str, what: &str) -> Result<String, ConnError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| ConnError(format!("the {what} in the URL has an invalid %-escape")))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ConnError(format!("the {what} in the URL is not UTF-8 once %-decoded")))
}

/// `key = value …`; a value is a word or `'quoted'`, and `\` escapes the next
/// character in both.
fn parse_keywords(text: &str) -> Result<Vec<(String, String)>, ConnError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars>| {
        while c.peek().is_some_and(|c| c.is_whitespace()) {
            c.next();
        }
    };
    loop {
        skip_ws(&mut chars);
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace() && **c != '=') {
            key.push(c);
            chars.next();
        }
        skip_ws(&mut chars);
        if chars.next() != Some('=') {
            return err(format!("missing \"=\" after {key:?} in the connection string"));
        }
        skip_ws(&mut chars);
        let mut value = String::new();
        let quoted = chars.peek() == Some(&'\'');
        if quoted {
            chars.next();
        }
        loop {
            match chars.next() {
                None if quoted => return err(format!("the value of {key:?} has no closing quote")),
                None => break,
                Some('\\') => value.extend(chars.next()),
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some(c) => value.push(c),
            }
        }
        out.push((key, value));
    }
}

/// Keyword and value pairs, as a service file section lists them.
type Settings = Vec<(&'static str, String)>;

/// The settings of service `name`: from `PGSERVICEFILE` or `~/.pg_service.conf`,
/// else `PGSYSCONFDIR/pg_service.conf`.
fn service_settings(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(PathBuf, Settings), ConnError> {
    let user_file = env("PGSERVICEFILE").map(PathBuf::from).or_else(|| home(env).map(|h| h.join(".pg_service.conf")));
    let system = PathBuf::from(env("PGSYSCONFDIR").unwrap_or(DEFAULT_SYSCONFDIR.into())).join("pg_service.conf");
    let files: Vec<PathBuf> = user_file.into_iter().chain([system]).collect();
    for file in &files {
        if let Some(settings) = read_service(file, name)? {
            return Ok((file.clone(), settings));
        }
    }
    let looked: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    err(format!("definition of service {name:?} not found (looked in {})", looked.join(", ")))
}

/// The `key=value` lines of section `[name]`, or `None` when the file or the section is missing.
fn read_service(file: &Path, name: &str) -> Result<Option<Settings>, ConnError> {
    let Ok(text) = std::fs::read_to_string(file) else { return Ok(None) };
    let mut section: Option<Settings> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if section.is_some() {
                break;
            }
            if s.trim() == name {
                section = Some(Vec::new());
            }
            continue;
        }
        let Some(settings) = section.as_mut() else { continue };
        let at = format!("{}:{}", file.display(), i + 1);
        let (k, v) = line.split_once('=').ok_or_else(|| ConnError(format!("{at}: syntax error (key=value)")))?;
        match keyword(k.trim()) {
            Some(kw) if kw.name == "service" => return err(format!("{at}: a service cannot name another service")),
            Some(kw) => settings.push((kw.name, v.trim().to_string())),
            None => return err(format!("{at}: invalid connection option {:?}", k.trim())),
        }
    }
    Ok(section)
}

/// The password of a password-file line `host:port:database:user:password`
/// when its first four fields match `wanted` (`*` matches anything, `\`
/// escapes `:` and `\`).
fn pgpass_match(line: &str, wanted: &[&str; 4]) -> Option<String> {
    if line.starts_with('#') {
        return None;
    }
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().expect("a field").extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().expect("a field").push(c),
        }
    }
    if fields.len() != 5 {
        return None;
    }
    let matches = fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w);
    (matches && !fields[4].is_empty()).then(|| fields[4].clone())
}

/// `HOME`, else the home directory of the effective user.
fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).or_else(|| crate::sys::effective_user().map(|u| u.home))
}

/// The effective user's name, libpq's default user.
fn os_user() -> String {
    crate::sys::effective_user().map(|u| u.name).unwrap_or_else(|| "postgres".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str, vars: &[(&str, &str)]) -> Result<ConnInfo, ConnError> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ConnInfo::resolve_with(text, &move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn a_url_is_split_as_libpq_splits_it() {
        let c = resolve("postgresql://app:se?cr:et@db.example:6432/prod?sslmode=require", &[]).unwrap();
        assert_eq!(c.password(), Some("se?cr:et"));
        assert_eq!(
            (c.user(), c.dbname(), c.get("host"), c.get("port")),
            ("app", "prod", Some("db.example"), Some("6432"))
        );
        assert_eq!(c.to_string(), "postgresql://app:****@db.example:6432/prod?sslmode=require");
        let c = resolve("postgres://u:p%40ss@[::1]:5433,h2/d?application_name=x%20y", &[]).unwrap();
        assert_eq!((c.password(), c.get("host"), c.get("port")), (Some("p@ss"), Some("::1,h2"), Some("5433,")));
        assert_eq!(c.to_string(), "postgresql://u:****@[::1]:5433,h2:5432/d?application_name=x%20y");
        let c = resolve("postgresql://u@/d?host=/tmp/s&port=5999&password=x", &[]).unwrap();
        assert_eq!(c.to_string(), "postgresql://u:****@/d?host=/tmp/s&port=5999");
        assert!(resolve("postgresql://u@h/d?sslmode", &[]).unwrap_err().0.contains("has no value"));
        assert!(!resolve("postgresql://u:%zzsecret@h/d", &[]).unwrap_err().0.contains("secret"));
    }

    #[test]
    fn keyword_strings_keep_quotes_and_escapes_and_refuse_unknown_names() {
        let c = resolve(r"host=db password='it\'sSecr3t' dbname = prod user=app", &[]).unwrap();
        assert_eq!(c.password(), Some("it'sSecr3t"));
        assert_eq!(c.to_string(), "postgresql://app:****@db:5432/prod");
        let e = resolve("host=db PASSWORD=hunter22 dbname=prod", &[]).unwrap_err();
        assert!(e.0.contains("\"PASSWORD\"") && e.0.contains("lower case") && !e.0.contains("hunter22"), "{e}");
        let e = resolve("host=db password='unterminated dbname=prod", &[]).unwrap_err();
        assert!(e.0.contains("no closing quote") && !e.0.contains("unterminated"), "{e}");
        assert!(resolve("host=db sslcert=/x.crt", &[]).unwrap_err().0.contains("client certificates"));
        assert!(resolve("host=db sslmode=sometimes", &[]).unwrap_err().0.contains("verify-full"));
    }

    #[test]
    fn the_environment_fills_what_the_string_leaves_out() {
        let env = [("PGHOST", "envhost"), ("PGPORT", "7777"), ("PGUSER", "envuser"), ("PGPASSWORD", "envpw")];
        let c = resolve("dbname=d", &env).unwrap();
        assert_eq!(
            (c.get("host"), c.get("port"), c.user(), c.password()),
            (Some("envhost"), Some("7777"), "envuser", Some("envpw"))
        );
        assert_eq!(c.source("password"), Some(&Source::Env("PGPASSWORD")));
        let c = resolve("postgresql://given@h/d", &env).unwrap();
        assert_eq!((c.user(), c.get("host")), ("given", Some("h")));
        let c = resolve("", &[("PGUSER", "solo")]).unwrap();
        assert_eq!(c.dbname(), "solo");
        assert!(resolve("host=h", &[("PGSSLKEY", "/k")]).unwrap_err().0.contains("PGSSLKEY"));
    }

    #[test]
    fn services_and_password_files_are_read_like_libpq() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let services = dir.path().join("services.conf");
        std::fs::write(&services, "# c\n[other]\nhost=nope\n[clone]\nhost=svc.example\nport=6000\ndbname=svcdb\n")
            .unwrap();
        let pass = dir.path().join("pgpass");
        std::fs::write(&pass, "# comment\nsvc.example:6000:otherdb:*:wrong\nsvc.example:6000:svcdb:app:p\\:w\n")
            .unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (s, p) = (services.to_str().unwrap(), pass.to_str().unwrap());
        let c = resolve("service=clone user=app", &[("PGSERVICEFILE", s), ("PGPASSFILE", p)]).unwrap();
        assert_eq!((c.get("host"), c.dbname(), c.password()), (Some("svc.example"), "svcdb", Some("p:w")));
        assert!(matches!(c.source("password"), Some(Source::Passfile(_))));
        let c = resolve(
            "user=app",
            &[("PGSERVICE", "clone"), ("PGSERVICEFILE", s), ("HOME", dir.path().to_str().unwrap())],
        )
        .unwrap();
        assert_eq!(c.dbname(), "svcdb");
        assert!(resolve("service=missing", &[("PGSERVICEFILE", s)]).unwrap_err().0.contains("\"missing\" not found"));
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve("service=clone user=app", &[("PGSERVICEFILE", s), ("PGPASSFILE", p)]).unwrap_err();
        assert!(e.0.contains("chmod 0600"), "{e}");
    }

    #[test]
    fn children_get_every_setting_in_their_environment() {
        let c = resolve("postgresql://app:pw@h:1/d?sslmode=verify-full&sslrootcert=/ca.pem", &[]).unwrap();
        let env = c.child_env();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).and_then(|(_, v)| v.clone());
        assert_eq!(get("PGPASSWORD").as_deref(), Some("pw"));
        assert_eq!(get("PGSSLMODE").as_deref(), Some("verify-full"));
        assert_eq!(get("PGSSLROOTCERT").as_deref(), Some("/ca.pem"));
        assert_eq!(get("PGSERVICE"), None);
        assert_eq!(c.scrub("FATAL: password pw rejected"), "FATAL: password **** rejected");
    }
}
