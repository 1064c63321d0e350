//! Spend in money through the real server: the caps refuse the send whose
//! estimate would cross them (on every store, and across two replicas),
//! sure failures give their estimate back, each caller has its own daily
//! cap, the estimate counts segments, a destination without a price is
//! refused, a `cheapest:` route asks the cheaper provider first, and a
//! WhatsApp message or a call costs its own price (per message, per
//! minute), a fall-through to SMS the SMS price, and on one Redis server a
//! capped send costs no more store calls than an uncapped one, and an
//! upgrade from the previous spend layout keeps the caps.

mod caps;
mod channels;
mod cheapest;
mod check_config;
mod events;
mod redis_calls;
mod upgrade;

use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::common::tls::CertDir;

/// A prices file in a fresh directory (kept while the returned dir lives).
pub(super) fn prices_file(contents: &str) -> (CertDir, String) {
    let dir = CertDir::new();
    let path = dir.write("prices.toml", contents);
    (dir, path)
}

/// Prices of the console gateway (what a test app's recording gateway is
/// configured as): `sms` per segment everywhere.
pub(super) fn console_prices(sms: &str) -> (CertDir, String) {
    prices_file(&format!(
        "currency = \"EUR\"\n[console]\n\"*\" = {{ sms = \"{sms}\" }}\n"
    ))
}

/// Asserts a spend-cap refusal naming `cap`, with a RetryInfo; returns its delay in seconds.
pub(super) fn assert_spend_refused(status: &Status, cap: &str) -> u64 {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("SPEND_LIMIT_REACHED", "otp.v1")
    );
    assert_eq!(
        info.metadata.get("cap").map(String::as_str),
        Some(cap),
        "{info:?}"
    );
    details
        .retry_info()
        .and_then(|retry| retry.retry_delay)
        .map(|delay| delay.as_secs())
        .expect("RetryInfo with a delay")
}
