//! The rustls configuration of the gRPC listener, as it stands for the next
//! connection: the server certificate reloads itself (`tls_cert.rs`), and
//! with mTLS the client-CA bundle is re-read when its file changes.
//!
//! A new CA bundle builds a whole new `ServerConfig` rather than swapping the
//! verifier inside the old one: the new configuration starts with an empty
//! session cache, so a client whose CA was just removed cannot resume a TLS
//! session it opened before and skip certificate verification that way.

use std::{path::Path, sync::Arc};

use rustls::{
    ConfigBuilder, RootCertStore, ServerConfig, WantsVerifier,
    crypto::CryptoProvider,
    pki_types::CertificateDer,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

use super::{
    TlsSettings,
    tls_cert::{ReloadingCert, read_certificates},
    watched_file::WatchedFile,
};

/// The listener's TLS configuration for the next handshake.
#[derive(Debug, Clone)]
pub struct ServerTls {
    source: Source,
    /// Most handshakes in progress at once (`OTP_TLS_MAX_HANDSHAKES`).
    max_handshakes: usize,
}

#[derive(Debug, Clone)]
enum Source {
    /// No client certificates asked for: one configuration for good.
    Fixed(Arc<ServerConfig>),
    /// mTLS: rebuilt whenever `OTP_TLS_CLIENT_CA_FILE` changes.
    ClientCa(Arc<WatchedFile<ServerConfig>>),
}

impl ServerTls {
    /// The configuration a connection accepted now is handshaken with
    /// (after re-reading the client-CA bundle if it changed; a bundle that
    /// cannot be loaded is logged and the previous one kept).
    pub fn current(&self) -> Arc<ServerConfig> {
        match &self.source {
            Source::Fixed(config) => Arc::clone(config),
            Source::ClientCa(watched) => watched.current(),
        }
    }

    /// Most handshakes the listener runs at once (see `tls_listener.rs`).
    pub fn max_handshakes(&self) -> usize {
        self.max_handshakes
    }
}

/// Builds the rustls configuration (ring provider, h2 only). Errors name the
/// file at fault and stop startup.
pub fn server_config(settings: &TlsSettings) -> Result<ServerTls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = Arc::new(ReloadingCert::load(
        &settings.cert_file,
        &settings.key_file,
        Arc::clone(&provider),
    )?);
    let source = match &settings.client_ca_file {
        None => Source::Fixed(Arc::new(finish(
            builder(&provider)?.with_no_client_auth(),
            cert,
        ))),
        Some(ca_file) => {
            let load = move |path: &Path| {
                let verifier = client_verifier(read_certificates(path)?, &provider)?;
                Ok(finish(
                    builder(&provider)?.with_client_cert_verifier(verifier),
                    Arc::clone(&cert),
                ))
            };
            Source::ClientCa(Arc::new(WatchedFile::open(
                ca_file,
                "client CA bundle",
                load,
            )?))
        }
    };
    Ok(ServerTls {
        source,
        max_handshakes: settings.max_handshakes,
    })
}

fn builder(
    provider: &Arc<CryptoProvider>,
) -> Result<ConfigBuilder<ServerConfig, WantsVerifier>, String> {
    ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| err.to_string())
}

fn finish(
    builder: ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    cert: Arc<ReloadingCert>,
) -> ServerConfig {
    let mut config = builder.with_cert_resolver(cert);
    // gRPC is HTTP/2; clients such as grpc-go and grpcio insist on ALPN h2.
    config.alpn_protocols = vec![b"h2".to_vec()];
    config
}

fn client_verifier(
    cas: Vec<CertificateDer<'static>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|err| format!("client CA certificate: {err}"))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|err| format!("client CA certificates: {err}"))
}
