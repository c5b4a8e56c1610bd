//! `--preview-check` over TLS: after the edge's own `redirect scheme https`, the request is sent
//! again to the edge's TLS listener, with SNI = the env's host. The only certificate trusted is
//! one the edge itself serves from its certs dir (the first certificate of each file HAProxy
//! loads there), compared byte for byte: no public CA is needed for a check of our own edge,
//! and nothing else is trusted by it. The handshake's signature is still verified.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The most bytes read from one certificate file (a chain of a few certificates and a key).
const PEM_MAX: u64 = 1024 * 1024;

/// A TLS connection to `addr` for `host`, trusting only the certificates in `certs_dir`.
pub(super) async fn connect(
    addr: std::net::SocketAddr,
    host: &str,
    certs_dir: &Path,
) -> Result<TlsStream<TcpStream>, String> {
    let pinned = edge_certificates(certs_dir);
    if pinned.is_empty() {
        return Err(format!(
            "no certificate in {} to trust for the check over TLS",
            certs_dir.display()
        ));
    }
    // ring (already built for rcgen) rather than aws-lc-rs and its C toolchain; its lack of
    // post-quantum key exchange does not matter for a check of our own edge.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = EdgeCertificates {
        pinned,
        algorithms: provider.signature_verification_algorithms,
        dir: certs_dir.display().to_string(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr} (listen.https): {e}"))?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr} for {host}: {e}"))
}

/// The DER of the first certificate of every file the edge loads from `dir` (the files
/// [`crate::edge::cert::disk_certs`] reads as a certificate and its key).
fn edge_certificates(dir: &Path) -> Vec<Vec<u8>> {
    crate::edge::cert::disk_certs(dir)
        .into_iter()
        .filter(|(_, info)| info.is_ok())
        .filter_map(|(name, _)| leaf_der(&dir.join(name)))
        .collect()
}

/// The first `CERTIFICATE` block of a PEM file, as DER.
fn leaf_der(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(PEM_MAX)
        .read_to_end(&mut bytes)
        .ok()?;
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .map_while(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
}

/// Trusts exactly the edge's own certificates.
#[derive(Debug)]
struct EdgeCertificates {
    pinned: Vec<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
    dir: String,
}

impl ServerCertVerifier for EdgeCertificates {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_slice() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        Err(rustls::Error::General(format!(
            "the edge served a certificate that is not one of {}",
            self.dir
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
