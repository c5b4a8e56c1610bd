//! `https://` webhooks: the client side of TLS for [`super::post`]. The server's certificate is
//! checked (chain and name) against the system's CA bundle, or only against `[notify] ca_file`
//! when one is given (a private CA). Every failure is a sentence without the URL.

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Debian's bundle of the public CAs (package `ca-certificates`).
pub const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The most bytes read from a CA file (Debian's bundle is about 200 KB).
const CA_FILE_MAX: u64 = 4 * 1024 * 1024;

/// The client settings: trust the CAs of `ca_file`, else of the system's bundle.
pub fn config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let roots = roots(ca_file)?;
    // ring (already built for rcgen) rather than aws-lc-rs and its C toolchain.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The CA certificates to trust, read bounded from `ca_file` or the system's bundle.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let path = ca_file.unwrap_or(Path::new(SYSTEM_BUNDLE));
    let bytes = crate::files::read_bounded(path, CA_FILE_MAX).map_err(|e| match ca_file {
        Some(_) => format!("the CA file {}: {e}", path.display()),
        None => format!(
            "no CA bundle at {SYSTEM_BUNDLE} ({e}): install ca-certificates or set [notify] ca_file"
        ),
    })?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&bytes).map_while(Result::ok);
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("no CA certificate in {}", path.display()));
    }
    Ok(roots)
}

/// A TLS session over `tcp` with `host`, its handshake done (bounded by `tcp`'s timeouts).
pub fn connect(
    config: &Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| std::io::Error::other("the host is not a TLS server name"))?;
    let conn = ClientConnection::new(config.clone(), name)
        .map_err(|e| std::io::Error::other(format!("TLS setup: {e}")))?;
    let mut stream = StreamOwned::new(conn, tcp);
    // complete_io runs the whole handshake (each read and write bounded by the socket's
    // timeouts), so its failure is told as one.
    if stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| std::io::Error::other(format!("TLS handshake: {e}")))?;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA file with no certificate, or missing, is refused with its path; one CA is taken.
    #[test]
    fn ca_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap_or_else(|e| panic!("{e}"));
        let err = config(Some(&empty)).err().unwrap_or_default();
        assert!(err.starts_with("no CA certificate in /"), "{err}");
        let missing = dir.path().join("missing.pem");
        let err = config(Some(&missing)).err().unwrap_or_default();
        assert!(err.starts_with("the CA file /"), "{err}");
        let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap_or_else(|e| panic!("{e}"));
        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca.pem()).unwrap_or_else(|e| panic!("{e}"));
        assert!(config(Some(&good)).is_ok());
    }
}
