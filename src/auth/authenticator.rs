//! Decides who a call comes from: a bearer token or a client certificate SAN
//! looked up in the callers file as it is now on disk, or — with mTLS and no
//! callers file — the certificate's own first SAN; and whether that caller
//! may use the admin API.

use std::{net::IpAddr, sync::Arc};

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

/// Why a call may not use the admin API (`otp.admin.v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AdminRefusal {
    /// A callers file is set and the credential the call proved carries no
    /// `role:admin`.
    #[error("the caller's line in the callers file carries no role:admin")]
    RoleMissing,
    /// No callers file is set and the call did not come from loopback.
    #[error("without a callers file only loopback connections may use the admin API")]
    NotLoopback,
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

    /// Whether a call by `caller` (as [`Authenticator::identify`] named it)
    /// from `remote` may use the admin API. With a callers file, only a
    /// caller whose credential line carries `role:admin`, from anywhere;
    /// without one, only a connection from loopback (an address that cannot
    /// be told is not loopback). Looked at on every call, as the file is.
    pub fn authorize_admin(
        &self,
        caller: Option<&Caller>,
        remote: Option<IpAddr>,
    ) -> Result<(), AdminRefusal> {
        if self.callers.is_some() {
            return match caller {
                Some(caller) if caller.is_admin() => Ok(()),
                _ => Err(AdminRefusal::RoleMissing),
            };
        }
        // `::ffff:127.0.0.1` is how a dual-stack listener sees IPv4 loopback.
        match remote.map(|ip| ip.to_canonical()) {
            Some(ip) if ip.is_loopback() => Ok(()),
            _ => Err(AdminRefusal::NotLoopback),
        }
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
            .cloned()
            .ok_or(AuthError::UnknownCaller);
    }
    let Some(peer) = peer.filter(|peer| !peer.names.is_empty()) else {
        return Err(AuthError::Unauthenticated);
    };
    match callers {
        Some(callers) => callers
            .by_certificate(peer)
            .cloned()
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
            ..PeerCertificate::default()
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
    fn only_an_admin_line_opens_the_admin_api_when_there_is_a_callers_file() {
        let file = std::env::temp_dir().join(format!("callers-admin-{}", std::process::id()));
        std::fs::write(
            &file,
            format!(
                "checkout sha256:{}\nops sha256:{} role:admin\n",
                digest("checkout-token"),
                digest("ops-token")
            ),
        )
        .expect("writes");
        let auth = Authenticator::new(
            Some(Arc::new(CallersFile::open_callers(&file).expect("valid"))),
            false,
        );
        let caller = |token: &str| {
            auth.identify(None, Some(format!("Bearer {token}").as_bytes()))
                .expect("known")
        };
        let loopback = Some(IpAddr::from([127, 0, 0, 1]));
        let elsewhere = Some(IpAddr::from([10, 0, 0, 7]));
        let ops = caller("ops-token");
        assert_eq!(auth.authorize_admin(ops.as_ref(), elsewhere), Ok(()));
        let checkout = caller("checkout-token");
        assert_eq!(
            auth.authorize_admin(checkout.as_ref(), loopback),
            Err(AdminRefusal::RoleMissing),
            "loopback is no role"
        );
        // Only now: a deleted callers file admits nobody.
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn without_a_callers_file_only_loopback_may_administer() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().expect("address");
        for auth in [Authenticator::default(), Authenticator::new(None, true)] {
            for loopback in [
                IpAddr::from([127, 0, 0, 1]),
                "::1".parse().expect("address"),
                mapped,
            ] {
                assert_eq!(
                    auth.authorize_admin(None, Some(loopback)),
                    Ok(()),
                    "{loopback}"
                );
            }
            for other in [Some(IpAddr::from([10, 0, 0, 7])), None] {
                assert_eq!(
                    auth.authorize_admin(None, other),
                    Err(AdminRefusal::NotLoopback),
                    "{other:?}"
                );
            }
        }
        let unlisted = Caller::unlisted("ops.internal");
        assert_eq!(
            Authenticator::new(None, true)
                .authorize_admin(Some(&unlisted), Some(IpAddr::from([10, 0, 0, 7]))),
            Err(AdminRefusal::NotLoopback),
            "a certificate alone is no role"
        );
    }

    #[test]
    fn no_configuration_means_anonymous() {
        assert_eq!(Authenticator::default().identify(None, None), Ok(None));
    }
}
