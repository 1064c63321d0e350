//! Decides who a call comes from: a bearer token or a client certificate SAN
//! looked up in the callers file as it is now on disk, or — with mTLS and no
//! callers file — the certificate's own first SAN.

use std::sync::Arc;

use thiserror::Error;

use super::{
    PeerCertificate,
    callers::{Caller, CallerList, CallersFile},
};

/// Why a call has no acceptable caller identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No credentials at all, or an `authorization` header that is not `Bearer <token>`.
    #[error("no caller credentials")]
    Unauthenticated,
    /// Credentials that name nobody in the callers file.
    #[error("unknown caller")]
    UnknownCaller,
}

/// Decides who a call comes from. With neither a callers file nor mTLS,
/// every call is anonymous (the loopback sidecar); otherwise every call must
/// name a caller. The callers file is looked at on every call, so a caller
/// added or removed is accepted or refused from the next call on, also on
/// connections opened before the change.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    callers: Option<Arc<CallersFile>>,
    mutual_tls: bool,
}

impl Authenticator {
    /// `callers`: the callers file (`OTP_CALLERS_FILE`); `mutual_tls`: client
    /// certificates are mandatory (`OTP_TLS_CLIENT_CA_FILE`).
    pub fn new(callers: Option<Arc<CallersFile>>, mutual_tls: bool) -> Self {
        Self {
            callers,
            mutual_tls,
        }
    }

    /// Whether calls must identify their caller.
    pub fn required(&self) -> bool {
        self.callers.is_some() || self.mutual_tls
    }

    /// The caller of a call with this client certificate (if any) and
    /// `authorization` header value (if any); `Ok(None)` when no caller
    /// authentication is configured. A bearer token, when sent, decides;
    /// else the certificate.
    pub fn identify(
        &self,
        peer: Option<&PeerCertificate>,
        authorization: Option<&[u8]>,
    ) -> Result<Option<Caller>, AuthError> {
        if !self.required() {
            return Ok(None);
        }
        let callers = self.callers.as_ref().map(|file| file.current());
        identify(callers.as_deref(), peer, authorization).map(Some)
    }
}

/// [`Authenticator::identify`] against one version of the callers file
/// (`None`: mTLS alone).
fn identify(
    callers: Option<&CallerList>,
    peer: Option<&PeerCertificate>,
    authorization: Option<&[u8]>,
) -> Result<Caller, AuthError> {
    if let Some(header) = authorization {
        let token = bearer_token(header).ok_or(AuthError::Unauthenticated)?;
        let callers = callers.ok_or(AuthError::UnknownCaller)?;
        return callers
            .by_token(token)
            .map(Caller::listed)
            .ok_or(AuthError::UnknownCaller);
    }
    let Some(peer) = peer.filter(|peer| !peer.names.is_empty()) else {
        return Err(AuthError::Unauthenticated);
    };
    match callers {
        Some(callers) => callers
            .by_certificate(peer)
            .map(Caller::listed)
            .ok_or(AuthError::UnknownCaller),
        // mTLS alone: our CA vouches for the name.
        None => peer
            .names
            .first()
            .map(|name| Caller::unlisted(name))
            .ok_or(AuthError::Unauthenticated),
    }
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750); anything else is `None`.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::{super::callers::UNLISTED_CALLER_LABEL, *};

    fn digest(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn callers() -> CallerList {
        CallerList::parse(&format!(
            "# who may call\ncheckout sha256:{}\nbilling  san:billing.callers.internal # mTLS\n",
            digest("checkout-token")
        ))
        .expect("valid file")
    }

    fn peer(names: &[&str]) -> PeerCertificate {
        PeerCertificate {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    #[test]
    fn tokens_and_certificates_name_listed_callers() {
        let callers = callers();
        let by_token =
            identify(Some(&callers), None, Some(b"Bearer checkout-token")).expect("known token");
        assert_eq!(by_token.name(), "checkout");
        assert_eq!(by_token.metric_label(), "checkout");
        let by_cert = identify(
            Some(&callers),
            Some(&peer(&["billing.callers.internal"])),
            None,
        )
        .expect("known SAN");
        assert_eq!(by_cert.name(), "billing");
    }

    #[test]
    fn missing_malformed_and_unknown_credentials_are_told_apart() {
        let callers = Some(callers());
        let callers = callers.as_ref();
        assert_eq!(
            identify(callers, None, None),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            identify(callers, None, Some(b"Basic Y2hlY2tvdXQ=")),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            identify(callers, None, Some(b"Bearer guessed")),
            Err(AuthError::UnknownCaller)
        );
        assert_eq!(
            identify(callers, Some(&peer(&["stranger.internal"])), None),
            Err(AuthError::UnknownCaller)
        );
    }

    #[test]
    fn mtls_alone_names_the_caller_by_its_certificate_under_one_label() {
        let auth = Authenticator::new(None, true);
        let caller = auth
            .identify(Some(&peer(&["app.internal", "spiffe://x/app"])), None)
            .expect("verified certificate")
            .expect("a caller");
        assert_eq!(caller.name(), "app.internal");
        assert_eq!(caller.metric_label(), UNLISTED_CALLER_LABEL);
    }

    #[test]
    fn no_configuration_means_anonymous() {
        assert_eq!(Authenticator::default().identify(None, None), Ok(None));
    }
}
