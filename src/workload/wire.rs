//! The workload's own connection: PostgreSQL's extended query protocol on a
//! blocking socket, one per worker thread, as `pgbench -j N` gives each
//! connection a thread of its own. Messages are encoded and parsed by
//! `postgres-protocol` (tokio-postgres's own wire crate); the rest of
//! lockimpact talks to PostgreSQL through tokio-postgres.
//!
//! Why not tokio-postgres here: on the hot path it costs a request channel, a
//! response channel, two task wake-ups and an `epoll_wait` per operation, and
//! the profile of the closed-loop bench put the replayer's client CPU at
//! 1.4–1.7 times pgbench's. Here an operation is one `send` (Bind, Execute,
//! Sync written into a reused buffer) and a blocking `recv` until
//! ReadyForQuery; nothing is allocated per operation.
//!
//! Parameters go as text, like pgbench's: the server's input function of the
//! parameter's type parses them, so every type works. Results are asked for
//! as text too and not read. Authentication: trust, password, md5 and
//! SCRAM-SHA-256 (without channel binding). TLS as the target's `sslmode`
//! asks (`pg::Tls`: the same rustls configuration as tokio-postgres's
//! connections, here on the blocking socket). Of the connection settings it
//! honours host(s), hostaddr(s), port(s), user, password, dbname, options,
//! application_name and connect_timeout; with several hosts it uses the first
//! that accepts the connection.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{ErrorResponseBody, Message};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use tokio_postgres::config::{ChannelBinding as Binding, Host};

use super::params::Value;
use crate::pg::{Target, Tls};

/// How long connecting and logging in may take when the configuration sets no
/// `connect_timeout`.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong: the server's error, or the connection's.
#[derive(Debug, Clone)]
pub struct DbError {
    /// The SQLSTATE; `08006` when the connection failed or was closed, as
    /// `crate::error::sqlstate` says for tokio-postgres.
    pub code: String,
    /// Message, detail and hint, as `crate::error::describe_pg` writes them.
    pub message: String,
    /// The connection is gone; nothing more can run on it.
    pub closed: bool,
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DbError {}

impl DbError {
    fn lost(what: impl std::fmt::Display) -> DbError {
        DbError { code: "08006".into(), message: what.to_string(), closed: true }
    }

    /// A message that could not be encoded; the connection is unharmed.
    fn client(what: impl std::fmt::Display) -> DbError {
        DbError { code: "XXCLI".into(), message: what.to_string(), closed: false }
    }

    fn from_body(body: &ErrorResponseBody) -> DbError {
        let (mut code, mut message, mut detail, mut hint) = (String::new(), String::new(), None, None);
        let mut fatal = false;
        let mut fields = body.fields();
        while let Ok(Some(f)) = fields.next() {
            let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
            match f.type_() {
                b'V' => fatal = v == "FATAL" || v == "PANIC",
                b'C' => code = v,
                b'M' => message = v,
                b'D' => detail = Some(v),
                b'H' => hint = Some(v),
                _ => {}
            }
        }
        let mut s = format!("{message} (SQLSTATE {code})");
        if let Some(d) = detail {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = hint {
            s.push_str(&format!("; hint: {h}"));
        }
        // FATAL ends the session (pg_terminate_backend, idle timeouts): the server closes the connection.
        DbError { code, message: s, closed: fatal }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket itself (under TLS too), for ending the connection from another thread.
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Tls(s) => Stream::Tcp(s.sock.try_clone()?),
        })
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Tls(s) => s.sock.shutdown(Shutdown::Both),
        };
    }

    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(d),
            Stream::Tcp(s) => s.set_read_timeout(d),
            Stream::Tls(s) => s.sock.set_read_timeout(d),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
            Stream::Tls(s) => s.write_all(buf).and_then(|_| s.flush()),
        }
    }
}

/// Ends a connection from another thread: a worker blocked in `recv` (on a
/// lock, say) returns at once with a closed connection.
pub struct Killer(Stream);

impl Killer {
    pub fn kill(&self) {
        self.0.shutdown();
    }
}

/// One logged-in connection.
pub struct Conn {
    stream: Stream,
    wbuf: BytesMut,
    rbuf: BytesMut,
    chunk: Box<[u8]>,
    pid: i32,
    /// The key that cancels this session's statement (`BackendKeyData`).
    secret: i32,
    closed: bool,
}

impl Conn {
    /// Connects without TLS to the first host of `config` that answers and logs in.
    pub fn connect(config: &tokio_postgres::Config) -> Result<Conn, DbError> {
        Conn::open(&Target::plain(config.clone()))
    }

    /// Connects to the first host of the target that answers, with the TLS
    /// its `sslmode` asks for, and logs in.
    pub fn open(target: &Target) -> Result<Conn, DbError> {
        let config = &target.config;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require && target.tls.client_config().is_none() {
            return Err(DbError::lost("sslmode=require, and the connection has no TLS configuration"));
        }
        if config.get_channel_binding() == Binding::Require {
            return Err(DbError::lost("channel_binding=require: workload connections do not bind SCRAM to TLS"));
        }
        let user = config.get_user().ok_or_else(|| DbError::lost("no user in the connection settings"))?;
        let timeout = config.get_connect_timeout().copied().unwrap_or(LOGIN_TIMEOUT);
        let (hosts, addrs) = (config.get_hosts(), config.get_hostaddrs());
        if hosts.is_empty() && addrs.is_empty() {
            return Err(DbError::lost("no host in the connection settings"));
        }
        let mut last = None;
        for i in 0..hosts.len().max(addrs.len()) {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            let host = hosts.get(i).cloned().unwrap_or_else(|| Host::Tcp(addrs[i].to_string()));
            let opened = open(&host, addrs.get(i).copied(), port, timeout)
                .and_then(|s| s.set_read_timeout(Some(timeout)).map(|_| s).map_err(DbError::lost))
                .and_then(|s| start_tls(s, &host, &target.tls));
            match opened {
                Ok(stream) => {
                    let mut conn = Conn {
                        stream,
                        wbuf: BytesMut::with_capacity(1024),
                        rbuf: BytesMut::with_capacity(16 * 1024),
                        chunk: vec![0; 16 * 1024].into_boxed_slice(),
                        pid: 0,
                        secret: 0,
                        closed: false,
                    };
                    conn.login(config, user)?;
                    conn.stream.set_read_timeout(None).map_err(DbError::lost)?;
                    return Ok(conn);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one host"))
    }

    /// The server process of this connection (`pg_backend_pid()`).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The secret key a CancelRequest for this session needs.
    pub fn secret_key(&self) -> i32 {
        self.secret
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn killer(&self) -> Result<Killer, DbError> {
        self.stream.try_clone().map(Killer).map_err(DbError::lost)
    }

    /// Prepares `sql` as statement `name`.
    pub fn prepare(&mut self, name: &str, sql: &str) -> Result<(), DbError> {
        self.wbuf.clear();
        frontend::parse(name, sql, None, &mut self.wbuf).map_err(DbError::client)?;
        frontend::sync(&mut self.wbuf);
        self.send()?;
        self.until_ready(true)
    }

    /// Runs prepared statement `name` with `params` (sent as text); its rows
    /// are read and dropped.
    pub fn execute(&mut self, name: &str, params: &[Value]) -> Result<(), DbError> {
        self.wbuf.clear();
        let bound = frontend::bind("", name, Some(0), params, write_text, None, &mut self.wbuf);
        if bound.is_err() {
            return Err(DbError::client("a parameter is too long for the protocol"));
        }
        frontend::execute("", 0, &mut self.wbuf).map_err(DbError::client)?;
        frontend::sync(&mut self.wbuf);
        self.send()?;
        self.until_ready(true)
    }

    /// Runs `sql` with the simple query protocol (BEGIN, COMMIT, ROLLBACK).
    pub fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        self.wbuf.clear();
        frontend::query(sql, &mut self.wbuf).map_err(DbError::client)?;
        self.send()?;
        self.until_ready(false)
    }

    fn login(&mut self, config: &tokio_postgres::Config, user: &str) -> Result<(), DbError> {
        let mut params = vec![("user", user), ("client_encoding", "UTF8")];
        params.push(("database", config.get_dbname().unwrap_or(user)));
        if let Some(a) = config.get_application_name() {
            params.push(("application_name", a));
        }
        if let Some(o) = config.get_options() {
            params.push(("options", o));
        }
        self.wbuf.clear();
        frontend::startup_message(params, &mut self.wbuf).map_err(DbError::lost)?;
        self.send()?;
        let password =
            || config.get_password().ok_or_else(|| DbError::lost("the server asks for a password; none is set"));
        let mut scram: Option<ScramSha256> = None;
        loop {
            self.wbuf.clear();
            match self.next()? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?, &mut self.wbuf).map_err(DbError::lost)?;
                    self.send()?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(user.as_bytes(), password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.wbuf).map_err(DbError::lost)?;
                    self.send()?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut offered = false;
                    let mut mechanisms = body.mechanisms();
                    while let Some(m) = mechanisms.next().map_err(DbError::lost)? {
                        offered |= m == SCRAM_SHA_256;
                    }
                    if !offered {
                        return Err(DbError::lost("the server offers no SASL mechanism but SCRAM-SHA-256 plus"));
                    }
                    let s = ScramSha256::new(password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut self.wbuf)
                        .map_err(DbError::lost)?;
                    scram = Some(s);
                    self.send()?;
                }
                Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| DbError::lost("unexpected SASL message"))?;
                    s.update(body.data()).map_err(|e| DbError::lost(format!("SCRAM: {e}")))?;
                    frontend::sasl_response(s.message(), &mut self.wbuf).map_err(DbError::lost)?;
                    self.send()?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| DbError::lost("unexpected SASL message"))?;
                    s.finish(body.data()).map_err(|e| DbError::lost(format!("SCRAM: {e}")))?;
                }
                Message::AuthenticationGss
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential
                | Message::AuthenticationSspi
                | Message::AuthenticationGssContinue(_) => {
                    return Err(DbError::lost(
                        "the server asks for an authentication method lockimpact does not support \
                         (trust, password, md5 and scram-sha-256 are)",
                    ));
                }
                Message::BackendKeyData(body) => (self.pid, self.secret) = (body.process_id(), body.secret_key()),
                Message::ErrorResponse(body) => {
                    let mut e = DbError::from_body(&body);
                    e.closed = true;
                    return Err(e);
                }
                Message::ReadyForQuery(_) => return Ok(()),
                _ => {}
            }
        }
    }

    /// Reads until ReadyForQuery; the first error the server sent, if any. A
    /// COPY FROM STDIN is refused (there is no data to send), a COPY TO
    /// STDOUT read and dropped. When the server ends the session after an
    /// error (FATAL), that error is returned, not the closed connection.
    fn until_ready(&mut self, extended: bool) -> Result<(), DbError> {
        let mut err: Option<DbError> = None;
        loop {
            let m = match self.next() {
                Ok(m) => m,
                Err(lost) => {
                    return Err(err.map_or(lost, |mut e| {
                        e.closed = true;
                        e
                    }));
                }
            };
            match m {
                Message::ErrorResponse(body) if err.is_none() => err = Some(DbError::from_body(&body)),
                Message::CopyInResponse(_) => {
                    self.wbuf.clear();
                    frontend::copy_fail("a lockimpact workload sends no COPY data", &mut self.wbuf)
                        .map_err(DbError::client)?;
                    if extended {
                        // The Sync sent with Execute was ignored in copy mode; the error needs one.
                        frontend::sync(&mut self.wbuf);
                    }
                    self.send()?;
                }
                Message::ReadyForQuery(_) => return err.map_or(Ok(()), Err),
                _ => {}
            }
        }
    }

    fn send(&mut self) -> Result<(), DbError> {
        if self.closed {
            return Err(DbError::lost("the connection is closed"));
        }
        let Err(e) = self.stream.write_all(&self.wbuf) else { return Ok(()) };
        // The peer is gone; it may have said why first (FATAL: terminated by an administrator, …).
        if let Ok(Message::ErrorResponse(body)) = self.next() {
            let mut why = DbError::from_body(&body);
            why.closed = true;
            self.lose("");
            return Err(why);
        }
        Err(self.lose(format!("cannot send to the server: {e}")))
    }

    /// The next message from the server, reading as needed.
    fn next(&mut self) -> Result<Message, DbError> {
        loop {
            match Message::parse(&mut self.rbuf) {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(self.lose(format!("bad message from the server: {e}"))),
            }
            match self.stream.read(&mut self.chunk) {
                Ok(0) => return Err(self.lose("the server closed the connection")),
                Ok(n) => self.rbuf.extend_from_slice(&self.chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.lose(format!("cannot read from the server: {e}"))),
            }
        }
    }

    fn lose(&mut self, what: impl std::fmt::Display) -> DbError {
        self.closed = true;
        self.stream.shutdown();
        DbError::lost(what)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.closed {
            self.wbuf.clear();
            frontend::terminate(&mut self.wbuf);
            let _ = self.stream.write_all(&self.wbuf);
        }
    }
}

/// A parameter in PostgreSQL's text format, written without allocating.
fn write_text(v: &Value, buf: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
    match v {
        Value::Int(i) => write!(buf, "{i}")?,
        Value::Float(f) => write!(buf, "{f}")?,
        Value::Bool(b) => buf.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Text(t) => buf.extend_from_slice(t.as_bytes()),
    }
    Ok(IsNull::No)
}

/// Asks a TCP connection for TLS when the target wants it (SSLRequest) and
/// does the handshake; a server that declines is fine unless `sslmode`
/// requires TLS. A unix socket never uses TLS (as in libpq).
fn start_tls(stream: Stream, host: &Host, tls: &Tls) -> Result<Stream, DbError> {
    let (mut tcp, client) = match (stream, tls.client_config()) {
        (Stream::Tcp(tcp), Some(client)) => (tcp, client),
        (Stream::Tcp(_), None) if tls.mode().requires_tls() => {
            return Err(DbError::lost(format!("sslmode={} without a TLS configuration", tls.mode().as_str())));
        }
        (other, _) => return Ok(other),
    };
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    let mut answer = [0u8; 1];
    tcp.write_all(&request).and_then(|_| tcp.read_exact(&mut answer)).map_err(DbError::lost)?;
    match answer[0] {
        b'S' => {}
        b'N' if !tls.mode().requires_tls() => return Ok(Stream::Tcp(tcp)),
        b'N' => {
            return Err(DbError::lost(format!(
                "the server does not accept TLS connections, and sslmode={} requires TLS",
                tls.mode().as_str()
            )));
        }
        _ => return Err(DbError::lost("the server answered the TLS request with something else")),
    }
    let name = match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(path) => path.display().to_string(),
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|e| DbError::lost(format!("{name} is not a name TLS can check: {e}")))?;
    let mut conn = ClientConnection::new(client.clone(), server_name)
        .map_err(|e| DbError::lost(format!("error performing TLS handshake: {e}")))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| DbError::lost(format!("error performing TLS handshake: {e}")))?;
    }
    Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
}

fn open(host: &Host, addr: Option<IpAddr>, port: u16, timeout: Duration) -> Result<Stream, DbError> {
    match host {
        Host::Unix(dir) => {
            let path = dir.join(format!(".s.PGSQL.{port}"));
            UnixStream::connect(&path)
                .map(Stream::Unix)
                .map_err(|e| DbError::lost(format!("cannot connect to {}: {e}", path.display())))
        }
        Host::Tcp(name) => {
            let fail = |e: io::Error| DbError::lost(format!("cannot connect to {name}:{port}: {e}"));
            let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
            let addrs: Vec<SocketAddr> = match addr {
                Some(ip) => vec![SocketAddr::new(ip, port)],
                None => (name.as_str(), port).to_socket_addrs().map_err(fail)?.collect(),
            };
            for addr in addrs {
                match TcpStream::connect_timeout(&addr, timeout) {
                    Ok(s) => {
                        s.set_nodelay(true).map_err(fail)?;
                        return Ok(Stream::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(fail(last))
        }
    }
}
