//! TLS for PostgreSQL connections: libpq's `sslmode` and `sslrootcert` as a
//! rustls client configuration (ring provider), used by tokio-postgres
//! through tokio-postgres-rustls and by the workload's blocking connections
//! directly.
//!
//! | sslmode | TLS | the server's certificate |
//! |---|---|---|
//! | disable | never | — |
//! | allow, prefer | when the server offers it | not checked, unless a root certificate file is there (then as verify-ca) |
//! | require | always | not checked, unless a root certificate file is there (then as verify-ca) |
//! | verify-ca | always | signed by a CA of `sslrootcert` |
//! | verify-full | always | signed by a CA of `sslrootcert`, and issued for the host name |
//!
//! The root certificates come from `sslrootcert` (a PEM file, or `system`
//! for the system's trusted CAs), else `~/.postgresql/root.crt` when it
//! exists, as in libpq.

use std::path::PathBuf;
use std::sync::Arc;

use super::conninfo::ConnError;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Taken as `prefer`: TLS when the server offers it (libpq tries without TLS first).
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection without TLS must fail.
    pub fn requires_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// tokio-postgres knows three modes; the certificate checks live in the verifier.
    pub fn for_tokio_postgres(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// Where the CA certificates that vouch for the server come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// `~/.postgresql/root.crt`, used when it exists.
    Default(Option<PathBuf>),
    /// `sslrootcert=FILE` (PEM).
    File(PathBuf),
    /// `sslrootcert=system`: the system's trusted CAs.
    System,
}

/// The TLS a connection uses: none, or a rustls configuration that checks
/// what `sslmode` asks for.
#[derive(Clone)]
pub struct Tls {
    mode: SslMode,
    client: Option<Arc<ClientConfig>>,
}

impl Tls {
    /// No TLS (the disposable servers, reached over a socket or loopback).
    pub fn disabled() -> Tls {
        Tls { mode: SslMode::Disable, client: None }
    }

    /// The configuration for `mode` with the CAs of `root`; an error says
    /// what is missing.
    pub fn new(mode: SslMode, root: RootCert) -> Result<Tls, ConnError> {
        if mode == SslMode::Disable {
            return Ok(Tls::disabled());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = load_roots(&root)?;
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (_, Some(roots)) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| ConnError(format!("sslrootcert: {e}")))?;
                match mode {
                    SslMode::VerifyFull => webpki,
                    _ => Arc::new(NameUnchecked { chain: Some(webpki), provider: provider.clone() }),
                }
            }
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(ConnError(format!(
                    "sslmode={} checks the server's certificate against a CA certificate, and there is none: set \
                     sslrootcert=/path/to/ca.pem (the CA that signed the server's certificate), or sslrootcert=system \
                     for the system's trusted CAs{}",
                    mode.as_str(),
                    match &root {
                        RootCert::Default(Some(p)) => format!(" ({}, the default, does not exist)", p.display()),
                        _ => String::new(),
                    }
                )));
            }
            (_, None) => Arc::new(NameUnchecked { chain: None, provider: provider.clone() }),
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConnError(format!("TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Tls { mode, client: Some(Arc::new(config)) })
    }

    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The rustls configuration; `None` when TLS is disabled.
    pub fn client_config(&self) -> Option<&Arc<ClientConfig>> {
        self.client.as_ref()
    }
}

/// The CAs of `root`; `None` when there are none to check against.
fn load_roots(root: &RootCert) -> Result<Option<RootCertStore>, ConnError> {
    let mut store = RootCertStore::empty();
    match root {
        RootCert::Default(None) => return Ok(None),
        RootCert::Default(Some(path)) if !path.is_file() => return Ok(None),
        RootCert::Default(Some(path)) | RootCert::File(path) => {
            let certs =
                CertificateDer::pem_file_iter(path).and_then(|i| i.collect::<Result<Vec<_>, _>>()).map_err(|e| {
                    ConnError(format!("sslrootcert {}: cannot read its PEM certificates: {e}", path.display()))
                })?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(ConnError(format!("sslrootcert {}: holds no usable PEM certificate", path.display())));
            }
        }
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(ConnError(
                    "sslrootcert=system: the system has no trusted CA certificates (install ca-certificates)".into(),
                ));
            }
        }
    }
    Ok(Some(store))
}

/// Every mode but `verify-full`: the host name is not checked; the chain
/// must lead to a trusted CA when there are root certificates (`verify-ca`,
/// or `require` with a root certificate file, as in libpq), else the
/// certificate is taken as it comes (libpq does the same). The handshake's
/// signatures are always checked.
#[derive(Debug)]
struct NameUnchecked {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NameUnchecked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        // webpki checks the chain first, then the name: a name error means the chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Where and how to connect: the settings and their TLS.
#[derive(Clone)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub tls: Tls,
}

impl Target {
    /// A connection without TLS.
    pub fn plain(config: tokio_postgres::Config) -> Target {
        Target { config, tls: Tls::disabled() }
    }

    /// Connects; the connection's task is spawned on the current runtime.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        match &self.tls.client {
            None => {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
            Some(tls) => {
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new(ClientConfig::clone(tls));
                let (client, conn) = self.config.connect(connector).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(client)
            }
        }
    }
}
