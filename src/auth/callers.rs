//! Who is calling: a name from the callers file (`OTP_CALLERS_FILE`), proven
//! by a bearer token (only its SHA-256 digest is on disk) or by a client
//! certificate SAN, or — with mTLS and no callers file — the certificate's
//! own first SAN.

use std::{fmt, sync::Arc};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::PeerCertificate;

/// Longest caller name: names are log fields and metric labels.
pub const MAX_CALLER_NAME: usize = 64;

/// Metric label for callers not named in the callers file (mTLS alone), so
/// certificate names can never grow the label set without bound.
pub const UNLISTED_CALLER_LABEL: &str = "unlisted";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    name: Arc<str>,
    /// Named in the callers file: the name is a bounded metric label.
    listed: bool,
}

impl Caller {
    /// The caller's name (never a token).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The metric label: the name for listed callers, else [`UNLISTED_CALLER_LABEL`].
    pub fn metric_label(&self) -> &str {
        if self.listed {
            &self.name
        } else {
            UNLISTED_CALLER_LABEL
        }
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

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

#[derive(Debug, Clone)]
enum Credential {
    TokenSha256([u8; 32]),
    CertName(String),
}

/// The callers file, parsed: one `<name> sha256:<hex digest of the token>` or
/// `<name> san:<certificate DNS or URI SAN>` per line; `#` starts a comment.
/// A name may have several lines (e.g. an old and a new token while rotating).
#[derive(Debug, Clone, Default)]
pub struct CallerList {
    entries: Vec<(Arc<str>, Credential)>,
}

impl CallerList {
    /// Parses the file's text; errors name the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let entry = parse_line(line).map_err(|why| format!("line {}: {why}", number + 1))?;
            entries.push(entry);
        }
        if entries.is_empty() {
            return Err("lists no caller".to_owned());
        }
        Ok(Self { entries })
    }

    fn by_token(&self, token: &str) -> Option<&Arc<str>> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, in constant time, so the time taken says
        // nothing about which digest (or how much of one) matched.
        let mut found = None;
        for (name, credential) in &self.entries {
            if let Credential::TokenSha256(expected) = credential
                && bool::from(expected.ct_eq(&digest))
            {
                found = Some(name);
            }
        }
        found
    }

    fn by_certificate(&self, peer: &PeerCertificate) -> Option<&Arc<str>> {
        self.entries
            .iter()
            .find_map(|(name, credential)| match credential {
                Credential::CertName(san) if peer.names.iter().any(|n| n == san) => Some(name),
                _ => None,
            })
    }
}

fn parse_line(line: &str) -> Result<(Arc<str>, Credential), String> {
    let mut fields = line.split_whitespace();
    let (Some(name), Some(credential), None) = (fields.next(), fields.next(), fields.next()) else {
        return Err("expected `<name> sha256:<hex>` or `<name> san:<name>`".to_owned());
    };
    let valid_name = (1..=MAX_CALLER_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid_name {
        return Err(format!(
            "caller name must be 1 to {MAX_CALLER_NAME} characters from A-Z a-z 0-9 - _ ."
        ));
    }
    let credential = if let Some(hex_digest) = credential.strip_prefix("sha256:") {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| {
            "sha256: takes 64 hex digits (`printf %s TOKEN | sha256sum`)".to_owned()
        })?;
        Credential::TokenSha256(digest)
    } else if let Some(san) = credential
        .strip_prefix("san:")
        .filter(|san| !san.is_empty())
    {
        Credential::CertName(san.to_owned())
    } else {
        return Err("credential must start with `sha256:` or `san:`".to_owned());
    };
    Ok((Arc::from(name), credential))
}

/// Decides who a call comes from. With neither a callers file nor mTLS,
/// every call is anonymous (the loopback sidecar); otherwise every call must
/// name a caller.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    callers: Option<CallerList>,
    mutual_tls: bool,
}

impl Authenticator {
    /// `callers`: the parsed callers file; `mutual_tls`: client certificates
    /// are mandatory (`OTP_TLS_CLIENT_CA_FILE`).
    pub fn new(callers: Option<CallerList>, mutual_tls: bool) -> Self {
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
        let listed = |name: &Arc<str>| Caller {
            name: Arc::clone(name),
            listed: true,
        };
        if let Some(header) = authorization {
            let token = bearer_token(header).ok_or(AuthError::Unauthenticated)?;
            let callers = self.callers.as_ref().ok_or(AuthError::UnknownCaller)?;
            return callers
                .by_token(token)
                .map(listed)
                .map(Some)
                .ok_or(AuthError::UnknownCaller);
        }
        let Some(peer) = peer.filter(|peer| !peer.names.is_empty()) else {
            return Err(AuthError::Unauthenticated);
        };
        match &self.callers {
            Some(callers) => callers
                .by_certificate(peer)
                .map(listed)
                .map(Some)
                .ok_or(AuthError::UnknownCaller),
            // mTLS alone: our CA vouches for the name.
            None => Ok(peer.names.first().map(|name| Caller {
                name: Arc::from(truncated(name)),
                listed: false,
            })),
        }
    }
}

/// `Bearer <token>` (scheme case-insensitive, RFC 6750); anything else is `None`.
fn bearer_token(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn truncated(name: &str) -> &str {
    let mut end = name.len().min(MAX_CALLER_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let auth = Authenticator::new(Some(callers()), false);
        let by_token = auth
            .identify(None, Some(b"Bearer checkout-token"))
            .expect("known token")
            .expect("a caller");
        assert_eq!(by_token.name(), "checkout");
        assert_eq!(by_token.metric_label(), "checkout");
        let by_cert = auth
            .identify(Some(&peer(&["billing.callers.internal"])), None)
            .expect("known SAN")
            .expect("a caller");
        assert_eq!(by_cert.name(), "billing");
    }

    #[test]
    fn missing_malformed_and_unknown_credentials_are_told_apart() {
        let auth = Authenticator::new(Some(callers()), false);
        assert_eq!(auth.identify(None, None), Err(AuthError::Unauthenticated));
        assert_eq!(
            auth.identify(None, Some(b"Basic Y2hlY2tvdXQ=")),
            Err(AuthError::Unauthenticated)
        );
        assert_eq!(
            auth.identify(None, Some(b"Bearer guessed")),
            Err(AuthError::UnknownCaller)
        );
        assert_eq!(
            auth.identify(Some(&peer(&["stranger.internal"])), None),
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

    #[test]
    fn callers_file_errors_name_the_line() {
        let err = CallerList::parse("ok sha256:00\n").expect_err("short digest");
        assert!(err.starts_with("line 1"), "{err}");
        let err = CallerList::parse("\nbad name san:x\n").expect_err("three fields");
        assert!(err.starts_with("line 2"), "{err}");
        assert!(CallerList::parse("# nothing\n").is_err());
        assert!(CallerList::parse("x token:abc").is_err());
    }
}
