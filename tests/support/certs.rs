//! A certificate authority and a server certificate, generated for a test: the TLS tests of
//! the root crate use it through `support::harness`, dopy-cli's include this file.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use dopy::transport::tls::{TlsClient, TlsServer};

/// A certificate authority and a server certificate it signed, generated now.
#[derive(Debug)]
pub struct Certs {
    /// The CA's certificate (what clients trust), PEM.
    pub ca_pem: String,
    /// The server's certificate, PEM.
    pub cert_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
}

/// Generates a CA (of a name unique in this process) and a server certificate for `names`
/// (host names or IP addresses).
pub fn certs(names: &[&str]) -> Certs {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ca_name = format!("dopy test CA {}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    Certs { ca_pem: ca.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

impl Certs {
    /// The server side of these certificates.
    pub fn server(&self) -> TlsServer {
        TlsServer::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes()).unwrap()
    }

    /// A client trusting this CA only.
    pub fn client(&self) -> TlsClient {
        TlsClient::with_roots_pem(self.ca_pem.as_bytes()).unwrap()
    }
}
