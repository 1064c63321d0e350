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
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::ServerTls;

/// A client gets this long to finish its handshake; a slow or silent one
/// holds one of the [`TlsSettings::max_handshakes`] slots at most this long
/// (each handshake runs on its own task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default `OTP_TLS_MAX_HANDSHAKES`. A handshake in progress costs a task, a
/// socket and rustls's state (tens of KiB), and an ECDHE plus a signature
/// (well under a millisecond of CPU with ring): 128 at once bounds that to a
/// few MiB and a few dozen ms of both cores, far above what callers that
/// keep their HTTP/2 connections open need, while a flood of connections
/// that never finish their handshake waits in the kernel's accept queue
/// instead of growing tasks without end.
pub const DEFAULT_MAX_HANDSHAKES: usize = 128;

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
    /// Most handshakes in progress at once (`OTP_TLS_MAX_HANDSHAKES`);
    /// further connections are not accepted until one finishes, fails or
    /// times out.
    pub max_handshakes: usize,
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
    /// with the configuration `tls` holds at that moment — at most
    /// [`ServerTls::max_handshakes`] at once: while that many are in
    /// progress, nothing more is accepted (new connections wait in the
    /// kernel's queue), so silent peers cannot grow tasks without bound.
    pub fn new(listener: TcpListener, tls: ServerTls) -> Self {
        let (sender, receiver) = mpsc::channel(64);
        let handshakes = Arc::new(Semaphore::new(tls.max_handshakes()));
        let accept_loop = tokio::spawn(async move {
            loop {
                // Never closed, so acquiring fails only if it were.
                let Ok(slot) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
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
                tokio::spawn(handshake(tls.clone(), tcp, remote, sender.clone(), slot));
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

/// Handshakes one connection, holding `slot` until the handshake is over
/// (done, refused or timed out), not for the connection's life.
async fn handshake(
    tls: ServerTls,
    tcp: TcpStream,
    remote: SocketAddr,
    accepted: mpsc::Sender<Result<TlsConnection, io::Error>>,
    slot: OwnedSemaphorePermit,
) {
    // Here, not in the accept loop: looking at the CA file (and reloading
    // it) never holds up accepting the next connection.
    let acceptor = TlsAcceptor::from(tls.current());
    let _ = tcp.set_nodelay(true);
    let handshaken = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
    drop(slot);
    let stream = match handshaken {
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
