//! The trust boundary: TLS and mTLS on the gRPC listener, and who the caller
//! is (client certificate SAN or bearer token). Knows rustls and the callers
//! file; knows nothing of the OTP flow. The certificate, the client-CA bundle
//! and the callers file are all re-read when their files change.

mod authenticator;
mod callers;
mod tls_cert;
mod tls_config;
mod tls_listener;
mod watched_file;

pub use authenticator::{AdminRefusal, AuthError, Authenticator};
pub use callers::{Caller, CallerList, CallersFile, UNLISTED_CALLER_LABEL};
pub use tls_config::{ServerTls, server_config};
pub use tls_listener::{
    DEFAULT_MAX_HANDSHAKES, PeerCertificate, TlsConnection, TlsIncoming, TlsSettings,
};
