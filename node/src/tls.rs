//! TLS for the node: the rustls server and client configurations, and the
//! tokio-rustls acceptor and connector built on them.
//!
//! The node never builds its configurations itself: whoever starts it
//! passes them in ([`crate::NodeConfig::tls_server`] and
//! [`crate::NodeConfig::tls_client`]). `serve` builds them here from the
//! `[tls]` PEM files with the `ring` provider; the simulation builds them
//! with a provider whose randomness comes from its seed, so that a seed
//! still reproduces its handshakes byte for byte.
//!
//! The client side does not verify the server's certificate, as MTAs doing
//! opportunistic TLS do (RFC 7435): a relay that refused to deliver over an
//! unverifiable certificate would deliver in plain text instead, which is
//! worse. The handshake's signature is still checked against the key in
//! the certificate presented, so the session key is bound to that
//! certificate; only who signed it is not asked.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

pub use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The `ring` provider, which builds on a fresh machine without system
/// packages; what `serve` and `replay --target` use.
pub fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why the server's TLS configuration could not be built: which file, and
/// what is wrong with it.
#[derive(Debug)]
pub enum TlsConfigError {
    /// The file could not be read.
    Read(PathBuf, io::Error),
    /// The file is not PEM, or its PEM is damaged.
    Pem(PathBuf, String),
    /// The certificate file holds no `CERTIFICATE` section.
    NoCertificate(PathBuf),
    /// The key file holds no private key (PKCS#8, PKCS#1 or SEC1).
    NoKey(PathBuf),
    /// rustls refused the pair: a key that does not match the certificate,
    /// a key type the provider cannot sign with, no usable protocol version.
    Rustls(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read(p, e) => write!(f, "tls: cannot read {}: {e}", p.display()),
            TlsConfigError::Pem(p, e) => write!(f, "tls: {} is not valid PEM: {e}", p.display()),
            TlsConfigError::NoCertificate(p) => {
                write!(f, "tls: {} holds no PEM CERTIFICATE section", p.display())
            }
            TlsConfigError::NoKey(p) => write!(
                f,
                "tls: {} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
                p.display()
            ),
            TlsConfigError::Rustls(e) => write!(f, "tls: certificate and key refused: {e}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// The certificate chain in a PEM file, leaf first.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = std::fs::read(path).map_err(|e| TlsConfigError::Read(path.to_path_buf(), e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Pem(path.to_path_buf(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = std::fs::read(path).map_err(|e| TlsConfigError::Read(path.to_path_buf(), e))?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(key) => Ok(key),
        Err(rustls::pki_types::pem::Error::NoItemsFound) => Err(TlsConfigError::NoKey(path.to_path_buf())),
        Err(e) => Err(TlsConfigError::Pem(path.to_path_buf(), e.to_string())),
    }
}

/// A server configuration presenting `certs` with `key`, TLS 1.2 and 1.3.
pub fn server_config(
    provider: Arc<CryptoProvider>,
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The server configuration from the `[tls]` PEM files.
pub fn load_server_config(
    provider: Arc<CryptoProvider>,
    cert: &Path,
    key: &Path,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    server_config(provider, load_certs(cert)?, load_key(key)?)
}

/// A client configuration that does not verify the server's certificate
/// (see the module's doc), TLS 1.2 and 1.3.
pub fn client_config(provider: Arc<CryptoProvider>) -> Result<Arc<ClientConfig>, TlsConfigError> {
    client_config_with_versions(provider, rustls::DEFAULT_VERSIONS)
}

/// As [`client_config`], with only these protocol versions.
pub fn client_config_with_versions(
    provider: Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let verifier = Arc::new(Verifier::any(provider.signature_verification_algorithms));
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The name the client sends (SNI) and would verify: the host's name, or
/// its address. Something that is neither becomes an unspecified address,
/// for which rustls sends no SNI: nothing is verified anyway.
pub fn server_name(host: &str) -> ServerName<'static> {
    ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()))
}

/// Accepts any certificate, or only those pinned, byte for byte; either
/// way the handshake's signatures are checked with the provider's
/// algorithms, as a verifying client would. The node's outbound and
/// `replay --target` accept any; the simulation pins its world's own.
#[derive(Debug)]
pub struct Verifier {
    pins: Option<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// Accepts any certificate.
    pub fn any(algorithms: WebPkiSupportedAlgorithms) -> Verifier {
        Verifier {
            pins: None,
            algorithms,
        }
    }

    /// Accepts only these certificates.
    pub fn pinned(pins: Vec<CertificateDer<'static>>, algorithms: WebPkiSupportedAlgorithms) -> Verifier {
        Verifier {
            pins: Some(pins),
            algorithms,
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.pins {
            Some(pins) if !pins.iter().any(|c| c.as_ref() == end_entity.as_ref()) => Err(
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("relayguard-node-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn missing_and_empty_files_say_which_file_and_what() {
        let dir = scratch("errors");
        let missing = dir.join("missing.pem");
        let e = load_server_config(ring(), &missing, &missing).unwrap_err();
        assert!(matches!(e, TlsConfigError::Read(..)), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let e = load_certs(&empty).unwrap_err();
        assert!(matches!(e, TlsConfigError::NoCertificate(_)), "{e}");
        let e = load_key(&empty).unwrap_err();
        assert!(matches!(e, TlsConfigError::NoKey(_)), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_in_the_key_file_is_no_key() {
        let dir = scratch("swapped");
        let cert = dir.join("cert.pem");
        // Any base64 in a CERTIFICATE section parses as PEM.
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(load_certs(&cert).unwrap().len(), 1);
        assert!(matches!(load_key(&cert), Err(TlsConfigError::NoKey(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let key = |k: &rcgen::KeyPair| PrivateKeyDer::try_from(k.serialize_der()).unwrap();
        let e = server_config(ring(), vec![a.cert.der().clone()], key(&b.key_pair)).unwrap_err();
        assert!(matches!(e, TlsConfigError::Rustls(_)), "{e}");
        assert!(server_config(ring(), vec![a.cert.der().clone()], key(&a.key_pair)).is_ok());
    }

    #[test]
    fn the_client_config_builds_with_ring() {
        let c = client_config(ring()).unwrap();
        assert!(!c.crypto_provider().cipher_suites.is_empty());
        assert!(matches!(server_name("mx.example"), ServerName::DnsName(_)));
        assert!(matches!(server_name("192.0.2.1"), ServerName::IpAddress(_)));
    }
}
