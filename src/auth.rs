//! The trust boundary: TLS and mTLS on the gRPC listener, and who the caller
//! is (client certificate SAN or bearer token). Knows rustls and the callers
//! file; knows nothing of the OTP flow.

mod callers;
mod tls_cert;
mod tls_listener;

pub use callers::{AuthError, Authenticator, Caller, CallerList, UNLISTED_CALLER_LABEL};
pub use tls_listener::{PeerCertificate, TlsConnection, TlsIncoming, TlsSettings, server_config};
