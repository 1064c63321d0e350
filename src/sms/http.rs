//! The one HTTP client every SMS provider shares, and the one way a provider
//! posts through it: the answer's head awaited until the send's deadline,
//! its body read bounded in size and time, and every failure sorted into
//! "surely never sent" or "may have been sent".

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime},
};

use reqwest::{Client, RequestBuilder, Response, StatusCode, header::RETRY_AFTER};
use thiserror::Error;
use tokio::time::Instant;

use super::{
    GatewayError,
    retry::{TryOutcome, parse_retry_after},
};

/// Most of an answer's body that is read: enough for any JSON a provider
/// sends, little enough that a broken proxy cannot fill memory.
const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest wait for an answer's body once its head has arrived. After a 2xx
/// the message is taken; the body only names it, so a slow body must not
/// hold the call (and is never a reason to try again).
const BODY_WAIT: Duration = Duration::from_secs(1);
/// Longest provider message put in a log line.
const MAX_LOGGED_MESSAGE_CHARS: usize = 200;

/// The shared HTTP client could not be built (e.g. no TLS roots could be loaded).
#[derive(Debug, Error)]
#[error("cannot set up the SMS HTTP client: {0}")]
pub struct SmsSetupError(pub String);

/// The client every provider sends through, so connections are reused.
/// `connect_timeout` bounds DNS, TCP and TLS together: a connect that fails
/// within it proves the request never left.
pub fn http_client(connect_timeout: Duration) -> Result<Client, SmsSetupError> {
    install_crypto_provider();
    Client::builder()
        .connect_timeout(connect_timeout)
        // A redirect would turn the POST into a GET or carry credentials to
        // another host; no provider redirects its API, so stop and say so.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| SmsSetupError(error_chain(&err)))
}

/// reqwest is built without its default aws-lc provider (that needs a C
/// toolchain and CMake to build); this installs ring once per process. A
/// provider some other part of the process installed first is kept.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What one POST came to, before a provider reads meaning into it.
#[derive(Debug)]
pub(super) enum Posted {
    /// The status line and headers arrived.
    Answered(Answer),
    /// No connection could be made (DNS, TCP, TLS): the request never left.
    NotSent(String),
    /// The request went out, or may have, and then failed or was cut off
    /// at the deadline: the provider may have taken it.
    Lost(String),
}

impl Posted {
    /// The answer, or what a post that got none means for the try: a failed
    /// connect surely sent nothing (a retry may pass); a request lost after
    /// it went out may have been taken, so it is never repeated.
    pub(super) fn into_answer<T>(self) -> Result<Answer, TryOutcome<T>> {
        match self {
            Posted::Answered(answer) => Ok(answer),
            Posted::NotSent(reason) => Err(TryOutcome::NotSent {
                reason,
                retry_after: None,
                connect_failed: true,
            }),
            Posted::Lost(reason) => Err(TryOutcome::Failed(GatewayError::Uncertain(reason))),
        }
    }
}

/// A provider's answer.
#[derive(Debug)]
pub(super) struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Retry-After` the provider asked for, if any.
    pub retry_after: Option<Duration>,
    /// At most [`MAX_BODY_BYTES`] of the body; `None` when it did not arrive
    /// within [`BODY_WAIT`] (or the deadline) or broke off.
    pub body: Option<Vec<u8>>,
}

impl Answer {
    /// What a non-2xx answer means when the provider's own rules say
    /// nothing more: 429 and 503 say "not processed", so a retry may pass;
    /// any other 5xx may have come after the provider took the message
    /// (never retried); anything else is a refusal a retry cannot fix.
    pub(super) fn refusal<T>(&self, reason: String) -> TryOutcome<T> {
        match self.status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                TryOutcome::NotSent {
                    reason,
                    retry_after: self.retry_after,
                    connect_failed: false,
                }
            }
            status if status.is_server_error() => {
                TryOutcome::Failed(GatewayError::Uncertain(reason))
            }
            _ => TryOutcome::Failed(GatewayError::Rejected(reason)),
        }
    }
}

/// Sends `request` and waits for the answer's head until `deadline`, then
/// for its body for at most [`BODY_WAIT`] more (never past `deadline`).
/// Returns by `deadline` whatever happens.
pub(super) async fn post(request: RequestBuilder, deadline: Instant) -> Posted {
    let response = match tokio::time::timeout_at(deadline, request.send()).await {
        Err(_) => return Posted::Lost("no answer before the send deadline".into()),
        Ok(Err(err)) => {
            // Only a failed connect proves the request never left.
            let connect_failed = err.is_connect();
            // The URL may name an account or device; the host alone is in the startup log.
            let reason = transport_reason(&err.without_url());
            return if connect_failed {
                Posted::NotSent(reason)
            } else {
                Posted::Lost(reason)
            };
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let body_deadline = deadline.min(Instant::now() + BODY_WAIT);
    let body = tokio::time::timeout_at(body_deadline, read_capped(response))
        .await
        .ok()
        .flatten();
    Posted::Answered(Answer {
        status,
        retry_after,
        body,
    })
}

/// Reads at most [`MAX_BODY_BYTES`] of the body; `None` if it broke off.
async fn read_capped(mut response: Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() == MAX_BODY_BYTES {
                    return Some(body);
                }
            }
            Ok(None) => return Some(body),
            Err(_) => return None,
        }
    }
}

/// What went wrong below HTTP.
fn transport_reason(err: &reqwest::Error) -> String {
    let kind = if err.is_connect() {
        "cannot connect"
    } else if err.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    format!("{kind}: {}", error_chain(err))
}

/// An error and its causes on one line: reqwest's own text ("error sending
/// request") says little; the cause ("Connection refused") says what to fix.
pub(super) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(err);
    while let Some(err) = next {
        if !line.is_empty() {
            line.push_str(": ");
        }
        let _ = write!(line, "{err}");
        next = err.source();
    }
    line
}

/// A provider's own words, fit for a log line: one line, shortened, and
/// with every run of 4+ digits hidden in case the provider echoed the
/// number or the message (and so the code) back.
pub(super) fn loggable(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    // Mask the whole text first, then cut: cutting first could split a code
    // at the limit and leave its first digits unmasked.
    let mut clean = String::with_capacity(text.len());
    let mut digit_run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 4 {
            out.push_str(&"#".repeat(run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digit_run.push(c);
            continue;
        }
        flush(&mut digit_run, &mut clean);
        clean.push(if c.is_control() { ' ' } else { c });
    }
    flush(&mut digit_run, &mut clean);
    if clean.chars().count() > MAX_LOGGED_MESSAGE_CHARS {
        clean = clean.chars().take(MAX_LOGGED_MESSAGE_CHARS).collect();
        clean.push('…');
    }
    clean
}

/// Whole milliseconds as a plain number for structured logs (tracing shows
/// `u128` as text).
pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loggable_hides_echoed_numbers_and_codes() {
        assert_eq!(
            loggable("cannot send 'Your code is 042917' to +14155550123 (HTTP 503)"),
            "cannot send 'Your code is ######' to +########### (HTTP 503)"
        );
        assert_eq!(loggable("  \r\n"), "(no message)");
    }

    #[test]
    fn a_code_at_the_cut_is_masked_whole() {
        let body = format!("{}042917 more", "x".repeat(MAX_LOGGED_MESSAGE_CHARS - 2));
        let message = loggable(&body);
        assert!(message.ends_with("##…"), "{message}");
        assert!(!message.contains("04"), "{message}");
    }

    #[test]
    fn loggable_is_one_short_line() {
        let long = format!("line one\nline two {}", "x".repeat(500));
        let message = loggable(&long);
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(message.chars().count(), MAX_LOGGED_MESSAGE_CHARS + 1);
        assert!(message.ends_with('…'));
    }

    #[test]
    fn error_chain_shows_every_cause_on_one_line() {
        #[derive(Debug, Error)]
        #[error("error sending request")]
        struct Outer(#[source] std::io::Error);
        let refused =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(
            error_chain(&Outer(refused)),
            "error sending request: Connection refused"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_surely_not_sent() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port");
        let client = http_client(Duration::from_secs(1)).expect("client");
        let posted = post(
            client.post(format!("http://{closed}/send")),
            Instant::now() + Duration::from_secs(2),
        )
        .await;
        assert!(matches!(posted, Posted::NotSent(_)), "{posted:?}");
    }
}
