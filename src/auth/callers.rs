//! Who may call: the callers file (`OTP_CALLERS_FILE`), names proven by a
//! bearer token (only its SHA-256 digest is on disk) or by a client
//! certificate SAN, re-read when the file changes; and the [`Caller`] a call
//! is then made by (with its role: `role:admin` opens the admin API).

use std::{fmt, path::Path, sync::Arc};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{PeerCertificate, watched_file::WatchedFile};

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
    /// The credential's line carries `role:admin` (the admin API).
    admin: bool,
}

impl Caller {
    /// A caller named in the callers file, an admin if its line says so.
    fn listed(name: &str, admin: bool) -> Self {
        Self {
            name: Arc::from(name),
            listed: true,
            admin,
        }
    }

    /// A caller known only by its certificate (mTLS without a callers file);
    /// the name is cut to [`MAX_CALLER_NAME`] bytes.
    pub(super) fn unlisted(name: &str) -> Self {
        Self {
            name: Arc::from(truncated(name)),
            listed: false,
            admin: false,
        }
    }

    /// Whether the credential this call proved carries `role:admin` in the
    /// callers file (never true without one).
    pub fn is_admin(&self) -> bool {
        self.admin
    }

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Credential {
    TokenSha256([u8; 32]),
    CertName(String),
}

/// The callers file as it is now on disk ([`WatchedFile::current`]): a
/// replaced file is re-read on the next call; one that cannot be read or
/// parsed is logged and the last good list kept, never an open door. A file
/// that lists no caller, or is deleted, is a revocation: nobody may call
/// (logged at error level) until a file naming callers is back.
pub type CallersFile = WatchedFile<CallerList>;

impl CallersFile {
    /// Reads and parses the file; an error here (naming the line) stops
    /// startup, as does a missing file.
    pub fn open_callers(path: &Path) -> Result<Self, String> {
        let file = WatchedFile::open(path, "callers file", |path| {
            let text =
                std::fs::read_to_string(path).map_err(|err| format!("cannot read it: {err}"))?;
            let list = CallerList::parse(&text)?;
            if list.entries.is_empty() {
                tracing::error!(
                    path = %path.display(),
                    "callers file lists no caller: nobody may call"
                );
            }
            Ok(list)
        })?;
        Ok(file.revoked_when_gone(CallerList::default, "nobody may call until it is back"))
    }
}

/// The callers file, parsed: one `<name> sha256:<hex digest of the token>` or
/// `<name> san:<certificate DNS or URI SAN>` per line, optionally followed by
/// `role:admin` (that credential may call the admin API); `#` starts a
/// comment. A name may have several lines (e.g. an old and a new token while
/// rotating); the role belongs to the line, so give each of them the role.
#[derive(Debug, Clone, Default)]
pub struct CallerList {
    entries: Vec<(Caller, Credential)>,
}

impl CallerList {
    /// Parses the file's text; errors name the line. A file with no caller
    /// line is valid and admits nobody.
    ///
    /// A credential on two lines for different callers or roles is refused:
    /// which one a call got would depend on the lookup's order. The same
    /// line twice is read once.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries: Vec<(Caller, Credential)> = Vec::new();
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let entry = parse_line(line).map_err(|why| format!("line {}: {why}", number + 1))?;
            if let Some(earlier) = entries.iter().position(|(_, seen)| *seen == entry.1) {
                if entries[earlier].0 == entry.0 {
                    continue; // the same line again: nothing is ambiguous
                }
                return Err(format!(
                    "line {}: the same credential as line {}; give each token or \
                     certificate name one line",
                    number + 1,
                    lines[earlier]
                ));
            }
            entries.push(entry);
            lines.push(number + 1);
        }
        Ok(Self { entries })
    }

    /// Whether the file names no caller: every call is refused.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn by_token(&self, token: &str) -> Option<&Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every entry is compared, in constant time, so the time taken says
        // nothing about which digest (or how much of one) matched.
        let mut found = None;
        for (caller, credential) in &self.entries {
            if let Credential::TokenSha256(expected) = credential
                && bool::from(expected.ct_eq(&digest))
            {
                found = Some(caller);
            }
        }
        found
    }

    pub(super) fn by_certificate(&self, peer: &PeerCertificate) -> Option<&Caller> {
        self.entries
            .iter()
            .find_map(|(caller, credential)| match credential {
                Credential::CertName(san) if peer.names.iter().any(|n| n == san) => Some(caller),
                _ => None,
            })
    }
}

fn parse_line(line: &str) -> Result<(Caller, Credential), String> {
    let mut fields = line.split_whitespace();
    let (Some(name), Some(credential), role, None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(
            "expected `<name> sha256:<hex>` or `<name> san:<name>`, optionally `role:admin`"
                .to_owned(),
        );
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
    let admin = match role {
        None => false,
        Some("role:admin") => true,
        Some(other) => return Err(format!("unknown `{other}`: the one role is `role:admin`")),
    };
    Ok((Caller::listed(name, admin), credential))
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

    #[test]
    fn callers_file_errors_name_the_line() {
        let err = CallerList::parse("ok sha256:00\n").expect_err("short digest");
        assert!(err.starts_with("line 1"), "{err}");
        let err = CallerList::parse("\nbad name san:x\n").expect_err("three fields");
        assert!(err.starts_with("line 2"), "{err}");
        let nobody = CallerList::parse("# nothing\n").expect("a revocation, not an error");
        assert!(nobody.by_token("any").is_none());
        assert!(CallerList::parse("x token:abc").is_err());
        let err = CallerList::parse("ops san:ops.internal role:root\n").expect_err("role");
        assert!(
            err.starts_with("line 1") && err.contains("role:admin"),
            "{err}"
        );
    }

    #[test]
    fn the_admin_role_belongs_to_the_line_that_carries_it() {
        let callers = CallerList::parse(
            "ops  san:ops.internal role:admin\nops  san:ops-old.internal\napp  san:app.internal\n",
        )
        .expect("valid file");
        let by_san = |san: &str| {
            let peer = PeerCertificate {
                names: vec![san.to_owned()].into(),
                ..PeerCertificate::default()
            };
            callers.by_certificate(&peer).map(Caller::is_admin)
        };
        assert_eq!(by_san("ops.internal"), Some(true));
        assert_eq!(by_san("ops-old.internal"), Some(false));
        assert_eq!(by_san("app.internal"), Some(false));
        assert!(!Caller::unlisted("ops.internal").is_admin());
    }

    #[test]
    fn a_credential_on_two_lines_is_refused_naming_both() {
        let digest = "a".repeat(64);
        let twice = format!("app sha256:{digest}\n# old\nbilling sha256:{digest}\n");
        let err = CallerList::parse(&twice).expect_err("one token, two callers");
        assert!(err.starts_with("line 3") && err.contains("line 1"), "{err}");
        let err = CallerList::parse("ops san:ops.internal role:admin\nops san:ops.internal\n")
            .expect_err("one certificate, two roles");
        assert!(err.starts_with("line 2") && err.contains("line 1"), "{err}");
        CallerList::parse(&format!(
            "app sha256:{digest}\napp sha256:{}\n",
            "b".repeat(64)
        ))
        .expect("a name with two tokens (rotation) is fine");
        let same = CallerList::parse(&format!("app sha256:{digest}\napp  sha256:{digest}\n"))
            .expect("the same line twice is not ambiguous");
        assert_eq!(same.entries.len(), 1);
    }
}
