//! TLS (and mTLS) on the gRPC listener, accepted by us rather than by tonic:
//! tonic's built-in TLS cannot reload a certificate, and we need the client
//! certificate's names on each request for caller identity.

use std::{
    io,
    net::SocketAddr,
    path::PathBuf,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use rustls::pki_types::CertificateDer;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::ServerTls;

/// A client gets this long to finish its handshake; a slow or silent one
/// cannot hold up anybody else (each handshake runs on its own task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS settings of the gRPC listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first (`OTP_TLS_CERT_FILE`); re-read when it changes.
    pub cert_file: PathBuf,
    /// PEM private key (`OTP_TLS_KEY_FILE`); re-read when it changes.
    pub key_file: PathBuf,
    /// PEM CA certificates (`OTP_TLS_CLIENT_CA_FILE`): when set, every client
    /// must present a certificate issued by one of them (mTLS); re-read when
    /// it changes (next connection).
    pub client_ca_file: Option<PathBuf>,
}

/// The names a verified client certificate carries (DNS and URI SANs), made
/// available to every request of the connection as a request extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    /// Subject alternative names: DNS names, then URIs (e.g. SPIFFE IDs).
    pub names: Arc<[String]>,
    /// The address the connection came from (the admin API's loopback rule;
    /// tonic tells it only for connections it accepts itself).
    pub remote: Option<SocketAddr>,
}

/// One accepted TLS connection, with the client certificate's names.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: PeerCertificate,
}

impl Connected for TlsConnection {
    type ConnectInfo = PeerCertificate;

    fn connect_info(&self) -> PeerCertificate {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepted, handshaken connections, as the stream tonic serves. The accept
/// loop ends when the stream is dropped (the server stopped).
pub struct TlsIncoming {
    connections: ReceiverStream<Result<TlsConnection, io::Error>>,
    accept_loop: JoinHandle<()>,
}

impl TlsIncoming {
    /// Accepts on `listener`, handshaking each connection on its own task
    /// with the configuration `tls` holds at that moment.
    pub fn new(listener: TcpListener, tls: ServerTls) -> Self {
        let (sender, receiver) = mpsc::channel(64);
        let accept_loop = tokio::spawn(async move {
            loop {
                let (tcp, remote) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if sender.is_closed() {
                    return;
                }
                tokio::spawn(handshake(tls.clone(), tcp, remote, sender.clone()));
            }
        });
        Self {
            connections: ReceiverStream::new(receiver),
            accept_loop,
        }
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = Result<TlsConnection, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.connections).poll_next(cx)
    }
}

async fn handshake(
    tls: ServerTls,
    tcp: TcpStream,
    remote: SocketAddr,
    accepted: mpsc::Sender<Result<TlsConnection, io::Error>>,
) {
    // Here, not in the accept loop: looking at the CA file (and reloading
    // it) never holds up accepting the next connection.
    let acceptor = TlsAcceptor::from(tls.current());
    let _ = tcp.set_nodelay(true);
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            // Wrong CA, no client certificate, plaintext on the TLS port…
            tracing::info!(peer = %remote, error = %err, "TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::info!(peer = %remote, "TLS handshake timed out");
            return;
        }
    };
    let peer = PeerCertificate {
        names: stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(certificate_names)
            .unwrap_or_default()
            .into(),
        remote: Some(remote),
    };
    let _ = accepted.send(Ok(TlsConnection { stream, peer })).await;
}

/// DNS and URI subject alternative names of a (verified) certificate.
fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    match webpki::EndEntityCert::try_from(cert) {
        Ok(cert) => cert
            .valid_dns_names()
            .chain(cert.valid_uri_names())
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}
