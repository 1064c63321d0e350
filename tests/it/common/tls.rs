//! Certificates made at test time (rcgen) and TLS clients that use them: a
//! private CA, server and client certificates, files on disk that a test can
//! rotate, and a tonic channel over tokio-rustls (ring, like the server).

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::{
    ClientConfig, HandshakeKind, RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
};
use tokio::{io::AsyncReadExt, net::TcpStream};
use tonic::transport::{Channel, Endpoint};

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A private certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn issue_server(&self) -> Issued {
        self.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose DNS SAN is `name`.
    pub fn issue_client(&self, name: &str) -> Issued {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A private directory of PEM files, removed when dropped.
pub struct CertDir {
    dir: PathBuf,
}

impl CertDir {
    pub fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "otp-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `name` the way a rotation does: a new file renamed over the
    /// old one, so a reader never sees it half-written.
    pub fn write(&self, name: &str, content: &str) -> String {
        let staged = self.dir.join(format!(".{name}.new"));
        std::fs::write(&staged, content).expect("write PEM");
        let path = self.path(name);
        std::fs::rename(&staged, &path).expect("rename PEM");
        path.to_str().expect("UTF-8 path").to_owned()
    }

    /// Writes `issued` as `<stem>.crt` and `<stem>.key`; returns both paths.
    pub fn write_pair(&self, stem: &str, issued: &Issued) -> (String, String) {
        (
            self.write(&format!("{stem}.crt"), &issued.cert_pem),
            self.write(&format!("{stem}.key"), &issued.key_pem),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A client configuration trusting only `ca_pem`, presenting `client` when
/// given (h2 ALPN, ring, rustls's default in-memory session resumption).
pub fn client_config(ca_pem: &str, client: Option<&Issued>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA certificate");
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some(issued) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client PEM"),
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).expect("client key"),
            )
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// A TLS channel to `addr` (server name `localhost`) trusting only
/// `ca_pem`, presenting `client` when given. Connects eagerly, so a refused
/// handshake is an error here (or, with TLS 1.3 client certificates, on the
/// first call).
pub async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    client: Option<&Issued>,
) -> Result<Channel, tonic::transport::Error> {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, client));
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await?;
                let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok::<_, io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

/// One bare TLS connection with `config` (no gRPC): how the handshake went,
/// and whether the server then spoke (an h2 server sends its SETTINGS first;
/// a server that refused the client certificate sends an alert instead).
/// Reading also takes in the session tickets a later connection resumes with.
pub async fn tls_handshake(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> (Option<HandshakeKind>, io::Result<usize>) {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    let name = ServerName::try_from("localhost").expect("server name");
    let mut tls = match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(tls) => tls,
        Err(err) => return (None, Err(err)),
    };
    let kind = tls.get_ref().1.handshake_kind();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
        .await
        .unwrap_or_else(|_| Err(io::Error::other("server said nothing in 5 s")));
    (kind, read)
}
